"""``metav1.LabelSelector``: its model, its parse rules and matching.

LauncherPopulationPolicies select nodes with a label selector (docs/api.md,
"LauncherPopulationPolicy").  An unparsable selector must still be *stored and
read*, because the populator reports it in the LPP status (reason
``InvalidSelector``) and treats it as matching nothing; so the model accepts any
operator and value list, and ``problems`` applies Kubernetes'
``LabelSelectorAsSelector`` rules separately.

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

import pydantic

from crds import metadata_rules, schema_base

__all__ = ["LabelSelector", "LabelSelectorRequirement"]

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class LabelSelectorRequirement(schema_base.SchemaModel):
    """One set-based requirement: a key, an operator and values."""

    key: str
    """The label key the requirement applies to."""
    operator: str
    """One of ``In``, ``NotIn``, ``Exists`` and ``DoesNotExist``."""
    values: list[str] | None = None
    """Non-empty for ``In``/``NotIn``, empty for ``Exists``/``DoesNotExist``."""


class LabelSelector(schema_base.SchemaModel):
    """A label query; an empty selector matches everything."""

    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    match_labels: dict[str, str] | None = pydantic.Field(default=None, alias="matchLabels")
    """Labels that must be present with exactly these values."""
    match_expressions: list[LabelSelectorRequirement] | None = pydantic.Field(
        default=None, alias="matchExpressions", json_schema_extra={"x-kubernetes-list-type": "atomic"}
    )
    """Set-based requirements; all must hold."""

    def problems(self) -> list[str]:
        """Return why Kubernetes could not turn this into a selector (empty when it can)."""
        found: list[str] = []
        for key, value in sorted((self.match_labels or {}).items()):
            found.extend(metadata_rules.label_key_problems(key))
            found.extend(metadata_rules.label_value_problems(key, value))
        for index, requirement in enumerate(self.match_expressions or []):
            where = f"matchExpressions[{index}]"
            found.extend(f"{where}: {message}" for message in metadata_rules.label_key_problems(requirement.key))
            values = requirement.values or []
            if requirement.operator not in _OPERATORS:
                found.append(f"{where}: {requirement.operator!r} is not a valid label selector operator")
            elif requirement.operator in ("In", "NotIn") and not values:
                found.append(f"{where}: values must be non-empty for operator {requirement.operator}")
            elif requirement.operator in ("Exists", "DoesNotExist") and values:
                found.append(f"{where}: values must be empty for operator {requirement.operator}")
            for value in values:
                found.extend(
                    f"{where}: {message}" for message in metadata_rules.label_value_problems(requirement.key, value)
                )
        return found

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Return whether ``labels`` satisfy the selector; an unparsable selector matches nothing."""
        if self.problems():
            return False
        if any(labels.get(key) != value for key, value in (self.match_labels or {}).items()):
            return False
        return all(_holds(requirement, labels) for requirement in self.match_expressions or [])


def _holds(requirement: LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    present = requirement.key in labels
    inside = present and labels[requirement.key] in (requirement.values or [])
    return {
        "In": inside,
        "NotIn": not inside,
        "Exists": present,
        "DoesNotExist": not present,
    }[requirement.operator]
