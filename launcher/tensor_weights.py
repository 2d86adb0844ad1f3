"""A model's weights as real tensors on real devices: load, offload to host, restore, discard.

This is what the torch-backed engine (``tensor_engine``) moves when it sleeps
and wakes, so that the numbers FMA cares about (wake bandwidth, the cost of
pinning host memory, GPU memory really freed) are measured, not modelled.

- ``llama_layout`` (pure, no torch) sizes a tensor list shaped like a Llama
  model (Llama-3.1-8B's proportions: embedding, 32 decoder layers of nine
  tensors, final norm, LM head) to a requested number of bytes; 16 GiB gives
  291 tensors, as many as the real 8B model has.
- ``TensorWeights`` holds them.  ``load`` allocates and fills them
  deterministically from a seed (so a level-2 wake can "reload the
  checkpoint" bit for bit), ``offload`` (level-1 sleep) copies them into one
  host buffer, pinned on CUDA, and frees the device memory; ``restore``
  copies them back; ``discard`` (level-2 sleep) drops them.  Every load and
  restore ends with a checksum over the raw bits, compared with the one
  taken at the first load: a restore that does not reproduce the weights
  exactly fails instead of serving garbage.
- The host buffer is allocated at sleep time and released after the wake
  (torch's cache of pinned blocks included), unless ``keep_pinned``: then it is allocated
  at the first sleep and kept, so later sleeps cost a copy, not a pinning
  (pinning host memory costs far more per byte than copying into it).
- A restore first asks ``DeviceMemory`` how much each device can take; when
  it is short, nothing is touched and ``InsufficientDeviceMemory`` says how
  much was needed and how much was free.  The engine stays asleep with its
  host copy intact and can be woken later.

torch is never imported here: the caller passes the module in, so importing
this module costs nothing where torch is absent (CI's project environment,
the launcher process itself).  Not thread-safe: the engine serialises calls.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from launcher import errors

__all__ = [
    "CudaMemory",
    "DeviceMemory",
    "State",
    "TensorSpec",
    "TensorWeights",
    "llama_layout",
    "placement",
]

logger = logging.getLogger(__name__)

_GIB = 1 << 30
_MIB = 1 << 20
_HOST_ALIGN = 512  # bytes: each tensor's slice of the host buffer starts on a DMA-friendly boundary
_LAYERS = 32
_KV_FRACTION = 0.25  # grouped-query attention: 8 KV heads for 32 query heads
_MLP_FACTOR = 3.5  # intermediate size / hidden size (14336 / 4096)
_VOCAB_FACTOR = 128256 / 4096
_MIN_HIDDEN = 16


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One weight tensor: its name (as in a Hugging Face checkpoint) and shape."""

    name: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


def _layer(index: int, hidden: int) -> list[TensorSpec]:
    kv = max(1, int(hidden * _KV_FRACTION))
    mlp = int(hidden * _MLP_FACTOR)
    p = f"model.layers.{index}."
    return [
        TensorSpec(p + "input_layernorm.weight", (hidden,)),
        TensorSpec(p + "self_attn.q_proj.weight", (hidden, hidden)),
        TensorSpec(p + "self_attn.k_proj.weight", (kv, hidden)),
        TensorSpec(p + "self_attn.v_proj.weight", (kv, hidden)),
        TensorSpec(p + "self_attn.o_proj.weight", (hidden, hidden)),
        TensorSpec(p + "post_attention_layernorm.weight", (hidden,)),
        TensorSpec(p + "mlp.gate_proj.weight", (mlp, hidden)),
        TensorSpec(p + "mlp.up_proj.weight", (mlp, hidden)),
        TensorSpec(p + "mlp.down_proj.weight", (hidden, mlp)),
    ]


def _outer(hidden: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    vocab = int(hidden * _VOCAB_FACTOR)
    head = [TensorSpec("model.embed_tokens.weight", (vocab, hidden))]
    tail = [TensorSpec("model.norm.weight", (hidden,)), TensorSpec("lm_head.weight", (vocab, hidden))]
    return head, tail


def _elements(specs: list[TensorSpec]) -> int:
    return sum(s.numel for s in specs)


def _model_elements(hidden: int, layers: int) -> int:
    head, tail = _outer(hidden)
    return layers * _elements(_layer(0, hidden)) + _elements(head) + _elements(tail)


def llama_layout(total_bytes: int, dtype_bytes: int = 2) -> list[TensorSpec]:
    """A Llama-shaped tensor list of at most ``total_bytes`` (pure).

    The hidden size is the largest multiple of 16 for which 32 layers fit;
    the number of layers then fills what is left (at least one).  The
    result is within one layer of the target (under 4 % from 1 GiB up);
    below the smallest such model (about 0.25 MB) it is that model.
    """
    if total_bytes <= 0:
        raise ValueError(f"the model size must be positive, got {total_bytes!r} bytes")
    budget = total_bytes // dtype_bytes
    per_hidden = _LAYERS * _elements(_layer(0, 1024)) / 1024**2 + 2 * _VOCAB_FACTOR
    hidden = max(_MIN_HIDDEN, int(math.sqrt(budget / per_hidden)) // 16 * 16)
    while hidden > _MIN_HIDDEN and _model_elements(hidden, _LAYERS) > budget:
        hidden -= 16
    head, tail = _outer(hidden)
    per_layer = _elements(_layer(0, hidden))
    layers = max(1, (budget - _elements(head) - _elements(tail)) // per_layer)
    specs = list(head)
    for i in range(layers):
        specs += _layer(i, hidden)
    return specs + tail


def placement(count: int, devices: list[str]) -> list[str]:
    """Which device holds each of ``count`` tensors: contiguous runs, as pipeline stages would (pure)."""
    if not devices:
        raise ValueError("at least one device is needed")
    return [devices[i * len(devices) // count] for i in range(count)]


def _size(n: int) -> str:
    return f"{n / _MIB:.1f} MiB ({n} bytes)"


class DeviceMemory(Protocol):
    """How many bytes a device can still take (``None``: no limit known)."""

    def available_bytes(self, device: str) -> int | None:
        """Measure now."""
        ...


class CudaMemory:
    """Free memory as the CUDA driver reports it, optionally capped to simulate a smaller GPU.

    With ``cap_bytes`` the device behaves as if it had only that much memory
    in total: what every process uses counts against it.
    """

    def __init__(self, torch: Any, cap_bytes: int | None = None) -> None:
        self._torch = torch
        self._cap = cap_bytes

    def available_bytes(self, device: str) -> int | None:
        free, total = self._torch.cuda.mem_get_info(self._torch.device(device))
        if self._cap is None:
            return int(free)
        return max(0, min(int(free), self._cap - (int(total) - int(free))))


class State(enum.Enum):
    """Where the weights are."""

    EMPTY = "empty"  # not loaded yet
    ON_DEVICE = "on_device"
    OFFLOADED = "offloaded"  # level-1 sleep: only the host copy exists
    DISCARDED = "discarded"  # level-2 sleep: nothing is left; a restore reloads


class TensorWeights:
    """One engine's weights; see the module docstring for the life cycle."""

    def __init__(
        self,
        torch: Any,
        layout: list[TensorSpec],
        devices: list[str],
        memory: DeviceMemory,
        *,
        keep_pinned: bool = False,
        seed: int = 0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._torch = torch
        self.layout = layout
        self.devices = placement(len(layout), devices)
        self._memory = memory
        self.keep_pinned = keep_pinned
        self._seed = seed
        self._clock = clock
        self._dtype = torch.bfloat16
        self._itemsize = int(torch.empty((), dtype=self._dtype).element_size())
        self._cuda = any(d.startswith("cuda") for d in self.devices)
        self._on_device: list[Any] = []
        self._host: Any = None  # one flat uint8 buffer
        self._host_views: list[Any] = []
        self.state = State.EMPTY
        self.digest: str | None = None
        self.host_allocations = 0

    # ----- sizes

    @property
    def total_bytes(self) -> int:
        """Bytes of all the weights."""
        return sum(s.numel for s in self.layout) * self._itemsize

    def bytes_per_device(self) -> dict[str, int]:
        """Bytes each device holds when the weights are on it."""
        out: dict[str, int] = {}
        for spec, device in zip(self.layout, self.devices, strict=True):
            out[device] = out.get(device, 0) + spec.numel * self._itemsize
        return out

    def device_bytes(self) -> int:
        """Bytes of weights on the devices now."""
        return self.total_bytes if self.state is State.ON_DEVICE else 0

    def host_bytes(self) -> int:
        """Bytes of host buffer held now (a kept pinned buffer counts while awake too)."""
        return 0 if self._host is None else int(self._host.numel())

    # ----- the life cycle

    def load(self) -> float:
        """Allocate and fill the weights on their devices; returns seconds.  Raises ``InsufficientDeviceMemory``."""
        start = self._clock()
        self._check_room("loading the weights")
        self._on_device = self._allocate_filled()
        self.state = State.ON_DEVICE
        digest = self.checksum()
        if self.digest is None:
            self.digest = digest
        elif digest != self.digest:
            self._free_device()
            self.state = State.DISCARDED
            raise errors.WeightsCorrupted(
                f"reloaded weights have checksum {digest[:16]!r}, expected {self.digest[:16]!r}"
            )
        return self._clock() - start

    def offload(self) -> dict[str, float]:
        """Level-1 sleep: copy to host memory, then free the device memory; returns the phases' seconds."""
        if self.state is not State.ON_DEVICE:
            raise errors.InvalidRequest(f"cannot offload weights that are {self.state.value}")
        start = self._clock()
        self._ensure_host()
        pinned = self._clock()
        self._copy_to_host()
        copied = self._clock()
        self._free_device()
        self.state = State.OFFLOADED
        return {"pin_seconds": pinned - start, "copy_seconds": copied - pinned, "free_seconds": self._clock() - copied}

    def discard(self) -> None:
        """Level-2 sleep: drop the weights everywhere (a kept host buffer stays, its content is stale)."""
        self._free_device()
        if not self.keep_pinned:
            self._release_host()
        self.state = State.DISCARDED

    def restore(self, *, release_host: bool = True) -> dict[str, float]:
        """Wake: bring the weights back on their devices and verify them; returns the phases' seconds.

        Without ``keep_pinned`` the host copy is released afterwards, unless
        ``release_host`` is false: then the caller calls ``drop_host_copy``
        once the wake has been answered (unpinning costs as much as the copy).

        Refuses (``InsufficientDeviceMemory``) without touching anything when
        a device lacks the room; a checksum mismatch (``WeightsCorrupted``)
        frees what was copied and leaves the host copy as it was.  On CUDA
        the checksum of each tensor runs on a side stream as soon as its copy
        has landed, so verification overlaps the transfer instead of following it.
        """
        if self.state is State.ON_DEVICE:
            return {}
        start = self._clock()
        if self.state in (State.DISCARDED, State.EMPTY):
            return {"reload_seconds": self.load()}
        self._check_room("waking")
        restored, sums = self._copy_to_devices()
        copied = self._clock()
        digest = self._digest(sums)
        if digest != self.digest:
            restored.clear()
            self._empty_cache()
            raise errors.WeightsCorrupted(
                f"restored weights have checksum {digest[:16]!r}, expected {str(self.digest)[:16]!r}; still asleep"
            )
        self._on_device = restored
        self.state = State.ON_DEVICE
        verified = self._clock()
        if release_host:
            self.drop_host_copy()
        return {"copy_seconds": copied - start, "verify_seconds": verified - copied}

    def drop_host_copy(self) -> float | None:
        """Release the host copy of awake weights unless ``keep_pinned``; returns seconds (None: nothing to do)."""
        if self.keep_pinned or self.state is not State.ON_DEVICE or self._host is None:
            return None
        start = self._clock()
        self._release_host()
        return self._clock() - start

    def release(self) -> None:
        """Free everything (engine shutdown)."""
        self._free_device()
        self._release_host()
        self.state = State.EMPTY

    # ----- checks and the small computation

    def checksum(self) -> str:
        """SHA-256 over each tensor's name and the exact sum of its raw words (computed on the devices)."""
        if self.state is not State.ON_DEVICE:
            raise errors.InvalidRequest(f"no checksum of weights that are {self.state.value}")
        return self._digest([self._word_sum(t) for t in self._on_device])

    def generate(self, token: int, steps: int) -> list[int]:
        """Greedy decoding through layer 0's MLP and the LM head, on the devices (deterministic)."""
        if self.state is not State.ON_DEVICE:
            raise errors.InvalidRequest(f"cannot compute with weights that are {self.state.value}")
        t = self._torch
        by_name = dict(zip((s.name for s in self.layout), zip(self._on_device, self.devices, strict=True), strict=True))
        embed, _ = by_name["model.embed_tokens.weight"]
        head, head_dev = by_name["lm_head.weight"]
        gate, mlp_dev = by_name["model.layers.0.mlp.gate_proj.weight"]
        up, _ = by_name["model.layers.0.mlp.up_proj.weight"]
        down, _ = by_name["model.layers.0.mlp.down_proj.weight"]
        out: list[int] = []
        current = token % int(embed.shape[0])
        with t.inference_mode():
            for _ in range(steps):
                x = embed[current].to(mlp_dev)
                h = t.nn.functional.silu(gate @ x) * (up @ x)
                x = x + down @ t.nn.functional.normalize(h.float(), dim=0).to(self._dtype)
                x = t.nn.functional.normalize(x.float(), dim=0).to(self._dtype).to(head_dev)
                current = int(t.argmax((head @ x).float()).item())
                out.append(current)
        return out

    # ----- internals

    def _word_sum(self, tensor: Any) -> Any:
        """The exact sum of a tensor's raw 32-bit words (16-bit when its last dimension is odd), as int64."""
        t = self._torch
        words = tensor.view(t.int32) if tensor.shape[-1] % 2 == 0 else tensor.view(t.int16)
        return words.sum(dtype=t.int64)

    def _digest(self, sums: list[Any]) -> str:
        """Hash the per-tensor sums (0-d tensors on their devices, layout order); one sync per device."""
        per_device: dict[str, list[Any]] = {}
        for value, device in zip(sums, self.devices, strict=True):
            per_device.setdefault(device, []).append(value)
        by_device = {d: iter(self._torch.stack(values).tolist()) for d, values in per_device.items()}
        h = hashlib.sha256()
        for spec, device in zip(self.layout, self.devices, strict=True):
            h.update(f"{spec.name}={int(next(by_device[device]))};".encode())
        return h.hexdigest()

    def _copy_to_host(self) -> None:
        # A method of its own: its loop variables, which hold device tensors, are gone when it returns.
        for tensor, view in zip(self._on_device, self._host_views, strict=True):
            view.copy_(tensor, non_blocking=True)
        self._synchronize()

    def _copy_to_devices(self) -> tuple[list[Any], list[Any]]:
        """Device tensors filled from the host copy, and their sums; raises ``InsufficientDeviceMemory``.

        Each allocation overlaps the copies already queued; on CUDA each sum
        runs on a side stream once its tensor's copy is done.
        """
        t = self._torch
        side = {d: t.cuda.Stream(device=d) for d in set(self.devices)} if self._cuda else {}
        out: list[Any] = []
        sums: list[Any] = []
        tensor: Any = None
        try:
            for view, device in zip(self._host_views, self.devices, strict=True):
                tensor = t.empty(view.shape, dtype=self._dtype, device=device)
                tensor.copy_(view, non_blocking=True)
                out.append(tensor)
                if device in side:
                    landed = t.cuda.Event()
                    landed.record(t.cuda.current_stream(device))
                    side[device].wait_event(landed)
                    with t.cuda.stream(side[device]):
                        sums.append(self._word_sum(tensor))
                else:
                    sums.append(self._word_sum(tensor))
            self._synchronize()
        except t.OutOfMemoryError as exc:
            reason = str(exc)
        else:
            return out, sums
        out.clear()
        sums.clear()
        tensor = None  # drop every reference before the allocator hands its memory back
        self._empty_cache()
        raise errors.InsufficientDeviceMemory(
            f"waking needs {_size(self.total_bytes)} on the devices and the allocator ran out: {reason}"
        )

    def _check_room(self, what: str) -> None:
        for device, need in self.bytes_per_device().items():
            free = self._memory.available_bytes(device)
            if free is not None and free < need:
                raise errors.InsufficientDeviceMemory(
                    f"{what} needs {_size(need)} on {device!r} but only {_size(free)} is free there; "
                    "the weights stay where they are"
                )

    def _allocate_filled(self) -> list[Any]:
        t = self._torch
        tensors: list[Any] = []
        tensor: Any = None
        try:
            for index, (spec, device) in enumerate(zip(self.layout, self.devices, strict=True)):
                generator = t.Generator(device=device)
                generator.manual_seed(self._seed * 1_000_003 + index)
                tensor = t.empty(spec.shape, dtype=self._dtype, device=device)
                tensor.normal_(mean=0.0, std=0.02, generator=generator)
                tensors.append(tensor)
            self._synchronize()
        except t.OutOfMemoryError as exc:
            reason = str(exc)
        else:
            return tensors
        tensors.clear()
        tensor = None  # drop every reference before the allocator hands its memory back
        self._empty_cache()
        raise errors.InsufficientDeviceMemory(f"loading needs {_size(self.total_bytes)} on the devices: {reason}")

    def _ensure_host(self) -> None:
        if self._host is not None:
            return
        t = self._torch
        offsets = []
        size = 0
        for spec in self.layout:
            offsets.append(size)
            size += -(-spec.numel * self._itemsize // _HOST_ALIGN) * _HOST_ALIGN
        try:
            host = t.empty(size, dtype=t.uint8, pin_memory=self._cuda)
        except RuntimeError as exc:
            raise errors.InsufficientHostMemory(
                f"cannot allocate {size} bytes of host memory for the weights: {exc}"
            ) from exc
        views = []
        for spec, offset in zip(self.layout, offsets, strict=True):
            nbytes = spec.numel * self._itemsize
            views.append(host[offset : offset + nbytes].view(self._dtype).view(spec.shape))
        self._host = host
        self._host_views = views
        self.host_allocations += 1

    def _release_host(self) -> None:
        self._host_views = []
        self._host = None
        if self._cuda:
            # torch caches freed pinned blocks for reuse; hand them back, or "not kept" would be kept anyway
            empty_host_cache = getattr(self._torch._C, "_host_emptyCache", None)
            if empty_host_cache is not None:
                empty_host_cache()

    def _free_device(self) -> None:
        self._on_device = []
        self._empty_cache()

    def _synchronize(self) -> None:
        if self._cuda:
            for device in sorted(set(self.devices)):
                self._torch.cuda.synchronize(device)

    def _empty_cache(self) -> None:
        if self._cuda:
            self._torch.cuda.empty_cache()
