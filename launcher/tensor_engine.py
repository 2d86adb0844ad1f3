"""The torch-backed engine: the simulator's HTTP API over weights that really occupy a device.

``fma-engine-sim serve --device cuda`` (or ``--device cpu``) serves exactly
the simulator's API (``engine_sim``: health, models, completions, metrics,
``/sleep``, ``/wake_up``, ``/is_sleeping``), but what sleeps and wakes is a
``tensor_weights.TensorWeights`` of ``--sim-model-gib`` bytes shaped like a
Llama model, on the GPUs of ``CUDA_VISIBLE_DEVICES`` (cuda) or in host memory
(cpu, for tests without a GPU).  Completions decode greedily through those
weights, so an awake engine demonstrably computes on its device and a woken
one answers exactly what it answered before it slept.

Memory.  On CUDA, free memory is what the driver reports, optionally capped
by ``--sim-device-memory-mib`` (a smaller GPU).  On CPU there is no device to
ask, so the cap is the simulated GPU's size and what other engines on the
same GPU UUIDs publish (``sim_usage``) counts as used: two CPU engines on one
UUID compete for memory as two GPU engines do.  A wake that does not fit is
answered 507 and leaves the engine asleep with its host copy intact.

torch is imported only when such an engine starts (or when the launcher was
told to preload it), never by importing this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import signal
from typing import Any

from launcher import engine_sim, errors, sim_model, sim_usage, tensor_weights
from launcher import settings as settings_mod

__all__ = ["TensorEngine", "serve"]

logger = logging.getLogger(__name__)

_GIB = 1 << 30
_MIB = 1 << 20


class _LedgerMemory:
    """CPU mode: a simulated GPU of ``device_memory_mib``, shared with the engines on the same UUIDs."""

    def __init__(self, sim: settings_mod.EngineSimSettings, engine: TensorEngine) -> None:
        self._sim = sim
        self._engine = engine

    def available_bytes(self, device: str) -> int | None:
        if self._sim.device_memory_mib is None:
            return None
        cap = self._sim.device_memory_mib * _MIB
        uuids = self._sim.gpu_uuids
        if uuids:
            used = max(sim_usage.read_total(self._sim.usage_dir, uuids).values()) * _MIB
            return max(0, cap - used) * len(uuids)
        weights = self._engine.weights
        return max(0, cap - (weights.device_bytes() if weights is not None else 0))


class TensorEngine(engine_sim.SimEngine):
    """``engine_sim.SimEngine`` whose start, sleep, wake and text move and use real tensors."""

    def __init__(self, sim: settings_mod.EngineSimSettings) -> None:
        super().__init__(sim)
        self.weights: tensor_weights.TensorWeights | None = None
        self.failed = False
        self._background: set[asyncio.Task[None]] = set()

    def _build(self) -> tensor_weights.TensorWeights:
        torch: Any = importlib.import_module("torch")
        memory: tensor_weights.DeviceMemory
        cap = self.sim.device_memory_mib * _MIB if self.sim.device_memory_mib is not None else None
        if self.sim.device == "cuda":
            if not torch.cuda.is_available():
                raise errors.InsufficientDeviceMemory("--device cuda, but torch sees no CUDA device here")
            devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
            memory = tensor_weights.CudaMemory(torch, cap)
            logger.info(
                "tensor engine devices",
                extra={
                    "devices": devices,
                    "device_uuids": [f"GPU-{torch.cuda.get_device_properties(d).uuid}" for d in devices],
                    "names": [torch.cuda.get_device_name(d) for d in devices],
                },
            )
        else:
            devices = ["cpu"]
            memory = _LedgerMemory(self.sim, self)
        layout = tensor_weights.llama_layout(int(self.sim.model_gib * _GIB))
        return tensor_weights.TensorWeights(torch, layout, devices, memory, keep_pinned=self.sim.keep_pinned)

    def usage(self) -> dict[str, int]:
        """MiB of weights on each of this engine's GPUs now (rounded up)."""
        held = self.weights.device_bytes() if self.weights is not None else 0
        per_gpu = -(-held // _MIB) // max(1, len(self.sim.gpu_uuids))
        return dict.fromkeys(self.sim.gpu_uuids, per_gpu)

    async def start(self) -> None:
        """Allocate and fill the weights, then serve; a failure ends the process (exit status 1)."""
        self.publish_usage()
        try:
            self.weights = await asyncio.to_thread(self._build)
            seconds = await asyncio.to_thread(self.weights.load)
        except Exception:  # the supervisor of the engine's start: report, then stop the server
            logger.exception("the tensor engine could not load its weights")
            self.failed = True
            signal.raise_signal(signal.SIGINT)
            return
        self.phase = sim_model.Phase.SERVING
        self.publish_usage()
        w = self.weights
        logger.info(
            "tensor engine ready",
            extra={
                "device": self.sim.device,
                "bytes": w.total_bytes,
                "tensors": len(w.layout),
                "checksum": w.digest,
                "load_seconds": round(seconds, 4),
                "keep_pinned": w.keep_pinned,
            },
        )

    async def sleep(self, level: int) -> None:
        """Level 1 offloads the weights to host memory, level 2 discards them; asleep already: no-op."""
        async with self._lock:
            if self.asleep or self.weights is None:
                return
            phases: dict[str, float] = {}
            if level == 1:
                phases = await asyncio.to_thread(self.weights.offload)
            else:
                await asyncio.to_thread(self.weights.discard)
            self.asleep = sim_model.ALL_TAGS
            self.level = level
            self.publish_usage()
            logger.info(
                "tensor engine asleep",
                extra={
                    "level": level,
                    **{k: round(v, 4) for k, v in phases.items()},
                    "host_bytes": self.weights.host_bytes(),
                    "host_allocations": self.weights.host_allocations,
                },
            )

    async def wake(self, tags: frozenset[str]) -> None:
        """Restore ``tags`` (all when empty); raises ``InsufficientDeviceMemory`` and stays asleep when short."""
        async with self._lock:
            waking = (tags or sim_model.ALL_TAGS) & self.asleep
            if not waking:
                return
            phases: dict[str, float] = {}
            if "weights" in waking and self.weights is not None:
                phases = await asyncio.to_thread(self.weights.restore, release_host=False)
                self._release_soon()
            self.asleep = self.asleep - waking
            if not self.asleep:
                self.level = 0
            self.publish_usage()
            copy = phases.get("copy_seconds")
            logger.info(
                "tensor engine woke",
                extra={
                    "tags": sorted(waking),
                    **{k: round(v, 4) for k, v in phases.items()},
                    "copy_gib_per_s": round(self.weights.total_bytes / _GIB / copy, 2)
                    if copy and self.weights is not None
                    else None,
                    "checksum_verified": "weights" in waking,
                },
            )

    def _release_soon(self) -> None:
        """Release the host copy after the wake has been answered; a sleep waits for it (the lock)."""
        task = asyncio.get_running_loop().create_task(self._release_host_copy())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _release_host_copy(self) -> None:
        async with self._lock:
            if self.weights is None:
                return
            seconds = await asyncio.to_thread(self.weights.drop_host_copy)
            if seconds is not None:
                logger.info(
                    "tensor engine released its host copy",
                    extra={"seconds": round(seconds, 4), "host_bytes": self.weights.host_bytes()},
                )

    def text(self, seed: str, n: int) -> str:
        """``n`` tokens decoded on the device from the prompt's hash, rendered as ``tok<id>`` words."""
        if self.weights is None:
            return super().text(seed, n)
        first = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
        return " ".join(f"tok{i}" for i in self.weights.generate(first, n))


def serve(sim: settings_mod.EngineSimSettings) -> int:
    """Run the torch-backed engine until SIGTERM/SIGINT; exit status 1 when its weights could not load."""
    engine = TensorEngine(sim)
    code = engine_sim.serve(sim, engine)
    if engine.weights is not None:
        engine.weights.release()
    return 1 if engine.failed else code
