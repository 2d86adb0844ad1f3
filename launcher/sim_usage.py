"""The simulated GPU memory usage that engine simulators publish and requester agents read.

Without real GPUs there is no NVML to ask, so each simulator writes its
current per-GPU usage to ``<dir>/engine-<pid>.json`` (atomically, by rename)
and the requester agent on the same host sums the files of live engines for
its own GPU UUIDs.  A file whose process is gone is ignored, so a crashed
engine frees its memory as a real one would.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib

import pydantic

__all__ = ["EngineUsage", "publish", "read_total", "withdraw"]


class EngineUsage(pydantic.BaseModel):
    """One engine's file: its PID and MiB in use per GPU UUID."""

    model_config = pydantic.ConfigDict(extra="forbid")

    pid: int
    usage_mib: dict[str, int]


def _path(directory: pathlib.Path, pid: int) -> pathlib.Path:
    return directory / f"engine-{pid}.json"


def publish(directory: pathlib.Path, usage: EngineUsage) -> None:
    """Write ``usage`` atomically for this engine (creates the directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = _path(directory, usage.pid)
    tmp = final.with_suffix(".tmp")
    tmp.write_text(usage.model_dump_json())
    os.replace(tmp, final)


def withdraw(directory: pathlib.Path, pid: int) -> None:
    """Remove this engine's file, e.g. at shutdown."""
    with contextlib.suppress(FileNotFoundError):
        _path(directory, pid).unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_total(directory: pathlib.Path, uuids: list[str]) -> dict[str, int]:
    """MiB in use per UUID of ``uuids``, summed over the live engines' files (0 where none)."""
    totals = dict.fromkeys(uuids, 0)
    if not directory.is_dir():
        return totals
    for path in directory.glob("engine-*.json"):
        try:
            usage = EngineUsage.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a file being replaced or left half-written by a killed engine
        if not _alive(usage.pid):
            continue
        for uuid, mib in usage.usage_mib.items():
            if uuid in totals:
                totals[uuid] += mib
    return totals
