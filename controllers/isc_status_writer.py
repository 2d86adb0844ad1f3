"""The ISC status item of the dual-pods controller: compute with ``isc_status``, write when it changed.

An ISC's status (docs/api.md, "Status") is decided purely by ``isc_status.compute``
from the ISC, its LauncherConfig and the engine start failures the controller
remembers; this item reads those from the caches and the controller's state
and makes the one status write.  The item is cluster-wide (not per node), so
it sits apart from the requester and launcher items.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable

import kube
from controllers import dpc_state, isc_status
from kube import resources

__all__ = ["ISCStatusWriter"]


class ISCStatusWriter:
    """Writes one ISC's status when what ``isc_status.compute`` decides differs from what is stored."""

    def __init__(
        self,
        api: kube.Client,
        *,
        namespace: str,
        iscs: kube.WatchCache,
        lcs: kube.WatchCache,
        state: dpc_state.DPCState,
        wall_clock: Callable[[], float],
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._iscs = iscs
        self._lcs = lcs
        self._state = state
        self._wall = wall_clock

    def write(self, name: str) -> float | None:
        """Write an ISC's status: observedGeneration, Accepted/ResolvedRefs conditions and errors."""
        raw = self._iscs.get_by_name(name, self._namespace)
        if raw is None:
            return None
        lc_name = str((raw.get("spec") or {}).get("launcherConfigName") or "")
        lc = self._lcs.get_by_name(lc_name, self._namespace) if lc_name else None
        failures = [
            isc_status.StartFailure(node, failed.failures, failed.message)
            for node, failed in self._state.start_failures_of(name)
        ]
        now = datetime.datetime.fromtimestamp(self._wall(), datetime.UTC)
        plan = isc_status.compute(raw, lc, failures, now)
        if plan.status is None:
            return None
        with contextlib.suppress(kube.errors.NotFound):
            self._api.patch(
                resources.INFERENCE_SERVER_CONFIGS, name, {"status": plan.status}, self._namespace, subresource="status"
            )
        return None
