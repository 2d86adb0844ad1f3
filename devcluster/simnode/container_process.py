"""A container's process: started in its own session with its volumes mounted, watched, stopped.

Volumes are bind-mounted in a private mount namespace made by ``unshare``
(util-linux) just for the container's process: ``unshare --mount`` execs a
tiny ``sh`` script that creates the mount points, bind-mounts each volume
directory (read-only where asked) and then execs the real command, so the
container's PID is the one simnode started and it leads its own process
group.  Nothing is mounted in the host's namespace; only missing mount-point
directories are created on the host (empty).

A process from before a simnode restart is *adopted*: it is not our child,
so its exit is noticed through ``/proc`` and its exit code is unknown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from devcluster import processes
from devcluster.simnode import image_rootfs

__all__ = ["Exit", "Handle", "Mount", "in_setup", "is_setup_argv", "launch_argv", "start"]

_MOUNT_FAILED = 121
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SCRIPT_NAME = "simnode-container"
"""``$0`` of the setup script in ``launch_argv``: how its process is told apart from the container's command."""


@dataclasses.dataclass(frozen=True)
class Mount:
    """A volume directory bind-mounted at ``target``."""

    source: str
    target: str
    read_only: bool = False
    is_file: bool = False
    """A single file (e.g. ``/etc/hosts``) rather than a directory."""


@dataclasses.dataclass(frozen=True)
class Exit:
    """How a process ended; ``exit_code`` None means unknown (an adopted process)."""

    exit_code: int | None
    signal: int | None = None


def _hides_a_source(mount: Mount, mounts: Sequence[Mount]) -> bool:
    """Whether mounting at ``mount.target`` would hide the source of another of ``mounts``.  Pure."""
    prefix = mount.target.rstrip("/") + "/"
    return any(other is not mount and other.source.startswith(prefix) for other in mounts)


def _image_root_lines(root: image_rootfs.Root) -> tuple[list[str], str]:
    """Shell lines that mount the image (overlay: image below, a fresh writable layer above); the mount point."""
    scratch = root.scratch
    merged = shlex.quote(str(scratch / "merged"))
    upper, work = shlex.quote(str(scratch / "upper")), shlex.quote(str(scratch / "work"))
    options = shlex.quote(f"lowerdir={root.rootfs},upperdir={scratch / 'upper'},workdir={scratch / 'work'}")
    lines = [
        f"rm -rf {upper} {work}",
        f"mkdir -p {upper} {work} {merged}",
        f"mount -t overlay overlay -o {options} {merged} || exit {_MOUNT_FAILED}",
    ]
    for system in ("dev", "proc", "sys"):
        lines.append(f"mkdir -p {merged}/{system} && mount --rbind /{system} {merged}/{system} || exit {_MOUNT_FAILED}")
    return lines, str(scratch / "merged")


def _kept_under(target: str, keep: Sequence[str]) -> list[str]:
    """The outermost of ``keep`` strictly below ``target`` (what a mount at ``target`` would hide).  Pure."""
    prefix = target.rstrip("/") + "/"
    below = sorted({path.rstrip("/") for path in keep if path.startswith(prefix)})
    outermost: list[str] = []
    for path in below:
        if not any(path.startswith(kept + "/") for kept in outermost):
            outermost.append(path)
    return outermost


def launch_argv(
    argv: Sequence[str],
    mounts: Sequence[Mount],
    unshare: str = "unshare",
    root: image_rootfs.Root | None = None,
    keep: Sequence[str] = (),
) -> list[str]:
    """The command line that runs ``argv`` with ``mounts`` in a private mount namespace.  Pure.

    With ``root`` (image mode) the mounts go inside the image's root file system and the command runs there,
    chrooted, as ``root``'s user and groups.

    ``keep`` names host directories the process needs (its interpreter, the project, the binaries' cache)
    in host mode.  A volume mounted over one of them (the chart's emptyDir at ``/tmp`` while the project
    lives under ``/tmp``) would hide it, so each is held by a helper process's working directory before
    that mount and bound back at its own path afterwards (inside the volume, as a mount point only).
    """
    if not mounts and root is None:
        return list(argv)
    # The mount tools come from the system PATH; the command is then looked up in the container's PATH.
    lines = ["set -e", 'container_path="$PATH"', f"PATH={_SYSTEM_PATH}"]
    prefix = ""
    if root is not None:
        root_lines, prefix = _image_root_lines(root)
        lines.extend(root_lines)
    # Shallow targets first, except that a target over another mount's source (an emptyDir at /tmp
    # while the volumes live under /tmp) is mounted after the mounts whose sources it would hide.
    for mount in sorted(mounts, key=lambda m: (_hides_a_source(m, mounts), m.target.count("/"))):
        inside = image_rootfs.resolve_in_root(root.rootfs, mount.target) if root is not None else mount.target
        target = shlex.quote(prefix + inside)
        hidden = _kept_under(mount.target, keep) if root is None and not mount.is_file else []
        for index, path in enumerate(hidden):
            quoted = shlex.quote(path)
            lines.append(f"(cd {quoted} && exec sleep 600) & keep_{index}=$!")
            # Wait (bounded) until the helper really sits in the directory, before anything covers it.
            lines.append(
                f'tries=0; until [ "$(readlink /proc/$keep_{index}/cwd)" = {quoted} ]; do '
                f"tries=$((tries + 1)); [ $tries -lt 100000 ] || exit {_MOUNT_FAILED}; done"
            )
        if mount.is_file:
            lines.append(f"[ -e {target} ] || touch {target}")
        else:
            lines.append(f"mkdir -p {target}")
        lines.append(f"mount --bind {shlex.quote(mount.source)} {target} || exit {_MOUNT_FAILED}")
        if mount.read_only:
            lines.append(f"mount -o remount,bind,ro {target} || exit {_MOUNT_FAILED}")
        for index, path in enumerate(hidden):
            held = f'"/proc/$keep_{index}/cwd"'
            # --no-canonicalize: mount(8) would otherwise resolve the held link to the path now covered.
            bind = f"mount --no-canonicalize --bind {held} {shlex.quote(path)}"
            lines.append(f"mkdir -p {shlex.quote(path)} && {bind} || exit {_MOUNT_FAILED}")
            lines.append(f'kill "$keep_{index}"')
    if root is not None and root.read_only:
        # readOnlyRootFilesystem: the working directory exists first, then the image's root turns read-only
        # (this mount only: the volumes bound inside stay as they are).
        workdir = shlex.quote(prefix + image_rootfs.resolve_in_root(root.rootfs, root.workdir))
        lines.append(f"mkdir -p {workdir}")
        lines.append(f"mount -o remount,bind,ro {shlex.quote(prefix)} || exit {_MOUNT_FAILED}")
    lines.append('PATH="$container_path"')
    if root is not None:
        groups = ",".join(str(group) for group in root.groups)
        enter = [sys.executable, "-I", "-S", "-c", image_rootfs.enter_code(), prefix, str(root.uid), str(root.gid)]
        enter.append(groups)
        lines.append(f'exec {shlex.join(enter)} {shlex.quote(root.workdir)} "$@"')
    else:
        lines.append('exec "$@"')
    script = "\n".join(lines)
    return [unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, _SCRIPT_NAME, *argv]


def is_setup_argv(argv: Sequence[str]) -> bool:
    """Whether a process's argv is one of ``launch_argv``'s setup stages rather than the container's own command:
    ``unshare``, the mount script, or (image mode) the helper that enters the image's root.  Pure.

    During those stages the process still sees the host's root file system; only the command it finally
    execs runs inside the container (the same PID throughout)."""
    if not argv:
        return False
    if os.path.basename(argv[0]) == "unshare" and "--mount" in argv:
        return True
    if len(argv) > 3 and argv[1] == "-c" and argv[3] == _SCRIPT_NAME:
        return True
    return len(argv) > 4 and list(argv[1:4]) == ["-I", "-S", "-c"] and argv[4] == image_rootfs.enter_code()


def in_setup(pid: int) -> bool:
    """Whether process ``pid`` is still in a setup stage of ``launch_argv`` (False once it runs the container's
    command, or when it is gone)."""
    try:
        raw = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return is_setup_argv([part.decode(errors="replace") for part in raw.split(b"\0")[:-1]])


def host_paths_needed(env: Mapping[str, str]) -> list[str]:
    """Host directories a host-mode container needs: this interpreter's prefix and import path, its PATH."""
    candidates = [sys.prefix, *sys.path, *env.get("PATH", "").split(os.pathsep)]
    found = {os.path.realpath(path) for path in candidates if path and os.path.isabs(path)}
    return sorted(path for path in found if os.path.isdir(path))


class Handle:
    """A container process, started by us or adopted after a restart."""

    def __init__(self, pid: int, start_time: int, popen: subprocess.Popen[bytes] | None) -> None:
        self.pid = pid
        self.start_time = start_time
        self._popen = popen

    @classmethod
    def adopt(cls, pid: int, start_time: int) -> Handle:
        """A process recorded before a restart (it may be gone already)."""
        return cls(pid, start_time, None)

    def poll(self) -> Exit | None:
        """None while the process runs, else how it ended."""
        if self._popen is not None:
            code = self._popen.poll()
            if code is None:
                return None
            return Exit(exit_code=128 - code, signal=-code) if code < 0 else Exit(exit_code=code)
        if processes.process_start_time(self.pid) == self.start_time:
            return None
        return Exit(exit_code=None)

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the process's group (the container's processes)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, grace_seconds: float) -> Exit:
        """SIGTERM the group, wait up to ``grace_seconds``, SIGKILL the group; returns how it ended."""
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + max(0.0, grace_seconds)
        result = self.poll()
        while result is None and time.monotonic() < deadline:
            time.sleep(0.05)
            result = self.poll()
        self.signal_group(signal.SIGKILL)
        while result is None:
            time.sleep(0.02)
            result = self.poll()
        return result


def start(
    argv: Sequence[str],
    *,
    mounts: Sequence[Mount],
    env: Mapping[str, str],
    cwd: str,
    log_path: pathlib.Path,
    root: image_rootfs.Root | None = None,
) -> Handle:
    """Start the container's process in a new session with output appended to ``log_path``.

    Raises ``OSError`` when the program cannot be executed at all.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            launch_argv(
                argv, mounts, shutil.which("unshare", path=_SYSTEM_PATH) or "unshare", root, host_paths_needed(env)
            ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd="/" if root is not None else cwd,
            start_new_session=True,
            close_fds=True,
        )
    started = processes.process_start_time(popen.pid)
    return Handle(popen.pid, started if started is not None else 0, popen)
