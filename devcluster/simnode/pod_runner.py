"""One Pod on a process-running node: its containers' lives, probes, status and deletion.

Each such Pod gets one supervising thread (process-running nodes carry few
Pods; status-only nodes never get one).  The watch hands the runner the
latest Pod object and wakes it; every pass is level-based: look at the Pod
and the processes, act, report the status if it changed, and sleep until the
next probe, back-off or process check is due.

The pure decisions live elsewhere (``compatibility``, ``environment``,
``gpu_allocation`` via ``node_ledger``, ``restart_rule``, ``pod_status``,
``probe.Tracker``); this module performs them.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import logging
import pathlib
import signal
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import kube
from devcluster.simnode import (
    compatibility,
    container_process,
    dra_prepare,
    environment,
    errors,
    event_recorder,
    fleet,
    gpu_allocation,
    heartbeat,
    image_rootfs,
    node_ledger,
    pod,
    pod_status,
    probe,
    restart_rule,
    runtime_record,
    volume,
)

__all__ = ["PodRunner", "RunnerContext", "ShutdownMode"]

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.5
_IDLE_SECONDS = 30.0
_RETRY_SECONDS = 3.0
_DRIFT_SECONDS = 1.0
"""How long the apiserver's copy of the status may disagree with ours before we send ours again."""
_VOLUME_SYNC_SECONDS = 60.0


class ShutdownMode:
    """How a runner ends when simnode stops or its node disappears."""

    KILL = "kill"
    LEAVE = "leave"
    NODE_GONE = "node-gone"


@dataclasses.dataclass(frozen=True)
class RunnerContext:
    """What every runner of one node shares."""

    api: kube.Client
    state_dir: pathlib.Path
    node: fleet.NodeIdentity
    ledger: node_ledger.NodeLedger
    events: event_recorder.EventRecorder
    service_env: Mapping[str, str]
    base_env: Mapping[str, str]
    foreign_ips: Callable[[str], Collection[str]]
    """Pod IPs in use elsewhere in the cluster, excluding the given Pod UID's."""
    hosts_file: pathlib.Path | None = None
    """Mounted read-only at ``/etc/hosts`` in every container (the Service names), when set."""
    images: image_rootfs.Store | None = None
    """Image mode: containers whose image is one of these archives run inside it; None: all on the host."""


class _PodLog(logging.LoggerAdapter):  # type: ignore[type-arg]  # generic only in typeshed
    """Binds pod and node, and keeps the call's own ``extra`` fields too."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now() -> str:
    return fleet.rfc3339(datetime.datetime.now(datetime.UTC))


@dataclasses.dataclass
class _Container:
    spec: pod.Container
    init: bool
    entry: runtime_record.ContainerEntry
    handle: container_process.Handle | None = None
    final: pod_status.Terminated | None = None
    waiting: pod_status.Waiting | None = None
    next_start: float = 0.0
    readiness: probe.Tracker | None = None
    liveness: probe.Tracker | None = None
    startup: probe.Tracker | None = None
    host_fallback_reported: bool = False

    @property
    def started(self) -> bool:
        return self.handle is not None and (self.startup is None or self.startup.result)

    @property
    def ready(self) -> bool:
        if not self.started:
            return False
        return self.readiness is None or self.readiness.result

    def arm_probes(self, now: float) -> None:
        spec = self.spec
        self.startup = probe.Tracker(spec.startup_probe, now, initial=False) if spec.startup_probe else None
        self.liveness = probe.Tracker(spec.liveness_probe, now, initial=True) if spec.liveness_probe else None
        self.readiness = probe.Tracker(spec.readiness_probe, now, initial=False) if spec.readiness_probe else None


def _terminated(entry: runtime_record.TerminationEntry) -> pod_status.Terminated:
    return pod_status.Terminated(
        exit_code=entry.exit_code,
        reason=entry.reason,
        started_at=entry.started_at,
        finished_at=entry.finished_at,
        signal=entry.signal,
    )


class PodRunner:
    """Runs one Pod's containers as local processes and reports its status."""

    def __init__(self, ctx: RunnerContext, the_pod: pod.Pod, record: runtime_record.PodRecord | None) -> None:
        self._ctx = ctx
        meta = the_pod.metadata
        self._uid = meta.uid
        self._latest: pod.Pod | None = the_pod
        self._lock = threading.Lock()
        self._kick = threading.Event()
        self._shutdown: str | None = None
        self._record = record or runtime_record.PodRecord(
            uid=meta.uid, namespace=meta.namespace, name=meta.name, node=ctx.node.name
        )
        self._record.app_containers = [c.name for c in the_pod.spec.containers]
        self._containers: list[_Container] = []
        policy = the_pod.spec.restart_policy
        for spec, init in [(c, True) for c in the_pod.spec.init_containers] + [
            (c, False) for c in the_pod.spec.containers
        ]:
            entry = self._record.containers.setdefault(spec.name, runtime_record.ContainerEntry())
            container = _Container(spec=spec, init=init, entry=entry)
            last = entry.last_terminated
            if last is not None and entry.process is None:
                # Recorded before a restart: a container that will not run again keeps its end state.
                done = entry.succeeded if init else not restart_rule.should_restart(policy, last.exit_code)
                if done or (init and policy == "Never"):
                    container.final = _terminated(last)
            self._containers.append(container)
        self._prepared = False
        self._next_prepare = 0.0
        self._unsupported: tuple[str, ...] = ()
        self._tokens: list[volume.TokenFile] = []
        self._next_volume_sync = 0.0
        self._last_sent: Any = None
        self._drift_since: float | None = None
        self._stopped_for_deletion = False
        self._delete_sent = False
        self._log = _PodLog(logger, {"pod": the_pod.key, "node": ctx.node.name})
        self._thread = threading.Thread(target=self._loop, name=f"pod:{the_pod.key}", daemon=True)

    # -- called from other threads -------------------------------------------------

    def start(self) -> None:
        """Start supervising."""
        self._thread.start()

    def update(self, the_pod: pod.Pod | None) -> None:
        """Hand over the latest Pod object (None: it is gone from the API) and wake the runner."""
        with self._lock:
            self._latest = the_pod
        self._kick.set()

    def shutdown(self, mode: str) -> None:
        """Ask the runner to end (see ``ShutdownMode``); ``join`` waits for it."""
        with self._lock:
            self._shutdown = mode
        self._kick.set()

    def join(self, timeout: float) -> None:
        """Wait for the runner's thread to end."""
        self._thread.join(timeout)

    @property
    def node_name(self) -> str:
        """The node the Pod runs on."""
        return self._ctx.node.name

    @property
    def alive(self) -> bool:
        """Whether the runner still supervises its Pod."""
        return self._thread.is_alive()

    # -- the loop ------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._kick.clear()
            with self._lock:
                the_pod, mode = self._latest, self._shutdown
            if mode is not None:
                self._end(mode, the_pod)
                return
            try:
                wait = self._step(the_pod)
            except Exception:  # noqa: BLE001 - supervising code: keep the Pod supervised, back off
                self._log.exception("pod step failed")
                wait = _RETRY_SECONDS
            if wait is None:
                return
            self._kick.wait(wait)

    def _end(self, mode: str, the_pod: pod.Pod | None) -> None:
        if mode == ShutdownMode.LEAVE:
            self._save()
            return
        grace = 2.0 if the_pod is None else min(5.0, float(the_pod.spec.termination_grace_period_seconds))
        self._stop_all(grace)
        if mode == ShutdownMode.NODE_GONE:
            self._forget()
        else:
            self._save()

    def _forget(self) -> None:
        self._ctx.ledger.release(self._uid)
        self._ctx.events.forget(self._uid)
        runtime_record.remove(self._ctx.state_dir, self._uid)

    def _step(self, the_pod: pod.Pod | None) -> float | None:
        now = time.monotonic()
        if the_pod is None:
            self._stop_all(2.0)
            self._forget()
            self._log.info("pod gone; runner ends")
            return None
        if the_pod.metadata.deletion_timestamp:
            return self._step_deleting(the_pod)
        if not self._prepared:
            wait = self._prepare(the_pod, now)
            if wait is not None:
                self._publish(the_pod)
                return wait
        if self._run_inits(the_pod, now):
            self._run_apps(the_pod, now)
        self._refresh_tokens(the_pod)
        if now >= self._next_volume_sync:
            self._resync_volumes(the_pod)
            self._next_volume_sync = now + _VOLUME_SYNC_SECONDS
        the_phase = self._publish(the_pod)
        if the_phase in ("Succeeded", "Failed"):
            self._ctx.ledger.release_gpus(self._uid)
        return self._next_wake(now)

    def _next_wake(self, now: float) -> float:
        wake = now + _IDLE_SECONDS
        for container in self._containers:
            if container.handle is not None:
                wake = min(wake, now + _POLL_SECONDS)
            elif container.final is None:
                wake = min(wake, max(now + 0.05, container.next_start))
        for token in self._tokens:
            wake = min(wake, now + max(1.0, token.refresh_at - time.time()))
        if self._prepared:
            wake = min(wake, max(now + 1.0, self._next_volume_sync))
        if self._drift_since is not None:
            wake = min(wake, self._drift_since + _DRIFT_SECONDS)
        return max(0.05, wake - now)

    # -- preparing the sandbox -------------------------------------------------------

    def _set_waiting(self, reason: str, message: str) -> None:
        for container in self._containers:
            if container.handle is None and container.final is None:
                container.waiting = pod_status.Waiting(reason, message)

    def _prepare(self, the_pod: pod.Pod, now: float) -> float | None:
        """Check support, assign address and GPUs, materialise volumes, adopt processes."""
        if now < self._next_prepare:
            return self._next_prepare - now
        problems = compatibility.problems(the_pod)
        if problems:
            self._unsupported = tuple(problems)
            message = "; ".join(problems)
            self._set_waiting("CreateContainerConfigError", f"unsupported by simnode: {message}")
            self._ctx.events.emit(the_pod, self._ctx.node.name, "Warning", compatibility.EVENT_REASON, message)
            self._log.warning("pod uses unsupported features", extra={"problems": message})
            self._next_prepare = now + _IDLE_SECONDS
            return _IDLE_SECONDS
        try:
            claimed = (
                dra_prepare.container_gpus(self._ctx.api, the_pod, self._ctx.node) if not self._record.gpus else {}
            )
            ip, gpus = self._ctx.ledger.assign(
                the_pod,
                self._record.pod_ip or the_pod.status.pod_ip,
                foreign_ips=self._ctx.foreign_ips(self._uid),
                claimed=claimed,
            )
        except errors.PodConfigError as exc:
            self._set_waiting(exc.reason, exc.message)
            self._ctx.events.emit(the_pod, self._ctx.node.name, "Warning", exc.reason, exc.message)
            self._next_prepare = now + _RETRY_SECONDS
            return _RETRY_SECONDS
        self._record.pod_ip = ip
        self._record.gpus = gpus
        self._record.start_time = self._record.start_time or _now()
        self._save()
        try:
            self._tokens = self._materialize(the_pod)
        except errors.VolumeNotReady as exc:
            message = f"MountVolume.SetUp failed: {exc}"
            self._set_waiting("ContainerCreating", message)
            self._ctx.events.emit(the_pod, self._ctx.node.name, "Warning", "FailedMount", message)
            self._next_prepare = now + _RETRY_SECONDS
            return _RETRY_SECONDS
        except (errors.PodConfigError, kube.errors.KubeError) as exc:
            self._set_waiting("CreateContainerConfigError", str(exc))
            self._ctx.events.emit(the_pod, self._ctx.node.name, "Warning", "Failed", str(exc))
            self._next_prepare = now + _RETRY_SECONDS
            return _RETRY_SECONDS
        self._prepared = True
        self._next_volume_sync = now + _VOLUME_SYNC_SECONDS
        for container in self._containers:
            container.waiting = None
            process = container.entry.process
            if process is not None:
                container.handle = container_process.Handle.adopt(process.pid, process.start_time)
                container.arm_probes(now)
                self._log.info(
                    "adopted container process", extra={"container": container.spec.name, "pid": process.pid}
                )
        return None

    def _facts(self) -> environment.PodFacts:
        node = self._ctx.node
        return environment.PodFacts(
            pod_ip=self._record.pod_ip or "", host_ip=node.host_ip, node_allocatable=node.allocatable
        )

    def _volume_dir(self, name: str) -> pathlib.Path:
        return runtime_record.pod_dir(self._ctx.state_dir, self._uid) / "volumes" / name

    def _config_map(self, namespace: str) -> environment.DataLookup:
        def lookup(name: str) -> Mapping[str, str] | None:
            try:
                obj = self._ctx.api.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
            except kube.errors.NotFound:
                return None
            data = dict(obj.get("data") or {})
            for key, value in (obj.get("binaryData") or {}).items():
                data[key] = base64.b64decode(value).decode(errors="replace")
            return data

        return lookup

    def _secret(self, namespace: str) -> environment.DataLookup:
        def lookup(name: str) -> Mapping[str, str] | None:
            try:
                obj = self._ctx.api.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
            except kube.errors.NotFound:
                return None
            data = volume.decode_secret(obj.get("data") or {})
            data.update(obj.get("stringData") or {})
            return data

        return lookup

    def _token_requester(self, the_pod: pod.Pod) -> volume.TokenRequester:
        meta = the_pod.metadata

        def request(service_account: str, audience: str | None, expiration: int) -> tuple[str, float]:
            spec: dict[str, Any] = {
                "expirationSeconds": max(600, expiration),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta.name, "uid": meta.uid},
            }
            if audience:
                spec["audiences"] = [audience]
            body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
            path = f"/api/v1/namespaces/{meta.namespace}/serviceaccounts/{service_account}/token"
            try:
                result = self._ctx.api.request("POST", path, body=body)
            except kube.errors.NotFound as exc:
                raise errors.VolumeNotReady(f"serviceaccount {service_account!r} not found") from exc
            status = result.get("status") or {}
            expires = _parse_time(str(status["expirationTimestamp"]))
            valid = (expires - datetime.datetime.now(datetime.UTC)).total_seconds()
            return str(status["token"]), valid

        return request

    def _sources(self, the_pod: pod.Pod) -> volume.Sources:
        namespace = the_pod.metadata.namespace
        return volume.Sources(
            config_maps=self._config_map(namespace),
            secrets=self._secret(namespace),
            request_token=self._token_requester(the_pod),
            facts=self._facts(),
        )

    def _materialize(self, the_pod: pod.Pod) -> list[volume.TokenFile]:
        sources = self._sources(the_pod)
        tokens: list[volume.TokenFile] = []
        for vol in the_pod.spec.volumes:
            tokens.extend(volume.materialize(the_pod, vol, self._volume_dir(vol.name), sources, time.time()))
        return tokens

    def _resync_volumes(self, the_pod: pod.Pod) -> None:
        """Propagate ConfigMap/Secret/downward-API changes into mounted volumes (kept as is on errors)."""
        sources = self._sources(the_pod)
        scratch = runtime_record.pod_dir(self._ctx.state_dir, self._uid) / "volume-sync"
        for vol in the_pod.spec.volumes:
            try:
                if volume.resync(the_pod, vol, self._volume_dir(vol.name), sources, scratch):
                    self._log.info("volume updated", extra={"volume": vol.name})
            except (errors.VolumeNotReady, errors.PodConfigError, kube.errors.KubeError) as exc:
                self._log.warning("volume not updated", extra={"volume": vol.name, "error": str(exc)})

    def _refresh_tokens(self, the_pod: pod.Pod) -> None:
        now = time.time()
        for token in self._tokens:
            if now < token.refresh_at:
                continue
            try:
                volume.refresh_token(token, self._sources(the_pod), now)
            except (kube.errors.KubeError, errors.VolumeNotReady) as exc:
                self._log.warning("token refresh failed", extra={"error": str(exc)})
                token.refresh_at = now + 30.0

    # -- containers -----------------------------------------------------------------

    def _start(self, the_pod: pod.Pod, container: _Container, now: float) -> None:
        spec = container.spec
        try:
            env = environment.resolve(
                the_pod,
                spec,
                self._facts(),
                service_env=self._ctx.service_env,
                config_maps=self._config_map(the_pod.metadata.namespace),
                secrets=self._secret(the_pod.metadata.namespace),
            )
        except errors.PodConfigError as exc:
            container.waiting = pod_status.Waiting(exc.reason, exc.message)
            self._ctx.events.emit(the_pod, self._ctx.node.name, "Warning", "Failed", f"Error: {exc.message}")
            container.next_start = now + _RETRY_SECONDS
            return
        devices = gpu_allocation.visible_devices(self._record.gpus, spec.name)
        if devices is not None:
            env["NVIDIA_VISIBLE_DEVICES"] = devices
        argv = environment.expand_command(spec, env)
        full_env = {**self._ctx.base_env, "HOSTNAME": the_pod.metadata.name, **env}
        mounts = [
            container_process.Mount(str(self._volume_dir(m.name)), m.mount_path, m.read_only)
            for m in spec.volume_mounts
        ]
        hosts = self._ctx.hosts_file
        if hosts is not None and not any(m.target == "/etc/hosts" for m in mounts):
            mounts.append(container_process.Mount(str(hosts), "/etc/hosts", read_only=True, is_file=True))
        root: image_rootfs.Root | None = None
        if self._ctx.images is not None:
            try:
                image_mode = self._image_mode(the_pod, container, env)
            except (image_rootfs.UnpackError, errors.PodConfigError) as exc:
                reason = exc.reason if isinstance(exc, errors.PodConfigError) else "ErrImagePull"
                container.waiting = pod_status.Waiting(reason, str(exc))
                self._ctx.events.emit(the_pod, self._ctx.node.name, "Warning", "Failed", f"Error: {exc}")
                container.next_start = now + _RETRY_SECONDS
                return
            if image_mode is not None:
                root, argv, image_env = image_mode
                full_env = {"HOSTNAME": the_pod.metadata.name, **image_env}
        entry = container.entry
        if entry.last_terminated is not None:
            entry.restart_count += 1
        stamp = _now()
        log_path = runtime_record.log_path(self._ctx.state_dir, self._uid, spec.name)
        try:
            handle = container_process.start(
                argv, mounts=mounts, env=full_env, cwd=spec.working_dir or "/", log_path=log_path, root=root
            )
        except OSError as exc:
            entry.last_terminated = runtime_record.TerminationEntry(
                exit_code=128, reason="StartError", started_at=stamp, finished_at=stamp
            )
            message = f"failed to start container {spec.name!r}: {exc}"
            self._ctx.events.emit(the_pod, self._ctx.node.name, "Warning", "Failed", message)
            self._after_exit(the_pod, container, 128, now)
            return
        container.handle = handle
        container.waiting = None
        container.final = None
        entry.process = runtime_record.ProcessEntry(pid=handle.pid, start_time=handle.start_time, started_at=stamp)
        container.arm_probes(now)
        self._save()
        self._ctx.events.emit(
            the_pod,
            self._ctx.node.name,
            "Normal",
            "Started",
            f"Started container {spec.name} (run {entry.restart_count})",
        )
        where = "image" if root is not None else "host"
        self._log.info("container started", extra={"container": spec.name, "pid": handle.pid, "runs_in": where})

    def _image_mode(
        self, the_pod: pod.Pod, container: _Container, env: Mapping[str, str]
    ) -> tuple[image_rootfs.Root, list[str], dict[str, str]] | None:
        """(root, argv, env) to run ``container`` from its image, or None (host process, reported once)."""
        assert self._ctx.images is not None
        spec = container.spec
        if self._ctx.images.lookup(spec.image) is None:
            if not container.host_fallback_reported:
                container.host_fallback_reported = True
                message = (
                    f"image {spec.image!r} is not among simnode's image archives; running {spec.name!r} on the host"
                )
                self._ctx.events.emit(the_pod, self._ctx.node.name, "Normal", "HostProcess", message)
            return None
        rootfs, config = self._ctx.images.prepare(spec.image)
        scratch = runtime_record.pod_dir(self._ctx.state_dir, self._uid) / "rootfs" / spec.name
        root = image_rootfs.container_root(the_pod, spec, rootfs, config, scratch)
        image_env = image_rootfs.merged_env(config, env, rootfs / "etc" / "passwd", root.uid)
        return root, image_rootfs.container_argv(spec, config, env), image_env

    def _record_exit(self, container: _Container, result: container_process.Exit) -> int:
        entry = container.entry
        process = entry.process
        code = result.exit_code if result.exit_code is not None else 137
        if result.exit_code is None:
            reason = "ContainerStatusUnknown"
        else:
            reason = "Completed" if code == 0 else "Error"
            if container.handle is not None:
                # Leftovers of the container go with it, as when a container's PID 1 exits.
                container.handle.signal_group(signal.SIGKILL)
        entry.last_terminated = runtime_record.TerminationEntry(
            exit_code=code,
            reason=reason,
            started_at=process.started_at if process else _now(),
            finished_at=_now(),
            signal=result.signal,
        )
        entry.process = None
        container.handle = None
        container.readiness = container.liveness = container.startup = None
        return code

    def _after_exit(self, the_pod: pod.Pod, container: _Container, code: int, now: float) -> None:
        entry = container.entry
        assert entry.last_terminated is not None
        policy = the_pod.spec.restart_policy
        if container.init and code == 0:
            entry.succeeded = True
            container.final = _terminated(entry.last_terminated)
        elif restart_rule.should_restart(policy, code, init=container.init):
            last = entry.last_terminated
            ran = (_parse_time(last.finished_at) - _parse_time(last.started_at)).total_seconds()
            delay = restart_rule.backoff_seconds(entry.restart_count, ran)
            container.next_start = now + delay
            container.final = None
            if delay > 0:
                name = container.spec.name
                message = f"back-off {int(delay)}s restarting failed container={name} pod={the_pod.metadata.name}"
                container.waiting = pod_status.Waiting("CrashLoopBackOff", message)
                self._ctx.events.emit(the_pod, self._ctx.node.name, "Warning", "BackOff", message)
        else:
            container.final = _terminated(entry.last_terminated)
        self._save()

    def _reap(self, the_pod: pod.Pod, container: _Container, now: float) -> bool:
        """Whether the container's process has exited (and was handled)."""
        assert container.handle is not None
        result = container.handle.poll()
        if result is None:
            return False
        code = self._record_exit(container, result)
        self._log.info("container exited", extra={"container": container.spec.name, "exit_code": code})
        self._after_exit(the_pod, container, code, now)
        return True

    def _run_inits(self, the_pod: pod.Pod, now: float) -> bool:
        """Advance the init containers; True once all have succeeded."""
        for container in self._containers:
            if not container.init or container.entry.succeeded:
                continue
            if container.handle is not None and not self._reap(the_pod, container, now):
                return False
            if container.entry.succeeded:
                continue
            if container.final is None and container.handle is None and now >= container.next_start:
                self._start(the_pod, container, now)
            return False
        return True

    def _run_apps(self, the_pod: pod.Pod, now: float) -> None:
        for container in self._containers:
            if container.init:
                continue
            if container.handle is not None and not self._reap(the_pod, container, now):
                self._probe(the_pod, container, now)
            if container.handle is None and container.final is None and now >= container.next_start:
                self._start(the_pod, container, now)

    def _probe(self, the_pod: pod.Pod, container: _Container, now: float) -> None:
        ip = self._record.pod_ip or ""
        ports = {p.name: p.container_port for p in container.spec.ports if p.name}
        startup = container.startup
        if startup is not None and not startup.result:
            if startup.due(now):
                startup.record(probe.run(startup.spec, ip, ports), now)
                if startup.failures >= max(1, startup.spec.failure_threshold):
                    self._kill_unhealthy(the_pod, container, "Startup", startup.spec, now)
            return
        liveness = container.liveness
        if liveness is not None and liveness.due(now):
            liveness.record(probe.run(liveness.spec, ip, ports), now)
            if not liveness.result:
                self._kill_unhealthy(the_pod, container, "Liveness", liveness.spec, now)
                return
        readiness = container.readiness
        if readiness is not None and readiness.due(now):
            before = readiness.result
            readiness.record(probe.run(readiness.spec, ip, ports), now)
            if before and not readiness.result:
                self._ctx.events.emit(
                    the_pod,
                    self._ctx.node.name,
                    "Warning",
                    "Unhealthy",
                    f"Readiness probe of {container.spec.name} failed",
                )

    def _kill_unhealthy(self, the_pod: pod.Pod, container: _Container, kind: str, spec: pod.Probe, now: float) -> None:
        name = container.spec.name
        node = self._ctx.node.name
        run = container.entry.restart_count
        self._ctx.events.emit(the_pod, node, "Warning", "Unhealthy", f"{kind} probe of {name} failed (run {run})")
        self._ctx.events.emit(
            the_pod,
            node,
            "Normal",
            "Killing",
            f"Container {name} failed {kind.lower()} probe, will be restarted (run {run})",
        )
        assert container.handle is not None
        grace = spec.termination_grace_period_seconds
        result = container.handle.stop(
            float(grace if grace is not None else the_pod.spec.termination_grace_period_seconds)
        )
        code = self._record_exit(container, result)
        self._after_exit(the_pod, container, code, now)

    def _stop_all(self, grace: float) -> None:
        """SIGTERM every running container's group, wait up to ``grace``, SIGKILL what is left."""
        running = [c for c in self._containers if c.handle is not None]
        for container in running:
            assert container.handle is not None
            container.handle.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        results: dict[int, container_process.Exit] = {}
        while time.monotonic() < deadline and len(results) < len(running):
            for index, container in enumerate(running):
                if index not in results and container.handle is not None:
                    result = container.handle.poll()
                    if result is not None:
                        results[index] = result
            if len(results) < len(running):
                time.sleep(0.05)
        for index, container in enumerate(running):
            if index not in results and container.handle is not None:
                results[index] = container.handle.stop(0.0)
        for index, container in enumerate(running):
            self._record_exit(container, results[index])
            assert container.entry.last_terminated is not None
            container.final = _terminated(container.entry.last_terminated)
        if running:
            self._save()

    def _step_deleting(self, the_pod: pod.Pod) -> float:
        if not self._stopped_for_deletion:
            meta = the_pod.metadata
            grace = meta.deletion_grace_period_seconds
            if grace is None:
                grace = the_pod.spec.termination_grace_period_seconds
            for container in self._containers:
                if container.handle is not None:
                    self._ctx.events.emit(
                        the_pod, self._ctx.node.name, "Normal", "Killing", f"Stopping container {container.spec.name}"
                    )
            self._stop_all(float(grace))
            for container in self._containers:
                if container.final is None and container.entry.last_terminated is not None:
                    container.final = _terminated(container.entry.last_terminated)
                container.waiting = None if container.final else container.waiting
            self._stopped_for_deletion = True
            self._ctx.ledger.release_gpus(self._uid)
            self._publish(the_pod, terminating=True)
        if not self._delete_sent:
            meta = the_pod.metadata
            body = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta.uid},
            }
            with contextlib.suppress(kube.errors.NotFound, kube.errors.Conflict):
                self._ctx.api.request("DELETE", f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}", body=body)
            self._delete_sent = True
            self._log.info("pod stopped and deleted")
        return _IDLE_SECONDS

    # -- status ---------------------------------------------------------------------

    def _view(self, container: _Container) -> pod_status.ContainerView:
        entry = container.entry
        state: pod_status.State
        if container.handle is not None and entry.process is not None:
            state = pod_status.Running(entry.process.started_at)
        elif container.final is not None:
            state = container.final
        elif container.waiting is not None:
            state = container.waiting
        elif self._prepared and not container.init:
            state = pod_status.Waiting("PodInitializing")
        else:
            state = pod_status.Waiting("ContainerCreating" if not self._prepared else "PodInitializing")
        last = None
        if not isinstance(state, pod_status.Terminated) and entry.last_terminated is not None:
            last = _terminated(entry.last_terminated)
        return pod_status.ContainerView(
            name=container.spec.name,
            image=container.spec.image or "simnode",
            state=state,
            ready=container.ready,
            started=container.started,
            restart_count=entry.restart_count,
            last_terminated=last,
            container_id=f"simnode://{self._uid[:8]}-{container.spec.name}-{entry.restart_count}",
        )

    def _publish(self, the_pod: pod.Pod, *, terminating: bool = False) -> str:
        """Patch the Pod's status when it changed; returns the phase."""
        view = pod_status.PodView(
            init_containers=tuple(self._view(c) for c in self._containers if c.init),
            containers=tuple(self._view(c) for c in self._containers if not c.init),
            restart_policy=the_pod.spec.restart_policy,
            host_ip=self._ctx.node.host_ip,
            pod_ip=self._record.pod_ip,
            start_time=self._record.start_time,
            unsupported=self._unsupported,
            terminating=terminating,
        )
        gates = [g.condition_type for g in the_pod.spec.readiness_gates]
        status = pod_status.compute(view, the_pod.status.conditions, gates, _now())
        comparable = _without_times(status)
        if comparable == self._last_sent and self._drifted(the_pod, status):
            self._last_sent = None  # someone else rewrote it (e.g. NodeNotReady): send ours again
        if comparable != self._last_sent:
            meta = the_pod.metadata
            try:
                self._ctx.api.request(
                    "PATCH",
                    f"/api/v1/namespaces/{meta.namespace}/pods/{meta.name}/status",
                    body={"status": status},
                    content_type=kube.client.PATCH_CONTENT_TYPES["strategic"],
                )
                self._last_sent = comparable
            except kube.errors.NotFound:
                pass
        return str(status["phase"])

    def _drifted(self, the_pod: pod.Pod, status: Mapping[str, Any]) -> bool:
        """Whether the apiserver's copy has disagreed with what we sent for ``_DRIFT_SECONDS``.

        As the kubelet's status manager does, the node reconciles the Pod's
        status with the apiserver's: the node lifecycle controller marks every
        Pod of a NotReady node not Ready, and only the node puts it back once
        the node is Ready again.  The disagreement must last a moment so that
        a watch that has not yet delivered our own write causes no extra write.
        """
        silenced = heartbeat.silence_file(self._ctx.state_dir, self._ctx.node.name).exists()
        if silenced or not pod_status.disagrees(status, the_pod.status):
            self._drift_since = None  # (a silenced node has "lost the control plane": it reconciles nothing)
            return False
        now = time.monotonic()
        if self._drift_since is None:
            self._drift_since = now
            return False
        if now - self._drift_since < _DRIFT_SECONDS:
            return False
        self._drift_since = None
        return True

    def _save(self) -> None:
        runtime_record.save(self._ctx.state_dir, self._record)


def _without_times(status: dict[str, Any]) -> Any:
    conditions = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status["conditions"]]
    return {**status, "conditions": conditions}
