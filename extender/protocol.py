"""The kube-scheduler extender wire format (``k8s.io/kube-scheduler/extender/v1``).

The Go types carry no JSON tags, so every key is the capitalised Go field name
(docs/extender.md, "Protocol"; docs/protocol.md, "Scheduling"): the
scheduler sends ``ExtenderArgs`` ``{"Pod", "Nodes", "NodeNames"}`` and reads
``ExtenderFilterResult`` ``{"Nodes", "NodeNames", "FailedNodes",
"FailedAndUnresolvableNodes", "Error"}`` and ``HostPriorityList``
``[{"Host", "Score"}]``.  With ``nodeCacheCapable: true`` only ``NodeNames`` is
sent and must be answered in kind; otherwise full Node objects come in
``Nodes.items`` and the passing ones go back in ``Nodes``.

The Pod and Nodes belong to Kubernetes: only the fields the extender reads are
typed, and everything else is kept (``extra="allow"``).  A body that fails
these models is answered 400 with one ``loc: msg`` line per problem.

Pure; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

import pydantic

from crds import errors as crds_errors
from crds import strict_json, validation_paths
from extender import errors

__all__ = [
    "MAX_EXTENDER_PRIORITY",
    "ContainerArgs",
    "ExtenderArgs",
    "ExtenderFilterResult",
    "HostPriority",
    "NodeList",
    "PodArgs",
    "PodMetadata",
    "PodSpecArgs",
    "ResourceRequirements",
    "encode_priorities",
    "parse_args",
]

MAX_EXTENDER_PRIORITY: Final = 10
"""``extenderv1.MaxExtenderPriority``: scores are 0..10; the scheduler multiplies by weight x 10."""

_FOREIGN = pydantic.ConfigDict(extra="allow", populate_by_name=True)


class ResourceRequirements(pydantic.BaseModel):
    """A container's ``resources``; quantities stay as sent (string or number)."""

    model_config = _FOREIGN

    limits: dict[str, str | int | float] | None = None
    requests: dict[str, str | int | float] | None = None


class ContainerArgs(pydantic.BaseModel):
    """One container of the Pod: its name and resources."""

    model_config = _FOREIGN

    name: str = ""
    resources: ResourceRequirements | None = None


class PodSpecArgs(pydantic.BaseModel):
    """The parts of a PodSpec the extender reads."""

    model_config = _FOREIGN

    containers: list[ContainerArgs] = pydantic.Field(default_factory=list)
    init_containers: list[ContainerArgs] | None = pydantic.Field(default=None, alias="initContainers")
    node_selector: dict[str, str] | None = pydantic.Field(default=None, alias="nodeSelector")


class PodMetadata(pydantic.BaseModel):
    """The Pod's identity and annotations."""

    model_config = _FOREIGN

    name: str | None = None
    generate_name: str | None = pydantic.Field(default=None, alias="generateName")
    namespace: str = "default"
    uid: str | None = None
    annotations: dict[str, str] | None = None
    labels: dict[str, str] | None = None


class PodArgs(pydantic.BaseModel):
    """The Pod being scheduled."""

    model_config = _FOREIGN

    metadata: PodMetadata
    spec: PodSpecArgs = pydantic.Field(default_factory=PodSpecArgs)

    @property
    def ref(self) -> str:
        """``namespace/name`` for logs."""
        return f"{self.metadata.namespace}/{self.metadata.name or self.metadata.generate_name or ''}"


class NodeList(pydantic.BaseModel):
    """A ``v1.NodeList``; the items are kept raw, to be echoed back unchanged by filter."""

    model_config = _FOREIGN

    items: list[dict[str, Any]] = pydantic.Field(default_factory=list)

    def names(self) -> list[str]:
        """The node names, in order; raise ``ValueError`` for an item without ``metadata.name``."""
        result = []
        for index, item in enumerate(self.items):
            name = (item.get("metadata") or {}).get("name") if isinstance(item.get("metadata"), dict) else None
            if not isinstance(name, str) or not name:
                raise ValueError(f"Nodes.items[{index}] has no metadata.name")
            result.append(name)
        return result


class ExtenderArgs(pydantic.BaseModel):
    """The body of ``POST /filter`` and ``POST /prioritize``."""

    model_config = pydantic.ConfigDict(extra="allow", populate_by_name=True)

    pod: PodArgs = pydantic.Field(alias="Pod")
    nodes: NodeList | None = pydantic.Field(default=None, alias="Nodes")
    node_names: list[str] | None = pydantic.Field(default=None, alias="NodeNames")

    @pydantic.model_validator(mode="after")
    def _has_candidates(self) -> ExtenderArgs:
        if self.node_names is None and self.nodes is None:
            raise ValueError("one of NodeNames (nodeCacheCapable) or Nodes must be set")
        if self.node_names is None and self.nodes is not None:
            self.nodes.names()
        return self

    @property
    def cache_capable(self) -> bool:
        """Whether the scheduler sent names only (answer with ``NodeNames``)."""
        return self.node_names is not None

    def candidate_names(self) -> list[str]:
        """The candidate node names, in the order sent."""
        if self.node_names is not None:
            return list(self.node_names)
        assert self.nodes is not None
        return self.nodes.names()


class ExtenderFilterResult(pydantic.BaseModel):
    """The filter answer."""

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    nodes: NodeList | None = pydantic.Field(default=None, alias="Nodes")
    node_names: list[str] | None = pydantic.Field(default=None, alias="NodeNames")
    failed_nodes: dict[str, str] = pydantic.Field(default_factory=dict, alias="FailedNodes")
    failed_and_unresolvable_nodes: dict[str, str] = pydantic.Field(
        default_factory=dict, alias="FailedAndUnresolvableNodes"
    )
    error: str = pydantic.Field(default="", alias="Error")


class HostPriority(pydantic.BaseModel):
    """One entry of the prioritize answer."""

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    host: str = pydantic.Field(alias="Host")
    score: int = pydantic.Field(ge=0, le=MAX_EXTENDER_PRIORITY, alias="Score")


def encode_priorities(priorities: Iterable[tuple[str, int]]) -> bytes:
    """The HostPriorityList JSON ``[{"Host": ..., "Score": ...}]`` of (host, score) pairs; scores must be 0..10."""
    quote = json.encoder.encode_basestring_ascii  # the C string encoder json.dumps uses
    entries = []
    for host, score in priorities:
        if not 0 <= score <= MAX_EXTENDER_PRIORITY:
            raise ValueError(f"score {score!r} of {host!r} is outside 0..{MAX_EXTENDER_PRIORITY}")
        entries.append(f'{{"Host":{quote(host)},"Score":{int(score)}}}')
    return ("[" + ",".join(entries) + "]").encode()


def parse_args(body: bytes) -> ExtenderArgs:
    """Return the ExtenderArgs in ``body``; raise ``errors.BadExtenderArgs`` with every problem named."""
    try:
        data = strict_json.loads(body)
    except crds_errors.MalformedJson as exc:
        raise errors.BadExtenderArgs(f"malformed ExtenderArgs: {exc}") from exc
    try:
        return ExtenderArgs.model_validate(data)
    except pydantic.ValidationError as exc:
        raise errors.BadExtenderArgs(f"malformed ExtenderArgs: {validation_paths.summary(exc)}") from exc
