"""What kind of Pod something is, read once for every process (docs/protocol.md, "Roles of Pods").

The controllers, the populator, the extender, the webhook and ``kubectl fma``
all ask the same questions of a Pod: is it a requester, in which mode, is it a
launcher, which node is a provider pinned to, is it Ready?  The answers live
here so that they cannot drift apart again (they had: one place took an empty
``inference-server-config`` for "not a requester", another for "a requester
with a status error").

The rule (docs/protocol.md, "Roles of Pods", "Annotations" and "Fixed
names, containers and environment"):

- **launcher mode** iff the ``inference-server-config`` key is *present*; an
  empty value is still a requester, whose reconcile reports ``empty value for
  annotation …``;
- otherwise **direct mode** iff ``server-patch`` is non-empty;
- a Pod is a **requester** iff it has a mode;
- a Pod is a **launcher** iff it carries the ``launcher-config-name`` label;
- a **provider's node** is its ``kubernetes.io/hostname`` nodeSelector, not
  ``spec.nodeName``.

``PodView`` wraps the raw dict from a watch cache or a request without copying
it; its mappings are the raw ones, typed read-only.  The functions over bare
annotation and label maps serve callers that hold a parsed model instead of the
raw Pod (the webhook, the extender).

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from crds import keys, names

__all__ = [
    "DIRECT",
    "LAUNCHER",
    "Mode",
    "PodView",
    "condition",
    "has_server_patch",
    "is_launcher",
    "is_ready",
    "is_requester",
    "names_isc",
    "provider_node",
    "requester_mode",
]

Mode = Literal["launcher", "direct"]
LAUNCHER: Final[Mode] = "launcher"
DIRECT: Final[Mode] = "direct"

_EMPTY: Final[Mapping[str, Any]] = {}


def names_isc(annotations: Mapping[str, str]) -> bool:
    """Whether the ``inference-server-config`` key is present (even empty): launcher mode."""
    return keys.INFERENCE_SERVER_CONFIG_ANNOTATION in annotations


def has_server_patch(annotations: Mapping[str, str]) -> bool:
    """Whether ``server-patch`` is non-empty."""
    return bool(annotations.get(keys.SERVER_PATCH_ANNOTATION))


def requester_mode(annotations: Mapping[str, str]) -> Mode | None:
    """The requester mode these annotations select, or None for a Pod that is not a requester.

    The ISC key wins when both are there (the webhook denies that pair; a Pod
    admitted without the webhook gets launcher mode, as the controller always did).
    """
    if names_isc(annotations):
        return LAUNCHER
    if has_server_patch(annotations):
        return DIRECT
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


class PodView:
    """A read-only typed view of a raw Pod: no copy, no validation, absent fields read as empty."""

    __slots__ = ("raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"PodView({self.namespace}/{self.name})"

    @property
    def metadata(self) -> Mapping[str, Any]:
        """``metadata`` (empty when absent)."""
        return _mapping(self.raw.get("metadata"))

    @property
    def spec(self) -> Mapping[str, Any]:
        """``spec`` (empty when absent)."""
        return _mapping(self.raw.get("spec"))

    @property
    def status(self) -> Mapping[str, Any]:
        """``status`` (empty when absent)."""
        return _mapping(self.raw.get("status"))

    @property
    def name(self) -> str:
        """``metadata.name`` (empty when absent)."""
        return str(self.metadata.get("name") or "")

    @property
    def namespace(self) -> str:
        """``metadata.namespace`` (empty when absent)."""
        return str(self.metadata.get("namespace") or "")

    @property
    def uid(self) -> str:
        """``metadata.uid`` (empty when absent)."""
        return str(self.metadata.get("uid") or "")

    @property
    def annotations(self) -> Mapping[str, str]:
        """``metadata.annotations``, the raw map itself (empty when absent)."""
        return _mapping(self.metadata.get("annotations"))

    @property
    def labels(self) -> Mapping[str, str]:
        """``metadata.labels``, the raw map itself (empty when absent)."""
        return _mapping(self.metadata.get("labels"))

    @property
    def finalizers(self) -> Sequence[str]:
        """``metadata.finalizers`` (empty when absent)."""
        value = self.metadata.get("finalizers")
        return value if isinstance(value, list) else ()

    @property
    def deleting(self) -> bool:
        """Whether ``metadata.deletionTimestamp`` is set."""
        return bool(self.metadata.get("deletionTimestamp"))

    @property
    def mode(self) -> Mode | None:
        """The requester mode, or None for a Pod that is not a requester."""
        return requester_mode(self.annotations)

    @property
    def is_requester(self) -> bool:
        """Whether the Pod is a requester (either mode)."""
        return self.mode is not None

    @property
    def isc_name(self) -> str | None:
        """The ``inference-server-config`` value of a launcher-mode requester (maybe empty), else None."""
        return self.annotations.get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION)

    @property
    def is_launcher(self) -> bool:
        """Whether the Pod is a launcher (it carries the ``launcher-config-name`` label)."""
        return keys.LAUNCHER_CONFIG_NAME_LABEL in self.labels

    @property
    def node_name(self) -> str | None:
        """``spec.nodeName``: where the scheduler put the Pod (requesters); None before that."""
        value = self.spec.get("nodeName")
        return str(value) if value else None

    @property
    def provider_node(self) -> str | None:
        """A provider's node: its ``kubernetes.io/hostname`` nodeSelector (None when it has none)."""
        value = _mapping(self.spec.get("nodeSelector")).get(names.HOSTNAME_NODE_SELECTOR)
        return str(value) if value else None

    def condition(self, condition_type: str) -> Mapping[str, Any] | None:
        """The Pod condition of type ``condition_type``, or None."""
        for item in self.status.get("conditions") or ():
            if isinstance(item, Mapping) and item.get("type") == condition_type:
                return item
        return None

    @property
    def ready(self) -> bool:
        """Whether the ``Ready`` condition is ``"True"`` (the kubelet's rule)."""
        found = self.condition("Ready")
        return found is not None and found.get("status") == "True"


def is_requester(pod: Mapping[str, Any]) -> bool:
    """``PodView(pod).is_requester``."""
    return PodView(pod).is_requester


def is_launcher(pod: Mapping[str, Any]) -> bool:
    """``PodView(pod).is_launcher``."""
    return PodView(pod).is_launcher


def provider_node(pod: Mapping[str, Any]) -> str | None:
    """``PodView(pod).provider_node``."""
    return PodView(pod).provider_node


def condition(pod: Mapping[str, Any], condition_type: str) -> Mapping[str, Any] | None:
    """``PodView(pod).condition(condition_type)``."""
    return PodView(pod).condition(condition_type)


def is_ready(pod: Mapping[str, Any]) -> bool:
    """``PodView(pod).ready``."""
    return PodView(pod).ready
