"""What every benchmark result records about its own run: when, from which commit, on how busy a machine.

A figure in docs/performance.md must be traceable to one JSON in
``benchmarks/results/`` and that JSON to the code that produced it.  Each
benchmark calls ``start()`` before its first measurement and ``finish()``
just before writing its result, and stores the returned mapping under the
key ``"run"``:

- ``started_utc`` / ``finished_utc``: ISO 8601 UTC timestamps;
- ``commit``: ``git rev-parse HEAD`` of the checkout the script ran from;
- ``uncommitted``: tracked files with uncommitted changes at the start (other
  people's edits in a shared tree show up here; an empty list means the
  result belongs to ``commit`` exactly);
- ``load_average_start`` / ``load_average_end``: ``os.getloadavg()`` (1, 5
  and 15 minutes), and ``cpus``: the CPUs this process may run on.

Only the standard library: the benchmarks import this as a sibling module.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import subprocess
from typing import Any

__all__ = ["finish", "start"]

_REPO = pathlib.Path(__file__).resolve().parent.parent


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=_REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.rstrip("\n")


def start() -> dict[str, Any]:
    """The run's record so far: start time, commit, uncommitted tracked files, load, CPUs."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "started_utc": _utc_now(),
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "uncommitted": sorted(line[3:] for line in status.splitlines() if line.strip()),
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_start": _load(),
    }


def finish(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` plus the finish time and the load average at the end (a new mapping)."""
    return {**record, "finished_utc": _utc_now(), "load_average_end": _load()}
