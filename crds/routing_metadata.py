"""ISC routing metadata: the labels and annotations a launcher carries while its bound instance is awake.

Two things live here.  The ``isc-routing-metadata`` annotation (docs/protocol.md,
"Annotations") records, at bind time, the routing metadata that was committed, as compact
JSON ``{"labels":{...},"annotations":{...}}`` with empty members omitted; the
controller applies *that* record, never the current ISC, so a later ISC edit
cannot change what an existing binding advertises.  And ``problems`` checks a
set of routing keys and values against Kubernetes' syntax and FMA's reserved
prefixes; the ISC model and the controller share it (the controller re-checks a
committed record before it applies it to the launcher).

Pure; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pydantic

from crds import errors, keys, metadata_rules, validation_paths

__all__ = ["RoutingMetadata", "parse", "problems"]


class RoutingMetadata(pydantic.BaseModel):
    """The routing labels and annotations committed for one binding."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    labels: dict[str, str] = pydantic.Field(default_factory=dict)
    """Routing labels (for InferencePool selectors)."""
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)
    """Routing annotations (for endpoint-picker tooling)."""

    def format(self) -> str:
        """Return the compact annotation value, omitting empty members (``{}`` when both are empty)."""
        payload: dict[str, dict[str, str]] = {}
        if self.labels:
            payload["labels"] = dict(self.labels)
        if self.annotations:
            payload["annotations"] = dict(self.annotations)
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True)

    def problems(self) -> list[str]:
        """Return every reason these keys and values may not be written onto a Pod."""
        return problems(self.labels, self.annotations)


def parse(value: str | None) -> RoutingMetadata:
    """Return the metadata recorded in ``value``; absent means none.

    Raises ``errors.InvalidAnnotation`` when the value is not the contracted JSON.
    """
    if value is None:
        return RoutingMetadata()
    try:
        return RoutingMetadata.model_validate_json(value)
    except pydantic.ValidationError as exc:
        raise errors.InvalidAnnotation(
            keys.ISC_ROUTING_METADATA_ANNOTATION, value, validation_paths.summary(exc)
        ) from exc


def problems(labels: Mapping[str, str] | None, annotations: Mapping[str, str] | None) -> list[str]:
    """Return every reason ``labels``/``annotations`` are unusable as routing metadata (empty if usable)."""
    found: list[str] = []
    for key, value in sorted((labels or {}).items()):
        found.extend(metadata_rules.label_key_problems(key))
        found.extend(metadata_rules.routing_key_problems(key))
        found.extend(metadata_rules.label_value_problems(key, value))
    for key in sorted(annotations or {}):
        found.extend(metadata_rules.annotation_key_problems(key))
        found.extend(metadata_rules.routing_key_problems(key))
    return found
