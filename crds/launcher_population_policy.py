"""LauncherPopulationPolicy (LPP): how many idle launchers of which configs to keep on which nodes.

The populator keeps, per matching node and LauncherConfig, at least the largest
``launcherCount`` any policy asks for (docs/api.md, "LauncherPopulationPolicy";
docs/populator.md, "How it works").  Nodes are matched by labels *and* by
allocatable resource ranges, so a policy can say "two launchers on every node
with at least 4 GPUs".

``countForLauncher`` names each LauncherConfig at most once.  The CRD makes it a
list-map keyed by ``launcherConfigName`` so that the apiserver itself rejects
duplicates; the model enforces the same rule for objects that never went
through the apiserver (files, tests).

Pure; no I/O.
"""

from __future__ import annotations

import fractions
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic

from crds import kinds, quantity, schema_base, selector, status

__all__ = [
    "CountForLauncher",
    "EnhancedNodeSelector",
    "LauncherPopulationPolicy",
    "LauncherPopulationPolicySpec",
    "LauncherPopulationPolicyStatus",
    "Quantity",
    "ResourceRange",
]

_MAX_QUANTITY_LENGTH = 64
_MAX_RANGES = 64
_QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "pattern": quantity.PATTERN,
    "maxLength": _MAX_QUANTITY_LENGTH,
    "x-kubernetes-int-or-string": True,
}
# The apiserver checks min <= max itself, with Kubernetes' CEL quantity library; the lengths above keep
# the rule's estimated cost within the apiserver's budget.
_RANGE_RULE: dict[str, pydantic.JsonValue] = {
    "rule": "!has(self.min) || !has(self.max) || quantity(string(self.min)).compareTo(quantity(string(self.max))) <= 0",
    "message": "min must not be greater than max",
}


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and len(value) > _MAX_QUANTITY_LENGTH:
        raise ValueError(f"quantity {value[:16]!r}... is longer than {_MAX_QUANTITY_LENGTH} characters")
    quantity.parse(value)
    return value


Quantity = Annotated[int | str, pydantic.AfterValidator(_check_quantity), pydantic.WithJsonSchema(_QUANTITY_SCHEMA)]
"""A Kubernetes resource quantity, as an integer or a string such as ``4`` or ``16Gi``."""


class ResourceRange(schema_base.SchemaModel):
    """Inclusive bounds on one allocatable resource; a missing bound is unbounded."""

    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-validations": [_RANGE_RULE]})

    min: Quantity | None = None
    """The smallest allocatable amount that matches."""
    max: Quantity | None = None
    """The largest allocatable amount that matches."""

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> ResourceRange:
        if self.min is not None and self.max is not None and quantity.parse(self.min) > quantity.parse(self.max):
            raise ValueError(f"min {self.min!r} is greater than max {self.max!r}")
        return self

    def contains(self, amount: fractions.Fraction) -> bool:
        """Return whether ``amount`` lies within the bounds (inclusive)."""
        if self.min is not None and amount < quantity.parse(self.min):
            return False
        return not (self.max is not None and amount > quantity.parse(self.max))


class EnhancedNodeSelector(schema_base.SchemaModel):
    """Which nodes a policy applies to: a label selector and allocatable resource ranges."""

    label_selector: selector.LabelSelector = pydantic.Field(alias="labelSelector")
    """Matched against the node's labels."""
    allocatable_resources: dict[str, ResourceRange] | None = pydantic.Field(
        default=None, alias="allocatableResources", json_schema_extra={"maxProperties": _MAX_RANGES}
    )
    """Resource name → range, matched against ``node.status.allocatable``; a resource the node lacks never matches."""

    @pydantic.field_validator("allocatable_resources")
    @classmethod
    def _few_ranges(cls, ranges: dict[str, ResourceRange] | None) -> dict[str, ResourceRange] | None:
        if ranges is not None and len(ranges) > _MAX_RANGES:
            raise ValueError(f"at most {_MAX_RANGES} resources may be listed, got {len(ranges)}")
        return ranges

    def matches(self, node_labels: Mapping[str, str], allocatable: Mapping[str, int | str]) -> bool:
        """Return whether a node with these labels and allocatable amounts is selected."""
        if not self.label_selector.matches(node_labels):
            return False
        for resource, bounds in (self.allocatable_resources or {}).items():
            if resource not in allocatable:
                return False
            try:
                amount = quantity.parse(allocatable[resource])
            except ValueError:
                return False
            if not bounds.contains(amount):
                return False
        return True


class CountForLauncher(schema_base.SchemaModel):
    """How many launchers of one LauncherConfig to keep on each selected node."""

    launcher_config_name: str = pydantic.Field(min_length=1, alias="launcherConfigName")
    """The LauncherConfig, in the same namespace."""
    launcher_count: int = pydantic.Field(
        ge=0, le=2**31 - 1, alias="launcherCount", json_schema_extra={"format": "int32"}
    )
    """Launchers per selected node (bound ones count toward it)."""


class LauncherPopulationPolicySpec(schema_base.SchemaModel):
    """Which nodes get which launchers."""

    enhanced_node_selector: EnhancedNodeSelector = pydantic.Field(alias="enhancedNodeSelector")
    """The nodes this policy applies to."""
    count_for_launcher: list[CountForLauncher] = pydantic.Field(
        alias="countForLauncher",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["launcherConfigName"]},
    )
    """Launcher counts per LauncherConfig; each LauncherConfig appears at most once."""

    @pydantic.field_validator("count_for_launcher")
    @classmethod
    def _unique_names(cls, entries: list[CountForLauncher]) -> list[CountForLauncher]:
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            if entry.launcher_config_name in seen:
                raise ValueError(
                    f"entry [{index}] repeats launcherConfigName {entry.launcher_config_name!r}; each may appear once"
                )
            seen.add(entry.launcher_config_name)
        return entries


class LauncherPopulationPolicyStatus(status.ResourceStatus):
    """Written by the launcher populator."""


class LauncherPopulationPolicy(schema_base.SchemaModel):
    """A policy for keeping idle launchers ready on selected nodes."""

    api_version: Literal["fma.llm-d.ai/v1alpha1"] = pydantic.Field(default=kinds.API_VERSION, alias="apiVersion")
    """Always ``fma.llm-d.ai/v1alpha1``."""
    kind: Literal["LauncherPopulationPolicy"] = "LauncherPopulationPolicy"
    """Always ``LauncherPopulationPolicy``."""
    metadata: schema_base.ObjectMeta = pydantic.Field(default_factory=schema_base.ObjectMeta)
    """Standard object metadata."""
    spec: LauncherPopulationPolicySpec
    """The desired state."""
    status: LauncherPopulationPolicyStatus | None = None
    """The observed state."""
