"""The launcher's instances: create, stop, delete, and what happens when one dies on its own.

This is the one owner of the instance processes.  It keeps the instances in
creation order, assigns revisions through the ``EventLog`` for every
CREATED, STOPPED and DELETED event, and tells the ``InventoryObserver``.
All state changes happen on the event loop; the only waits are on process
exits (from the zygote's SIGCHLD-driven reports) and on a short back-off
while a killed process group drains, so stopping never blocks the loop.

Create (docs/launcher.md, "How an instance is started"): check the ID, translate the GPUs, start the
process, then register and record CREATED; a failure leaves nothing behind.
Delete: SIGTERM, a grace period, SIGKILL
of the group, and the answer only once every process of the group is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import signal
import time

from launcher import engine as engine_mod
from launcher import (
    engine_readiness,
    env_policy,
    errors,
    event_log,
    gpu_table,
    instance_argv,
    inventory,
    launcher_metrics,
    schemas,
    spawner,
)

__all__ = ["ProcessTable"]

logger = logging.getLogger(__name__)

_GROUP_DRAIN_SECONDS = 10.0
_EXIT_AFTER_KILL_SECONDS = 30.0


@dataclasses.dataclass
class _Instance:
    instance_id: str
    config: schemas.VllmConfig
    pid: int
    log_path: pathlib.Path
    revision: int = 0
    status: schemas.Status = "running"
    exit_code: int | None = None
    stopping: bool = False
    exited: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    deletion: asyncio.Future[schemas.InstanceState] | None = None
    ready: bool = False
    """The engine answered its health check (``engine_readiness``)."""
    readiness: asyncio.Task[None] | None = None

    def state(self) -> schemas.InstanceState:
        return schemas.InstanceState(
            status=self.status,
            instance_id=self.instance_id,
            revision=self.revision,
            options=self.config.options,
            gpu_uuids=self.config.gpu_uuids,
            env_vars=self.config.env_vars,
            annotations=self.config.annotations,
            exit_code=self.exit_code,
            ready=True if self.ready and self.status == "running" else None,
        )


class ProcessTable:
    """Every instance of this launcher, keyed by ID, in creation order."""

    def __init__(
        self,
        *,
        spawn: spawner.Spawner,
        engine: engine_mod.Engine,
        gpus: gpu_table.GpuTable,
        events: event_log.EventLog,
        observer: inventory.InventoryObserver,
        metrics: launcher_metrics.LauncherMetrics,
        log_dir: pathlib.Path,
        stop_grace_seconds: float,
        base_env: dict[str, str],
        launcher_host: str = "0.0.0.0",  # noqa: S104 - every interface: instances keep their own default
        max_instances: int | None = None,
        allowed_env: frozenset[str] = frozenset(),
        health: engine_readiness.HealthCheck | None = None,
    ) -> None:
        """``launcher_host``: the launcher's listen address; a specific one is passed on (``instance_argv``).

        ``max_instances`` caps the instances held at once (running or stopped,
        None for no cap); ``allowed_env`` names the code-loading environment
        variables (``env_policy``) callers may set anyway.  With ``health``,
        each instance's engine is checked until it answers, and its state
        then says ``ready`` (published like any other change).
        """
        self._spawn = spawn
        self._engine = engine
        self._gpus = gpus
        self.events = events
        self._observer = observer
        self._metrics = metrics
        self._log_dir = log_dir
        self._grace = stop_grace_seconds
        self._base_env = dict(base_env)
        self._launcher_host = launcher_host
        self._max_instances = max_instances
        self._allowed_env = allowed_env
        self._health = health
        self._instances: dict[str, _Instance] = {}
        self._by_pid: dict[int, _Instance] = {}
        self._reserved: set[str] = set()
        self._early_exits: dict[int, int] = {}

    # ----- reading

    def get(self, instance_id: str) -> schemas.InstanceState:
        """The state of one instance; raises ``InstanceNotFound``."""
        return self._find(instance_id).state()

    def _find(self, instance_id: str) -> _Instance:
        instance = self._instances.get(instance_id)
        if instance is None:
            raise errors.InstanceNotFound(f"Instance {instance_id} not found")
        return instance

    def states(self) -> list[schemas.InstanceState]:
        """Every instance's state in creation order."""
        return [i.state() for i in self._instances.values()]

    def snapshot(self) -> inventory.Snapshot:
        """The revision and every instance's state: what the inventory observer is told."""
        return inventory.Snapshot(revision=self.events.revision, instances=self.states())

    def list_view(self) -> schemas.ListView:
        """The detailed list (also the launcher's readiness probe)."""
        states = self.states()
        running = sum(1 for s in states if s.status == "running")
        return schemas.ListView(
            revision=self.events.revision, total_instances=len(states), running_instances=running, instances=states
        )

    def ids_view(self) -> schemas.IdsView:
        """Just the IDs."""
        ids = list(self._instances)
        return schemas.IdsView(revision=self.events.revision, instance_ids=ids, count=len(ids))

    def log_path(self, instance_id: str) -> pathlib.Path:
        """Where the instance's stdout and stderr go; raises ``InstanceNotFound``."""
        return self._find(instance_id).log_path

    # ----- events

    def _record(self, instance: _Instance, kind: schemas.WatchEventType) -> schemas.InstanceState:
        instance.revision = self.events.next_revision()
        state = instance.state()
        self.events.append(schemas.WatchEvent(type=kind, object=state))
        running = sum(1 for i in self._instances.values() if i.status == "running")
        self._metrics.set_counts(running, len(self._instances) - running)
        self._tell_observer(instance)
        return state

    def _tell_observer(self, instance: _Instance) -> None:
        try:
            self._observer.inventory_changed(self.snapshot())
        except Exception:  # supervising code: an observer bug must not break the instance's life
            logger.exception("inventory observer failed", extra={"instance_id": instance.instance_id})

    async def _await_ready(self, instance: _Instance, argv: list[str]) -> None:
        """Check the engine until it answers, then publish ``ready`` (no revision: not a watch event)."""
        assert self._health is not None
        where = engine_readiness.target(argv)
        if where is None:
            return
        if await self._health.wait(where[0], where[1], instance.exited) and instance.status == "running":
            instance.ready = True
            logger.info("instance engine ready", extra={"instance_id": instance.instance_id})
            if self._instances.get(instance.instance_id) is instance:
                self._tell_observer(instance)

    def on_exit(self, pid: int, code: int) -> None:
        """An instance's main process exited (called by the spawner on the event loop)."""
        instance = self._by_pid.get(pid)
        if instance is None:
            self._early_exits[pid] = code  # reported before create() registered it
            return
        instance.exit_code = code
        instance.exited.set()
        if instance.stopping:
            return
        instance.status = "stopped"
        logger.warning("instance exited on its own", extra={"instance_id": instance.instance_id, "exit_code": code})
        self._metrics.unsolicited_exits.inc()
        self._record(instance, "STOPPED")
        _kill_group(pid)

    # ----- create

    async def create(self, instance_id: str, config: schemas.VllmConfig) -> schemas.InstanceState:
        """Start an instance; nothing is left behind when it raises.

        Raises ``InstanceExists``, ``InstanceLimit``, ``EnvNotAllowed``,
        ``UnknownGpu``, ``SpawnFailed`` or ``EngineUnavailable``.
        """
        if instance_id in self._instances or instance_id in self._reserved:
            raise errors.InstanceExists(f"Instance with ID {instance_id} already exists")
        held = len(self._instances) + len(self._reserved)
        if self._max_instances is not None and held >= self._max_instances:
            raise errors.InstanceLimit(
                f"the launcher already holds {held} instances, its maximum is {self._max_instances}; delete one first"
            )
        refused = env_policy.first_refused(config.env_vars or {}, self._allowed_env)
        if refused is not None:
            raise errors.EnvNotAllowed(
                f"env_vars: {refused!r} changes how the instance loads code and is not allowed by this launcher "
                "(its --allow-env setting)"
            )
        uuids = list(config.gpu_uuids or [])
        indices = self._gpus.indices(uuids)
        env_vars = dict(config.env_vars or {})
        if uuids:
            env_vars["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in indices)
            env_vars.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        config = config.model_copy(update={"env_vars": env_vars or config.env_vars})
        child_env = {**self._base_env, **self._engine.child_env(uuids), **env_vars}
        log_path = self._log_dir / f"launcher-{os.getpid()}-vllm-{instance_id}.log"
        started = time.monotonic()
        self._reserved.add(instance_id)
        try:
            argv = instance_argv.build(config.options, self._launcher_host)
            pid = await self._spawn.spawn(argv, child_env, str(log_path))
        finally:
            self._reserved.discard(instance_id)
        self._metrics.start_seconds.observe(time.monotonic() - started)
        instance = _Instance(instance_id=instance_id, config=config, pid=pid, log_path=log_path)
        self._instances[instance_id] = instance
        self._by_pid[pid] = instance
        logger.info("instance started", extra={"instance_id": instance_id, "pid": pid, "gpus": uuids})
        state = self._record(instance, "CREATED")
        early = self._early_exits.pop(pid, None)
        if early is not None:
            self.on_exit(pid, early)
        elif self._health is not None:
            instance.readiness = asyncio.create_task(self._await_ready(instance, argv), name=f"ready-{instance_id}")
        return state

    # ----- delete

    async def delete(self, instance_id: str) -> schemas.InstanceState:
        """Stop and remove one instance; concurrent calls share one deletion."""
        instance = self._find(instance_id)
        if instance.deletion is None:
            instance.deletion = asyncio.ensure_future(self._delete(instance))
        return await asyncio.shield(instance.deletion)

    async def _delete(self, instance: _Instance) -> schemas.InstanceState:
        started = time.monotonic()
        instance.stopping = True
        if instance.readiness is not None:
            instance.readiness.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await instance.readiness
        if not instance.exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(instance.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(instance.exited.wait(), self._grace)
            except TimeoutError:
                logger.info("instance ignored SIGTERM; killing its group", extra={"instance_id": instance.instance_id})
                _kill_group(instance.pid)
                try:
                    await asyncio.wait_for(instance.exited.wait(), _EXIT_AFTER_KILL_SECONDS)
                except TimeoutError:
                    logger.error(
                        "instance exit not reported after SIGKILL", extra={"instance_id": instance.instance_id}
                    )
        await _drain_group(instance.pid)
        instance.status = "stopped"
        with contextlib.suppress(FileNotFoundError):
            instance.log_path.unlink()
        del self._instances[instance.instance_id]
        self._by_pid.pop(instance.pid, None)
        state = self._record(instance, "DELETED")
        self._metrics.stop_seconds.observe(time.monotonic() - started)
        logger.info("instance deleted", extra={"instance_id": instance.instance_id, "exit_code": instance.exit_code})
        return state

    async def delete_all(self) -> schemas.DeleteAllResult:
        """Stop and remove every instance, concurrently."""
        ids = list(self._instances)
        results = await asyncio.gather(*(self.delete(i) for i in ids), return_exceptions=True)
        stopped = [r for r in results if isinstance(r, schemas.InstanceState)]
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, errors.InstanceNotFound):
                raise r
        return schemas.DeleteAllResult(stopped_instances=stopped, total_stopped=len(stopped))

    async def close(self) -> None:
        """At launcher shutdown: end the watch streams and stop every instance."""
        self.events.close()
        await self.delete_all()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _drain_group(pgid: int) -> None:
    """SIGKILL whatever is left of the group and wait, with back-off, until it is empty.

    The main process is already gone here; what remains are workers it left
    behind, which die at once on SIGKILL and are reaped by the zygote (a
    subreaper), so this wait is short.
    """
    _kill_group(pgid)
    delay = 0.002
    deadline = time.monotonic() + _GROUP_DRAIN_SECONDS
    while _group_exists(pgid):
        if time.monotonic() > deadline:
            logger.error("process group still has members after SIGKILL", extra={"pgid": pgid})
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
