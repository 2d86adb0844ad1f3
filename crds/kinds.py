"""The API group, version and the names of the three custom resource kinds.

Clients (``kube``'s custom-object calls), RBAC rules in the chart and the CRD
generator all need group, version, plural and short names; keeping them in one
table means the CRD and every client agree by construction (docs/api.md, "Custom
resources").

Pure constants; no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Final

__all__ = [
    "ALL",
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "INFERENCE_SERVER_CONFIG",
    "LAUNCHER_CONFIG",
    "LAUNCHER_POPULATION_POLICY",
    "VERSION",
    "ResourceKind",
]

GROUP = "fma.llm-d.ai"
"""The API group of the FMA custom resources."""

VERSION = "v1alpha1"
"""The one served and stored version."""

API_VERSION: Final = "fma.llm-d.ai/v1alpha1"
"""The ``apiVersion`` field value of every FMA object."""

CATEGORY = "fma"
"""The category, so that ``kubectl get fma`` lists all three kinds."""


@dataclasses.dataclass(frozen=True)
class ResourceKind:
    """Names of one custom resource kind."""

    kind: str
    plural: str
    singular: str
    short_name: str

    @property
    def list_kind(self) -> str:
        """The ``kind`` of a list of these objects."""
        return self.kind + "List"

    @property
    def crd_name(self) -> str:
        """The CustomResourceDefinition's name: ``<plural>.<group>``."""
        return f"{self.plural}.{GROUP}"


INFERENCE_SERVER_CONFIG = ResourceKind(
    "InferenceServerConfig", "inferenceserverconfigs", "inferenceserverconfig", "isc"
)
"""Names of InferenceServerConfig."""

LAUNCHER_CONFIG = ResourceKind("LauncherConfig", "launcherconfigs", "launcherconfig", "lcfg")
"""Names of LauncherConfig."""

LAUNCHER_POPULATION_POLICY = ResourceKind(
    "LauncherPopulationPolicy", "launcherpopulationpolicies", "launcherpopulationpolicy", "lpp"
)
"""Names of LauncherPopulationPolicy."""

ALL: tuple[ResourceKind, ...] = (INFERENCE_SERVER_CONFIG, LAUNCHER_CONFIG, LAUNCHER_POPULATION_POLICY)
"""The three kinds, in a fixed order."""
