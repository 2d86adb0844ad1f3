"""What simnode must remember across its own restarts, per Pod, on disk.

The kubelet keeps checkpoints so that a restarted kubelet adopts running
containers; simnode does the same with one JSON file per Pod under
``STATE_DIR/pods/UID/``: the Pod's address, its GPUs and, per container,
the process (PID plus kernel start time, so a reused PID is not mistaken
for it), restart count and last termination.  The per-container log files
live next to it.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil

import pydantic

__all__ = [
    "ContainerEntry",
    "PodRecord",
    "ProcessEntry",
    "TerminationEntry",
    "find_log",
    "load",
    "load_all",
    "log_path",
    "pod_dir",
    "remove",
    "save",
]


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class ProcessEntry(_Model):
    """A running container process."""

    pid: int
    start_time: int
    started_at: str


class TerminationEntry(_Model):
    """How a container's previous run ended."""

    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    signal: int | None = None


class ContainerEntry(_Model):
    """One container's runtime state."""

    restart_count: int = 0
    process: ProcessEntry | None = None
    last_terminated: TerminationEntry | None = None
    succeeded: bool = False


class PodRecord(_Model):
    """One Pod's runtime state."""

    uid: str
    namespace: str
    name: str
    node: str
    pod_ip: str | None = None
    start_time: str | None = None
    gpus: dict[str, list[str]] = pydantic.Field(default_factory=dict)
    containers: dict[str, ContainerEntry] = pydantic.Field(default_factory=dict)
    app_containers: list[str] = pydantic.Field(default_factory=list)


def pod_dir(state_dir: pathlib.Path, uid: str) -> pathlib.Path:
    """The Pod's directory: record, logs and volumes."""
    return state_dir / "pods" / uid


def log_path(state_dir: pathlib.Path, uid: str, container: str) -> pathlib.Path:
    """Where a container's stdout and stderr go."""
    return pod_dir(state_dir, uid) / "logs" / f"{container}.log"


def save(state_dir: pathlib.Path, record: PodRecord) -> None:
    """Write the record atomically."""
    directory = pod_dir(state_dir, record.uid)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "record.json.tmp"
    tmp.write_text(record.model_dump_json(indent=1))
    os.replace(tmp, directory / "record.json")


def load(state_dir: pathlib.Path, uid: str) -> PodRecord | None:
    """The Pod's record, or None when there is none (or it is unreadable)."""
    path = pod_dir(state_dir, uid) / "record.json"
    try:
        return PodRecord.model_validate_json(path.read_text())
    except (OSError, pydantic.ValidationError):
        return None


def load_all(state_dir: pathlib.Path) -> list[PodRecord]:
    """Every readable record."""
    root = state_dir / "pods"
    if not root.is_dir():
        return []
    records = [load(state_dir, child.name) for child in sorted(root.iterdir())]
    return [r for r in records if r is not None]


def remove(state_dir: pathlib.Path, uid: str) -> None:
    """Forget the Pod: its record, logs and volumes."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(pod_dir(state_dir, uid))


def find_log(state_dir: pathlib.Path, namespace: str, name: str, container: str | None) -> pathlib.Path | None:
    """The log of a Pod's container (its first app container when None), for ``fma-dev logs``."""
    for record in load_all(state_dir):
        if record.namespace == namespace and record.name == name:
            chosen = container or next(iter(record.app_containers or record.containers), None)
            if chosen is None:
                return None
            path = log_path(state_dir, record.uid, chosen)
            return path if path.exists() else None
    return None
