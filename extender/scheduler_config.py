"""The FMA scheduler's KubeSchedulerConfiguration: one packaged file, rendered with the extender URL.

``scheduler-config.yaml`` beside this module is the single source: the
development cluster renders it here, and the Helm chart renders the same file
(its ``{{ .ExtenderURL }}`` placeholder is Go-template syntax).  ``render``
parses the file, checks that it has exactly one extender whose ``urlPrefix`` is
the placeholder, and fills in the URL, whether to speak HTTPS, leader election
and the client kubeconfig.  docs/extender.md gives the weight arithmetic, which
``DEFAULT_SCORE_PLUGIN_WEIGHTS`` and ``minimum_weight`` make checkable.

The ``placement`` setting picks how the scheduler learns where sleepers wait
(docs/extender.md, "Placement modes"):

* ``extender`` — the file as packaged: the extender filters and prioritizes;
* ``hints`` — no extender: the webhook writes node-affinity hints into each
  requester, and the profile weights ``NodeAffinity`` by ``hint_weight()`` so
  that one point of a hint outweighs every other score plugin;
* ``hints+extender`` — both, the extender's weight raised to
  ``extender_weight_over_hints()`` so that its fresh order still wins over a
  hint computed at admission.

``nominated_node_plugin=True`` (any placement) enables ``NOMINATED_NODE_PLUGIN`` at ``preFilter`` in every
profile: a PreFilter plugin compiled into FMA's own kube-scheduler build (``extender/scheduler_plugin``, built by
``devcluster.binaries.ensure_fma_scheduler``) that restricts a requester's first scheduling attempt to the node
the webhook wrote into ``crds.keys.NOMINATED_NODE_ANNOTATION``, and replaces ``DefaultBinder`` at ``bind`` with
``PACED_BINDER_PLUGIN`` from the same build: the default binder with at most ``max_binds_in_flight`` binding calls
outstanding (docs/extender.md, "Paced binding").  The stock binary refuses a configuration naming either.  The
webhook writes that annotation with ``nominate: plugin``; the chart's ``placementNominate: plugin`` runs FMA's
build with this configuration (docs/extender.md, "Scheduler plugin").

Reading the packaged file is the only I/O, done when called.
"""

from __future__ import annotations

import copy
import importlib.resources
import math
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

import yaml

from extender import errors, protocol

__all__ = [
    "CONFIG_RESOURCE",
    "DEFAULT_MAX_BINDS_IN_FLIGHT",
    "DEFAULT_SCORE_PLUGIN_WEIGHTS",
    "FULL_SCORING",
    "MAX_NODE_SCORE",
    "NOMINATED_NODE_PLUGIN",
    "PACED_BINDER_PLUGIN",
    "PLACEMENTS",
    "SCHEDULER_NAME",
    "URL_PLACEHOLDER",
    "Placement",
    "extender_entry",
    "extender_weight_over_hints",
    "hint_weight",
    "minimum_weight",
    "render",
    "render_yaml",
    "template",
    "template_text",
]

CONFIG_RESOURCE: Final = "scheduler-config.yaml"
URL_PLACEHOLDER: Final = "{{ .ExtenderURL }}"
SCHEDULER_NAME: Final = "fma-scheduler"
FULL_SCORING: Final = 100
"""``percentageOfNodesToScore`` of the packaged file: every feasible node is scored."""
MAX_NODE_SCORE: Final = 100
"""``framework.MaxNodeScore``: each score plugin gives 0..100, times its weight."""

NOMINATED_NODE_PLUGIN: Final = "NominatedNode"
"""The PreFilter plugin of FMA's kube-scheduler build (``Name`` in ``extender/scheduler_plugin/plugin.go``)."""

PACED_BINDER_PLUGIN: Final = "PacedBinder"
"""FMA's bind plugin (``extender/scheduler_plugin/binder.go``): ``DefaultBinder`` behind a semaphore."""

DEFAULT_MAX_BINDS_IN_FLIGHT: Final = 64
"""``PacedBinder``'s ``maxInFlight`` (the Go plugin's own default too; docs/performance.md for how it was chosen)."""

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


Placement = Literal["extender", "hints", "hints+extender"]
"""How requesters are steered to sleepers: the extender, the webhook's node-affinity hints, or both."""

PLACEMENTS: Final[tuple[str, ...]] = get_args(Placement)

_HINT_PLUGIN: Final = "NodeAffinity"


def hint_weight() -> int:
    """The smallest ``NodeAffinity`` weight for which one point of a hint outweighs every other score plugin.

    A hint names nodes in preferred terms weighted by their 0-10 placement
    score; ``NodeAffinity`` normalises the sums so the best node gets
    ``MaxNodeScore``, so one point is worth at least ``MaxNodeScore / 10``
    (when the best scores 10), times the weight, against at most
    ``sum(other plugin weights) x MaxNodeScore`` from the other plugins.
    """
    others = sum(w for name, w in DEFAULT_SCORE_PLUGIN_WEIGHTS.items() if name != _HINT_PLUGIN) * MAX_NODE_SCORE
    per_point = MAX_NODE_SCORE // protocol.MAX_EXTENDER_PRIORITY
    return math.floor(others / per_point) + 1


def extender_weight_over_hints() -> int:
    """The smallest extender weight for which one extender point outweighs every plugin with hints weighted."""
    others = sum(w for name, w in DEFAULT_SCORE_PLUGIN_WEIGHTS.items() if name != _HINT_PLUGIN) + hint_weight()
    per_point = MAX_NODE_SCORE // protocol.MAX_EXTENDER_PRIORITY
    return math.floor(others * MAX_NODE_SCORE / per_point) + 1


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


def _set_sampling(config: dict[str, Any], percentage: int) -> None:
    """Set ``percentageOfNodesToScore`` (0: drop it, leaving kube-scheduler's adaptive sampling)."""
    if not 0 <= percentage <= FULL_SCORING:
        raise ValueError(f"percentage_of_nodes_to_score must be 0-100, got {percentage!r}")
    if percentage:
        config["percentageOfNodesToScore"] = percentage
    else:
        config.pop("percentageOfNodesToScore", None)


def _enable_plugins(
    config: dict[str, Any], *, hints: bool, nominated_node_plugin: bool, max_binds_in_flight: int | None
) -> None:
    """Weight ``NodeAffinity`` for hints and enable FMA's plugins (NominatedNode at preFilter, PacedBinder in
    place of DefaultBinder unless ``max_binds_in_flight`` is None), in every profile."""
    if not (hints or nominated_node_plugin):
        return
    for profile in config.get("profiles") or []:
        plugins = profile.setdefault("plugins", {})
        if hints:
            score = plugins.setdefault("score", {})
            score.setdefault("enabled", []).append({"name": _HINT_PLUGIN, "weight": hint_weight()})
        if nominated_node_plugin:
            pre_filter = plugins.setdefault("preFilter", {})
            pre_filter.setdefault("enabled", []).append({"name": NOMINATED_NODE_PLUGIN})
            if max_binds_in_flight is not None:
                plugins["bind"] = {"disabled": [{"name": "DefaultBinder"}], "enabled": [{"name": PACED_BINDER_PLUGIN}]}
                profile.setdefault("pluginConfig", []).append(
                    {"name": PACED_BINDER_PLUGIN, "args": {"maxInFlight": max_binds_in_flight}}
                )


def render(
    extender_url: str | None,
    *,
    kubeconfig: str | None = None,
    leader_election: bool = True,
    ca_file: str | None = None,
    placement: Placement = "extender",
    percentage_of_nodes_to_score: int = FULL_SCORING,
    nominated_node_plugin: bool = False,
    max_binds_in_flight: int | None = DEFAULT_MAX_BINDS_IN_FLIGHT,
) -> dict[str, Any]:
    """Return the configuration for ``placement``, with the extender at ``extender_url`` (``http://`` or
    ``https://``; unused, and may be None, for ``hints``).

    ``kubeconfig`` sets ``clientConnection.kubeconfig`` (omit it in a Pod);
    ``leader_election=False`` is for a single scheduler, as in the dev cluster;
    ``ca_file`` (HTTPS only) is the CA bundle the scheduler trusts for the extender;
    ``percentage_of_nodes_to_score`` (1-100, or 0 for kube-scheduler's adaptive sampling) replaces the
    packaged 100 (docs/extender.md, "Where the hints' cost goes": sampling runs near the stock rate but a
    sleeper's node outside the sample cannot win);
    ``nominated_node_plugin`` enables ``NOMINATED_NODE_PLUGIN`` at ``preFilter`` in every profile and, unless
    ``max_binds_in_flight`` is None, ``PACED_BINDER_PLUGIN`` with that ``maxInFlight`` in place of
    ``DefaultBinder`` (FMA's kube-scheduler build only; ``max_binds_in_flight`` is unused without the plugin).
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {list(PLACEMENTS)!r}, got {placement!r}")
    if max_binds_in_flight is not None and max_binds_in_flight < 1:
        raise ValueError(f"max_binds_in_flight must be at least 1 (or None), got {max_binds_in_flight!r}")
    config = copy.deepcopy(template())
    _set_sampling(config, percentage_of_nodes_to_score)
    entry = extender_entry(config)
    if entry.get("urlPrefix") != URL_PLACEHOLDER:
        raise errors.BadSchedulerConfig(f"urlPrefix is {entry.get('urlPrefix')!r}, expected {URL_PLACEHOLDER!r}")
    if placement == "hints":
        del config["extenders"]
    else:
        if extender_url is None or not extender_url.startswith(("http://", "https://")):
            raise ValueError(f"extender URL must start with http:// or https://, got {extender_url!r}")
        entry["urlPrefix"] = extender_url.rstrip("/")
        entry["enableHTTPS"] = extender_url.startswith("https://")
        if ca_file is not None:
            if not entry["enableHTTPS"]:
                raise ValueError(f"ca_file {ca_file!r} needs an https:// extender URL, got {extender_url!r}")
            entry["tlsConfig"] = {"caFile": ca_file}
        if placement == "hints+extender":
            entry["weight"] = max(int(entry["weight"]), extender_weight_over_hints())
    _enable_plugins(
        config,
        hints=placement != "extender",
        nominated_node_plugin=nominated_node_plugin,
        max_binds_in_flight=max_binds_in_flight,
    )
    config.setdefault("leaderElection", {})["leaderElect"] = leader_election
    if kubeconfig is not None:
        config.setdefault("clientConnection", {})["kubeconfig"] = kubeconfig
    return config


def render_yaml(
    extender_url: str | None,
    *,
    kubeconfig: str | None = None,
    leader_election: bool = True,
    ca_file: str | None = None,
    placement: Placement = "extender",
    percentage_of_nodes_to_score: int = FULL_SCORING,
    nominated_node_plugin: bool = False,
    max_binds_in_flight: int | None = DEFAULT_MAX_BINDS_IN_FLIGHT,
) -> str:
    """``render`` as YAML text, ready for ``kube-scheduler --config``."""
    config = render(
        extender_url,
        kubeconfig=kubeconfig,
        leader_election=leader_election,
        ca_file=ca_file,
        placement=placement,
        percentage_of_nodes_to_score=percentage_of_nodes_to_score,
        nominated_node_plugin=nominated_node_plugin,
        max_binds_in_flight=max_binds_in_flight,
    )
    return yaml.safe_dump(config, sort_keys=False)
