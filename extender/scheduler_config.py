"""The FMA scheduler's KubeSchedulerConfiguration: one packaged file, rendered with the extender URL.

``scheduler-config.yaml`` beside this module is the single source: the
development cluster renders it here, and the Helm chart renders the same file
(its ``{{ .ExtenderURL }}`` placeholder is Go-template syntax).  ``render``
parses the file, checks that it has exactly one extender whose ``urlPrefix`` is
the placeholder, and fills in the URL, whether to speak HTTPS, leader election
and the client kubeconfig.  docs/extender.md gives the weight arithmetic, which
``DEFAULT_SCORE_PLUGIN_WEIGHTS`` and ``minimum_weight`` make checkable.

Reading the packaged file is the only I/O, done when called.
"""

from __future__ import annotations

import copy
import importlib.resources
import math
from collections.abc import Mapping
from typing import Any, Final

import yaml

from extender import errors, protocol

__all__ = [
    "CONFIG_RESOURCE",
    "DEFAULT_SCORE_PLUGIN_WEIGHTS",
    "MAX_NODE_SCORE",
    "SCHEDULER_NAME",
    "URL_PLACEHOLDER",
    "extender_entry",
    "minimum_weight",
    "render",
    "render_yaml",
    "template",
    "template_text",
]

CONFIG_RESOURCE: Final = "scheduler-config.yaml"
URL_PLACEHOLDER: Final = "{{ .ExtenderURL }}"
SCHEDULER_NAME: Final = "fma-scheduler"
MAX_NODE_SCORE: Final = 100
"""``framework.MaxNodeScore``: each score plugin gives 0..100, times its weight."""

DEFAULT_SCORE_PLUGIN_WEIGHTS: Final[Mapping[str, int]] = {
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "NodeResourcesFit": 1,
    "PodTopologySpread": 2,
    "InterPodAffinity": 2,
    "NodeResourcesBalancedAllocation": 1,
    "ImageLocality": 1,
    "VolumeBinding": 1,
}
"""Score weights of kube-scheduler v1's default MultiPoint plugins (VolumeBinding scores only with
StorageCapacityScoring; counted anyway for margin)."""


def minimum_weight() -> int:
    """The smallest extender weight for which one extender point outweighs every default plugin together.

    The scheduler adds ``score x weight x (MaxNodeScore / MaxExtenderPriority)``
    per extender, so one point is worth ``weight x 10`` against at most
    ``sum(plugin weights) x 100`` from the plugins.
    """
    plugins = sum(DEFAULT_SCORE_PLUGIN_WEIGHTS.values()) * MAX_NODE_SCORE
    per_point = MAX_NODE_SCORE // protocol.MAX_EXTENDER_PRIORITY
    return math.floor(plugins / per_point) + 1


def template_text() -> str:
    """The packaged file, verbatim."""
    return importlib.resources.files("extender").joinpath(CONFIG_RESOURCE).read_text(encoding="utf-8")


def template() -> dict[str, Any]:
    """The packaged configuration, parsed, placeholder still in place."""
    document = yaml.safe_load(template_text())
    if not isinstance(document, dict):
        raise errors.BadSchedulerConfig(f"{CONFIG_RESOURCE} is not a mapping")
    return document


def extender_entry(config: Mapping[str, Any]) -> dict[str, Any]:
    """The one extender entry of ``config``; raise ``errors.BadSchedulerConfig`` unless there is exactly one."""
    extenders = config.get("extenders")
    if not isinstance(extenders, list) or len(extenders) != 1 or not isinstance(extenders[0], dict):
        raise errors.BadSchedulerConfig(f"expected exactly one extender entry, got {extenders!r}")
    return extenders[0]


def render(
    extender_url: str,
    *,
    kubeconfig: str | None = None,
    leader_election: bool = True,
    ca_file: str | None = None,
) -> dict[str, Any]:
    """Return the configuration with the extender at ``extender_url`` (``http://`` or ``https://``).

    ``kubeconfig`` sets ``clientConnection.kubeconfig`` (omit it in a Pod);
    ``leader_election=False`` is for a single scheduler, as in the dev cluster;
    ``ca_file`` (HTTPS only) is the CA bundle the scheduler trusts for the extender.
    """
    if not extender_url.startswith(("http://", "https://")):
        raise ValueError(f"extender URL must start with http:// or https://, got {extender_url!r}")
    config = copy.deepcopy(template())
    entry = extender_entry(config)
    if entry.get("urlPrefix") != URL_PLACEHOLDER:
        raise errors.BadSchedulerConfig(f"urlPrefix is {entry.get('urlPrefix')!r}, expected {URL_PLACEHOLDER!r}")
    entry["urlPrefix"] = extender_url.rstrip("/")
    entry["enableHTTPS"] = extender_url.startswith("https://")
    if ca_file is not None:
        if not entry["enableHTTPS"]:
            raise ValueError(f"ca_file {ca_file!r} needs an https:// extender URL, got {extender_url!r}")
        entry["tlsConfig"] = {"caFile": ca_file}
    config.setdefault("leaderElection", {})["leaderElect"] = leader_election
    if kubeconfig is not None:
        config.setdefault("clientConnection", {})["kubeconfig"] = kubeconfig
    return config


def render_yaml(
    extender_url: str, *, kubeconfig: str | None = None, leader_election: bool = True, ca_file: str | None = None
) -> str:
    """``render`` as YAML text, ready for ``kube-scheduler --config``."""
    config = render(extender_url, kubeconfig=kubeconfig, leader_election=leader_election, ca_file=ca_file)
    return yaml.safe_dump(config, sort_keys=False)
