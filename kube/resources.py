"""Which API resources FMA uses, and how their REST paths are built.

A ``Resource`` names a resource type once (group, version, plural, kind and
scope); ``path`` turns it into a REST path.  Pure: no I/O.  The custom
resources come from ``crds.kinds`` so their names are spelt only there.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from crds import kinds

__all__ = [
    "CONFIG_MAPS",
    "CUSTOM_RESOURCE_DEFINITIONS",
    "EVENTS",
    "INFERENCE_SERVER_CONFIGS",
    "LAUNCHER_CONFIGS",
    "LAUNCHER_POPULATION_POLICIES",
    "LEASES",
    "MUTATING_WEBHOOK_CONFIGURATIONS",
    "NAMESPACES",
    "NODES",
    "PODS",
    "SECRETS",
    "SERVICES",
    "SERVICE_ACCOUNTS",
    "VALIDATING_WEBHOOK_CONFIGURATIONS",
    "Resource",
    "custom",
]


@dataclasses.dataclass(frozen=True)
class Resource:
    """One resource type of the Kubernetes API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """Return the REST path of the collection, or of one object and its subresource (pure).

        A namespaced resource without ``namespace`` gives the all-namespaces
        collection.  Raises ``ValueError`` for a namespace on a cluster-scoped
        resource, or a subresource without a name.
        """
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None:
            if not self.namespaced:
                raise ValueError(f"{self.kind} is cluster-scoped; got namespace {namespace!r}")
            base += f"/namespaces/{quote(namespace, safe='')}"
        elif name is not None and self.namespaced:
            raise ValueError(f"{self.kind} {name!r} is namespaced; a namespace is required")
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        elif subresource:
            raise ValueError(f"subresource {subresource!r} of {self.kind} needs an object name")
        return base


def custom(group: str, version: str, plural: str, kind: str, *, namespaced: bool = True) -> Resource:
    """Describe a custom resource."""
    return Resource(group=group, version=version, plural=plural, kind=kind, namespaced=namespaced)


PODS = Resource("", "v1", "pods", "Pod")
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
SERVICES = Resource("", "v1", "services", "Service")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
EVENTS = Resource("", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
MUTATING_WEBHOOK_CONFIGURATIONS = Resource(
    "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False
)
VALIDATING_WEBHOOK_CONFIGURATIONS = Resource(
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False
)
CUSTOM_RESOURCE_DEFINITIONS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)


def _fma(kind: kinds.ResourceKind) -> Resource:
    return custom(kinds.GROUP, kinds.VERSION, kind.plural, kind.kind)


INFERENCE_SERVER_CONFIGS = _fma(kinds.INFERENCE_SERVER_CONFIG)
LAUNCHER_CONFIGS = _fma(kinds.LAUNCHER_CONFIG)
LAUNCHER_POPULATION_POLICIES = _fma(kinds.LAUNCHER_POPULATION_POLICY)
