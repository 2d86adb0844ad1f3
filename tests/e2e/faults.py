"""The faults of the e2e scenarios' group C (docs/e2e.md, "Fault scenarios (group C)"), made real.

Each helper breaks one thing the way it breaks in a cluster: a container's
processes SIGKILLed (simnode runs each container as a process session, so
this is what the kernel's OOM killer or a crash does), an engine process
killed, the kube-apiserver stopped and started again on the same etcd, a
node that stops heartbeating, a chart Deployment scaled to 0.  They act on
real processes and objects; nothing is simulated inside FMA.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from devcluster import helm_release, processes
from devcluster.simnode import heartbeat
from kube import resources

from . import manifests
from .system import DEPLOYMENTS, E2ESystem, P

__all__ = [
    "ProcessWatch",
    "bound",
    "container_pid",
    "instance_sessions",
    "kill_container",
    "launcher_fleet",
    "listener_session",
    "restart_apiserver",
    "restart_count",
    "scaled_to_zero",
    "silenced",
]

_STATE_FILE = "state.json"


def _environ(pid: int) -> dict[str, str]:
    raw = pathlib.Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _cmdline(pid: int) -> list[str]:
    return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


def _pids() -> Iterator[int]:
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def container_pid(pod: str, command_word: str) -> int:
    """The main process of ``pod``'s container whose command line has ``command_word`` (a session leader)."""
    found = []
    for pid in _pids():
        try:
            if os.getsid(pid) != pid or _environ(pid).get("HOSTNAME") != pod:
                continue
            if any(command_word in word for word in _cmdline(pid)):
                found.append(pid)
        except OSError:
            continue
    # An engine instance forked by a launcher is a session leader with the launcher's command line and
    # environment too; the container's main process is the one no other candidate is an ancestor of.
    table = _stat_table()

    def ancestors(pid: int) -> set[int]:
        seen: set[int] = set()
        while pid > 1 and pid not in seen:
            seen.add(pid)
            pid = table.get(pid, (0, 0))[0]
        return seen - {pid}

    top = [pid for pid in found if not (ancestors(pid) - {pid}) & set(found)]
    assert len(top) == 1, f"expected one {command_word!r} container process of Pod {pod}, found {found}"
    return top[0]


def kill_container(pod: str, command_word: str, *, group: bool) -> int:
    """SIGKILL the container's main process (``group``: with its whole process group); return its PID."""
    pid = container_pid(pod, command_word)
    if group:
        os.killpg(pid, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)
    return pid


def _stat_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session ID) of every live process."""
    table = {}
    for pid in _pids():
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            table[pid] = (int(fields[1]), int(fields[3]))
    return table


def instance_sessions(launcher_pid: int) -> set[int]:
    """The engine instances of the launcher process ``launcher_pid``: the process sessions (an instance's
    session ID is its main PID) of its live descendants other than its own session.

    Instances are forked from the launcher's preloaded parent and never exec, so their command line and
    environment are the launcher's; their own session is what tells them apart.
    """
    table = _stat_table()
    own_sid = table.get(launcher_pid, (0, 0))[1]

    def descends(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            if pid == launcher_pid:
                return True
            pid = table.get(pid, (0, 0))[0]
            seen += 1
        return False

    return {sid for pid, (_, sid) in table.items() if sid != own_sid and descends(pid)}


def listener_session(ip: str, port: int) -> int | None:
    """The session (an engine instance's main PID) of the process listening on ``ip:port`` (TCP, IPv4)."""
    wanted = f"{''.join(f'{int(b):02X}' for b in reversed(ip.split('.')))}:{port:04X}"
    inodes = set()
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] in (wanted, f"00000000:{port:04X}") and fields[3] == "0A":
            inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for pid in _pids():
        try:
            for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
                if os.readlink(fd) in inodes:
                    return os.getsid(pid)
        except OSError:
            continue
    return None


def restart_count(pod: dict[str, Any] | None) -> int:
    """The sum of the Pod's containers' restart counts."""
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses)


@dataclasses.dataclass
class ProcessWatch:
    """Samples the engine instances of one launcher process (``instance_sessions``) until stopped.

    ``first_seen``/``last_seen`` map a session ID to the ``time.monotonic()``
    of the first and last sample that found a live process in it.  The
    samples bracket the truth: a session last seen at t ended after t, one
    first seen at t began before t, so "A last seen before B first seen"
    does not prove A ended before B began, but "A seen alive in the same
    sample as B" proves they overlapped.  ``overlaps`` records those.
    """

    launcher_pid: int
    interval_s: float = 0.05
    first_seen: dict[int, float] = dataclasses.field(default_factory=dict)
    last_seen: dict[int, float] = dataclasses.field(default_factory=dict)
    overlaps: list[tuple[int, ...]] = dataclasses.field(default_factory=list)
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = time.monotonic()
        sessions = instance_sessions(self.launcher_pid)
        for sid in sessions:
            self.first_seen.setdefault(sid, now)
            self.last_seen[sid] = now
        if len(sessions) > 1:
            self.overlaps.append(tuple(sorted(sessions)))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> ProcessWatch:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="process-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def restart_apiserver(e2e: E2ESystem, *, down_s: float) -> float:
    """Stop the kube-apiserver (SIGTERM), keep it down ``down_s`` seconds, start it again on the same etcd
    with the same command line; return the seconds until it answered ``/readyz`` again.

    The new process replaces the old one in the cluster's ``state.json``, so
    tearing the cluster down stops it.
    """
    cluster = e2e.cluster
    index, record = next((i, r) for i, r in enumerate(cluster.processes) if r.name == "kube-apiserver")
    argv = [word for word in _cmdline(record.pid) if word]
    processes.stop(record, grace_seconds=15.0)
    time.sleep(down_s)  # noqa: sleep-ok -- the outage itself: nothing to wait for while the apiserver is down
    started = time.monotonic()
    log = pathlib.Path(record.log).with_name("kube-apiserver-restarted.log")
    cluster.processes[index] = processes.spawn("kube-apiserver", argv, log)
    (cluster.state_dir / _STATE_FILE).write_text(cluster.to_json())
    deadline = started + 120.0
    with cluster.http_client(timeout=3.0) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if http.get("/readyz").status_code == 200:
                    return time.monotonic() - started
            assert time.monotonic() < deadline, "the restarted kube-apiserver did not become ready within 120 s"
            assert processes.is_alive(cluster.processes[index]), f"the restarted kube-apiserver exited; see {log}"
            time.sleep(0.2)  # noqa: sleep-ok -- polling /readyz of a process that has no watch to offer yet


@contextlib.contextmanager
def silenced(e2e: E2ESystem, node: str) -> Iterator[None]:
    """While inside, simnode sends no heartbeat (Lease, Node status) for ``node``."""
    path = heartbeat.silence_file(e2e.chart.simnode_state_dir, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def scaled_to_zero(e2e: E2ESystem, deployment: str, *, timeout: float = 90.0) -> Iterator[Callable[[], int]]:
    """Scale one of the release's Deployments to 0 (its Pods gone) and back to its replicas afterwards.

    Yields a function that counts the Deployment's live Pods (for the test to assert on).
    """
    full = f"{e2e.chart.release}-fma-{deployment}"
    replicas = int(e2e.api.get(DEPLOYMENTS, full, e2e.namespace)["spec"]["replicas"])
    selector = {"app.kubernetes.io/component": deployment}

    def count() -> int:
        return len(e2e.watch.all_pods(selector))

    e2e.scale(full, 0)
    e2e.wait(lambda: count() == 0, timeout=timeout, what=f"every {deployment} Pod gone")
    try:
        yield count
    finally:
        e2e.scale(full, replicas)

        def back() -> bool:
            deployment_obj = e2e.api.get(DEPLOYMENTS, full, e2e.namespace)
            return helm_release.deployment_settled(deployment_obj)

        e2e.wait(back, timeout=timeout, what=f"the {deployment} Deployment Available again with {replicas} replicas")


@contextlib.contextmanager
def launcher_fleet(
    e2e: E2ESystem,
    lc: str,
    lpp: str,
    iscs: dict[str, tuple[int, str]],
    *,
    apps: tuple[str, ...] = (),
    timeout: float = 150.0,
) -> Iterator[None]:
    """A LauncherConfig (``maxInstances: 2``), ISCs (name: (port, options)) and a policy of one launcher per
    GPU node, all launchers Ready; afterwards the Deployments ``apps`` (left by a failed scenario), the
    policy, the launchers, the ISCs and the LC are removed."""
    e2e.create(
        resources.LAUNCHER_CONFIGS,
        manifests.launcher_config(lc, service_account=e2e.launcher_service_account, run_token=e2e.run_token),
    )
    for name, (port, options) in iscs.items():
        e2e.create(
            resources.INFERENCE_SERVER_CONFIGS,
            manifests.inference_server_config(name, launcher_config_name=lc, options=options, port=port),
        )
    e2e.create(
        resources.LAUNCHER_POPULATION_POLICIES,
        manifests.launcher_population_policy(lpp, launcher_config_name=lc, count=1),
    )

    def one_ready_per_node() -> bool:
        ready = {
            p["spec"]["nodeSelector"]["kubernetes.io/hostname"] for p in e2e.launchers() if helm_release.pod_ready(p)
        }
        return ready >= set(e2e.node_names)

    e2e.wait(one_ready_per_node, timeout=timeout, what="a Ready launcher on every GPU node")
    try:
        yield
    finally:
        for app in apps:
            e2e.delete(DEPLOYMENTS, app)
        for app in apps:
            e2e.wait_no_requesters(app, timeout=timeout)
        e2e.delete(resources.LAUNCHER_POPULATION_POLICIES, lpp)
        e2e.wait(lambda: not e2e.launchers(), timeout=timeout, what=f"the launchers of {lpp} deleted")
        for name in iscs:
            e2e.delete(resources.INFERENCE_SERVER_CONFIGS, name)
        e2e.delete(resources.LAUNCHER_CONFIGS, lc)


def describe(e2e: E2ESystem, requester: Mapping[str, Any]) -> str:
    """One line on where a requester stands: phase, node, Ready, its provider and status annotation, last Event."""
    meta = requester.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    provider_name = (meta.get("labels") or {}).get(P + "dual", "")
    provider = e2e.pod(provider_name) if provider_name else None
    record = ((provider or {}).get("metadata", {}).get("annotations") or {}).get(P + "requester", "")
    events = e2e.watch.events_of(requester)
    last = events[-1] if events else None
    last_event = f"{last.get('reason')}: {str(last.get('message'))[:160]}" if last else "none"
    return (
        f"{meta.get('name')}: phase={(requester.get('status') or {}).get('phase')} "
        f"node={(requester.get('spec') or {}).get('nodeName') or '-'} ready={helm_release.pod_ready(requester)} "
        f"provider={provider_name or '-'}{'' if provider or not provider_name else '(gone)'} "
        f"provider_records={record.split(' ')[0][:8] or '-'} "
        f"status={annotations.get(P + 'status', '-')[:200]} last_event={last_event}"
    )


def bound(e2e: E2ESystem, requester: dict[str, Any]) -> bool:
    """The requester is Ready and its provider records its UID."""
    if not helm_release.pod_ready(requester):
        return False
    provider = e2e.pod(requester["metadata"].get("labels", {}).get(P + "dual", ""))
    record = (provider or {}).get("metadata", {}).get("annotations", {}).get(P + "requester", "")
    return bool(record.split(" ")[0] == requester["metadata"]["uid"])
