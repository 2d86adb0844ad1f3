"""The status the dual-pods controller writes on InferenceServerConfigs (docs/api.md, "Status").

An ISC's status says whether its spec is acceptable (its routing metadata),
whether its LauncherConfig resolves, and which engine starts failed on which
node.  ``compute`` decides it from the ISC, its LauncherConfig and the start
failures the controller remembers; the controller only writes the result.
The shape (``errors`` in words, ``Accepted`` and ``ResolvedRefs`` conditions
keeping their ``lastTransitionTime`` while their status holds, no write when
nothing changed) is the one the populator uses for its own kinds, so both go
through ``population_status.compute``.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from controllers import launcher_template, population_status
from crds import routing_metadata, status

__all__ = ["StartFailure", "compute"]


@dataclasses.dataclass(frozen=True)
class StartFailure:
    """Engines of this ISC that failed to start on one node."""

    node: str
    failures: int
    message: str


def _refs(lc_name: str, launcher_config: Mapping[str, Any] | None) -> population_status.Verdict:
    if launcher_config is None:
        return population_status.Verdict(
            status.RESOLVED_REFS,
            False,
            status.REASON_LAUNCHER_CONFIG_NOT_FOUND,
            f'LauncherConfig "{lc_name}" does not exist',
        )
    malformed = launcher_template.malformation(launcher_config)
    if malformed:
        return population_status.Verdict(
            status.RESOLVED_REFS,
            False,
            status.REASON_LAUNCHER_CONFIG_MALFORMED,
            f'LauncherConfig "{lc_name}" is malformed: {malformed}',
        )
    return population_status.Verdict(
        status.RESOLVED_REFS, True, status.REASON_REFS_RESOLVED, f'LauncherConfig "{lc_name}" exists'
    )


def compute(
    raw: Mapping[str, Any],
    launcher_config: Mapping[str, Any] | None,
    start_failures: Sequence[StartFailure],
    now: datetime.datetime,
) -> population_status.StatusPlan:
    """Return the status plan of the ISC ``raw`` (pure).

    ``launcher_config`` is the raw LC its ``launcherConfigName`` names, or None
    when there is none (or the name is empty); ``start_failures`` are the
    controller's remembered engine start failures of this ISC, in the order to
    report them.  The plan's ``status`` is None when the stored one already
    says the same; its ``event`` is a Warning to record when the problems changed.
    """
    spec_raw = raw.get("spec")
    spec: Mapping[str, Any] = spec_raw if isinstance(spec_raw, Mapping) else {}
    server_raw = spec.get("modelServerConfig")
    server: Mapping[str, Any] = server_raw if isinstance(server_raw, Mapping) else {}
    spec_problems = routing_metadata.problems(server.get("labels"), server.get("annotations"))
    accepted = population_status.Verdict(
        status.ACCEPTED,
        not spec_problems,
        status.REASON_INVALID_SPEC if spec_problems else status.REASON_VALID,
        "; ".join(spec_problems) or "valid",
    )
    refs = _refs(str(spec.get("launcherConfigName") or ""), launcher_config)
    errors = list(spec_problems)
    if not refs.ok:
        errors.append(refs.message)
    errors.extend(
        f"engine start failed {failure.failures} time(s) on node {failure.node}: {failure.message}"
        for failure in start_failures
    )
    return population_status.compute(raw, errors, [accepted, refs], now)
