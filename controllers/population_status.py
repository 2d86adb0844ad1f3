"""The status the populator writes on LauncherConfigs and LauncherPopulationPolicies.

See docs/api.md, "Status"; docs/populator.md, "Status".

Upstream replaces the whole status with ``{observedGeneration, errors}`` and
skips the write when nothing changed; we add the standard conditions
(``Accepted`` on both, ``ResolvedRefs`` on policies) and keep ``errors`` in
upstream's exact wording.  ``compute`` returns the status to write (or None
when the stored one already says the same) and the Warning Event to record
when the set of problems changed, so that a user learns about bad input once,
not on every resync.

A condition keeps its ``lastTransitionTime`` while its status stays the
same.  Under upstream's CRD schema ``conditions`` is pruned by the apiserver;
``compare_conditions=False`` then compares only what survives, so a pruned
field never causes a write loop.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from controllers import population_target
from crds import status

__all__ = ["StatusEvent", "StatusPlan", "Verdict", "compute", "config_status", "policy_status"]


@dataclasses.dataclass(frozen=True)
class StatusEvent:
    """A Warning Event about the object."""

    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class StatusPlan:
    """The status write (None when not needed) and the Event to record (None when none)."""

    status: dict[str, Any] | None
    event: StatusEvent | None


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One condition's outcome: its type, whether it holds, reason and message."""

    condition_type: str
    ok: bool
    reason: str
    message: str


def _timestamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(
    verdicts: Sequence[Verdict], previous: Sequence[Mapping[str, Any]], generation: int | None, now: datetime.datetime
) -> list[dict[str, Any]]:
    before = {str(item.get("type")): item for item in previous if isinstance(item, Mapping)}
    result: list[dict[str, Any]] = []
    for verdict in verdicts:
        value = "True" if verdict.ok else "False"
        old = before.get(verdict.condition_type)
        transition = old.get("lastTransitionTime") if old is not None and old.get("status") == value else None
        condition: dict[str, Any] = {
            "type": verdict.condition_type,
            "status": value,
            "lastTransitionTime": transition or _timestamp(now),
            "reason": verdict.reason,
            "message": verdict.message,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        result.append(condition)
    return result


def _comparable(conditions: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
        for c in conditions
        if isinstance(c, Mapping)
    )


def compute(
    raw: Mapping[str, Any],
    errors: Sequence[str],
    verdicts: Sequence[Verdict],
    now: datetime.datetime,
    *,
    compare_conditions: bool = True,
) -> StatusPlan:
    """Return the status plan of ``raw`` given its problems and condition verdicts (pure)."""
    meta = raw.get("metadata") or {}
    generation = meta.get("generation") if isinstance(meta.get("generation"), int) else None
    stored_raw = raw.get("status")
    stored: Mapping[str, Any] = stored_raw if isinstance(stored_raw, Mapping) else {}
    stored_errors = list(stored.get("errors") or [])
    stored_conditions = [c for c in (stored.get("conditions") or []) if isinstance(c, Mapping)]
    conditions = _conditions(verdicts, stored_conditions, generation, now)
    body: dict[str, Any] = {"errors": list(errors), "conditions": conditions}
    if generation is not None:
        body["observedGeneration"] = generation
    same = stored.get("observedGeneration") == generation and stored_errors == list(errors)
    if compare_conditions:
        same = same and _comparable(stored_conditions) == _comparable(conditions)
    event = None
    if errors and stored_errors != list(errors):
        failed = next((v for v in verdicts if not v.ok), None)
        event = StatusEvent(reason=failed.reason if failed else status.REASON_INVALID_SPEC, message="; ".join(errors))
    return StatusPlan(status=None if same else body, event=event)


def config_status(
    raw: Mapping[str, Any],
    view: population_target.ConfigView,
    now: datetime.datetime,
    *,
    compare_conditions: bool = True,
) -> StatusPlan:
    """The status of a LauncherConfig: its one possible error is a malformed template (pure)."""
    if view.malformation is None:
        verdict = Verdict(status.ACCEPTED, True, status.REASON_VALID, "the launcher template is usable")
        errors: list[str] = []
    else:
        verdict = Verdict(status.ACCEPTED, False, status.REASON_INVALID_SPEC, view.malformation)
        errors = [view.malformation]
    return compute(raw, errors, [verdict], now, compare_conditions=compare_conditions)


def policy_status(
    raw: Mapping[str, Any],
    view: population_target.PolicyView,
    configs: Mapping[str, population_target.ConfigView],
    now: datetime.datetime,
    *,
    compare_conditions: bool = True,
) -> StatusPlan:
    """The status of a LauncherPopulationPolicy: selector, spec and LauncherConfig references (pure)."""
    errors: list[str] = []
    if view.selector_problem is not None:
        errors.append(view.selector_problem)
    errors.extend(view.spec_problems)
    if view.selector_problem is not None:
        accepted = Verdict(status.ACCEPTED, False, status.REASON_INVALID_SELECTOR, view.selector_problem)
    elif view.spec_problems:
        accepted = Verdict(status.ACCEPTED, False, status.REASON_INVALID_SPEC, "; ".join(view.spec_problems))
    else:
        accepted = Verdict(status.ACCEPTED, True, status.REASON_VALID, "the policy is valid")
    ref_errors: list[str] = []
    ref_reason = status.REASON_REFS_RESOLVED
    for entry in view.entries:
        config = configs.get(entry.launcher_config_name)
        if config is None:
            ref_errors.append(status.lpp_missing_lc_message(entry.launcher_config_name))
            ref_reason = _first_failure(ref_reason, status.REASON_LAUNCHER_CONFIG_NOT_FOUND)
        elif config.malformation is not None:
            ref_errors.append(status.lpp_malformed_lc_message(entry.launcher_config_name, config.malformation))
            ref_reason = _first_failure(ref_reason, status.REASON_LAUNCHER_CONFIG_MALFORMED)
    errors.extend(ref_errors)
    resolved = Verdict(
        status.RESOLVED_REFS,
        not ref_errors,
        ref_reason,
        "; ".join(ref_errors) if ref_errors else "every referenced LauncherConfig exists and is well-formed",
    )
    return compute(raw, errors, [accepted, resolved], now, compare_conditions=compare_conditions)


def _first_failure(current: str, candidate: str) -> str:
    return candidate if current == status.REASON_REFS_RESOLVED else current
