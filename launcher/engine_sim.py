"""The engine simulator: a vLLM-compatible server with modelled start, sleep and wake times.

It lets FMA run end to end on machines without GPUs: the same admin API the
controller drives (``/sleep``, ``/wake_up``, ``/is_sleeping``, docs/protocol.md, "Engine calls"),
the OpenAI endpoints a client would call (deterministic text, usage counts),
and ``/health`` that answers 503 until the simulated load is done.  Its GPU
memory is published per UUID (``sim_usage``) so the requester agent can
report it as NVML would.  Durations come from ``sim_model``.

Like vLLM, the dev-mode endpoints exist only with ``VLLM_SERVER_DEV_MODE=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from types import FrameType
from typing import Annotated, Any

import fastapi
import prometheus_client
import pydantic
import uvicorn
from fastapi import responses

from launcher import errors, request_guard, sim_model, sim_usage, validation_response
from launcher import settings as settings_mod

__all__ = ["SimEngine", "create_app", "serve"]

logger = logging.getLogger(__name__)

_VOCAB = (
    "the",
    "model",
    "simulated",
    "answer",
    "token",
    "engine",
    "sleep",
    "wake",
    "fast",
    "actuation",
    "launcher",
    "dual",
    "pod",
    "gpu",
    "memory",
    "weights",
    "cache",
    "request",
    "stream",
    "server",
    "inference",
    "kernel",
    "batch",
    "tensor",
    "parallel",
)
_MAX_TOKENS_CAP = 4096
_MAX_BODY_BYTES = 4 * 1024 * 1024


class SimEngine:
    """The simulated engine's state; all changes happen on the event loop, serialised by a lock."""

    def __init__(self, sim: settings_mod.EngineSimSettings) -> None:
        self.sim = sim
        self.phase = sim_model.Phase.STARTING
        self.asleep: frozenset[str] = frozenset()
        self.level = 0
        self.running_requests = 0
        self.started_at = time.monotonic()
        self._lock = asyncio.Lock()

    @property
    def model_names(self) -> list[str]:
        """Names a request may use: ``--served-model-name`` if given, else ``--model``."""
        return self.sim.served_model_name or [self.sim.model]

    def usage(self) -> dict[str, int]:
        """Simulated MiB in use on each of this engine's GPUs."""
        per_gpu = sim_model.memory_mib(self.sim, self.phase, self.asleep)
        return dict.fromkeys(self.sim.gpu_uuids, per_gpu)

    def text(self, seed: str, n: int) -> str:
        """The ``n`` words answered to ``seed`` (the torch-backed engine computes them on its device)."""
        return _text(seed, n)

    def publish_usage(self) -> None:
        """Write the current usage where the requester agent reads it (no-op without GPUs)."""
        if self.sim.gpu_uuids:
            sim_usage.publish(self.sim.usage_dir, sim_usage.EngineUsage(pid=os.getpid(), usage_mib=self.usage()))

    async def start(self) -> None:
        """Simulate the cold start, then serve."""
        self.publish_usage()
        await asyncio.sleep(sim_model.start_seconds(self.sim))
        self.phase = sim_model.Phase.SERVING
        self.publish_usage()
        logger.info("engine simulator ready", extra={"seconds": round(time.monotonic() - self.started_at, 3)})

    async def sleep(self, level: int) -> None:
        """Put every tag to sleep at ``level``; sleeping again is a no-op, as in vLLM."""
        async with self._lock:
            if self.asleep:
                return
            await asyncio.sleep(sim_model.sleep_seconds(self.sim, level))
            self.asleep = sim_model.ALL_TAGS
            self.level = level
            self.publish_usage()
            logger.info("engine simulator asleep", extra={"level": level})

    async def wake(self, tags: frozenset[str]) -> None:
        """Restore ``tags`` (all when empty)."""
        async with self._lock:
            waking = (tags or sim_model.ALL_TAGS) & self.asleep
            if not waking:
                return
            await asyncio.sleep(sim_model.wake_seconds(self.sim, waking, self.level))
            self.asleep = self.asleep - waking
            if not self.asleep:
                self.level = 0
            self.publish_usage()
            logger.info("engine simulator woke", extra={"tags": sorted(waking), "still_asleep": sorted(self.asleep)})


class _CompletionRequest(pydantic.BaseModel):
    """The OpenAI completion fields the simulator reads; other fields are accepted and ignored."""

    model_config = pydantic.ConfigDict(extra="allow")

    model: str | None = None
    prompt: str | list[str] = ""
    max_tokens: Annotated[int, pydantic.Field(ge=1, le=_MAX_TOKENS_CAP)] = 16
    stream: bool = False


class _ChatMessage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    role: str
    content: str | list[Any] | None = None


class _ChatRequest(pydantic.BaseModel):
    """The OpenAI chat fields the simulator reads; other fields are accepted and ignored."""

    model_config = pydantic.ConfigDict(extra="allow")

    model: str | None = None
    messages: list[_ChatMessage]
    max_tokens: Annotated[int, pydantic.Field(ge=1, le=_MAX_TOKENS_CAP)] | None = None
    max_completion_tokens: Annotated[int, pydantic.Field(ge=1, le=_MAX_TOKENS_CAP)] | None = None
    stream: bool = False


def _text(seed: str, n: int) -> str:
    """``n`` deterministic words derived from ``seed`` (pure)."""
    words: list[str] = []
    digest = b""
    counter = 0
    while len(words) < n:
        if not digest:
            digest = hashlib.sha256(f"{seed}\x00{counter}".encode()).digest()
            counter += 1
        words.append(_VOCAB[digest[0] % len(_VOCAB)])
        digest = digest[1:]
    return " ".join(words)


def _error(status: int, message: str, kind: str) -> responses.JSONResponse:
    body = {"object": "error", "message": message, "type": kind, "param": None, "code": status}
    return responses.JSONResponse(body, status_code=status)


class _Metrics:
    """The few ``vllm:`` series the simulator exports, in a registry of its own."""

    def __init__(self, engine: SimEngine) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        labels = ["model_name"]
        self.running = prometheus_client.Gauge(
            "vllm:num_requests_running", "Requests being processed.", labels, registry=self.registry
        )
        self.waiting = prometheus_client.Gauge(
            "vllm:num_requests_waiting", "Requests waiting.", labels, registry=self.registry
        )
        self.kv_usage = prometheus_client.Gauge(
            "vllm:kv_cache_usage_perc", "KV cache usage (1 = full).", labels, registry=self.registry
        )
        self.sleep_state = prometheus_client.Gauge(
            "vllm:engine_sleep_state",
            "1 for the current sleep state.",
            [*labels, "sleep_state"],
            registry=self.registry,
        )
        self.prompt_tokens = prometheus_client.Counter(
            "vllm:prompt_tokens", "Prompt tokens processed.", labels, registry=self.registry
        )
        self.generation_tokens = prometheus_client.Counter(
            "vllm:generation_tokens", "Tokens generated.", labels, registry=self.registry
        )
        self._engine = engine
        self.name = engine.model_names[0]

    def refresh(self) -> None:
        """Bring the gauges up to date with the engine state."""
        e = self._engine
        self.running.labels(self.name).set(e.running_requests)
        self.waiting.labels(self.name).set(0)
        self.kv_usage.labels(self.name).set(0.0)
        state = "awake" if not e.asleep else ("weights_offloaded" if e.level == 1 else "discard_all")
        for s in ("awake", "weights_offloaded", "discard_all"):
            self.sleep_state.labels(self.name, s).set(1 if s == state else 0)


def create_app(engine: SimEngine) -> fastapi.FastAPI:  # noqa: PLR0915 - one closure per route, sharing the engine
    """The simulator's ASGI app; the cold start runs as a task for the app's lifetime."""

    @contextlib.asynccontextmanager
    async def lifespan(_: fastapi.FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(engine.start())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            sim_usage.withdraw(engine.sim.usage_dir, os.getpid())

    app = fastapi.FastAPI(title="FMA engine simulator", lifespan=lifespan)
    app.add_middleware(request_guard.BodyGuard, limit=_MAX_BODY_BYTES)  # strict JSON: no NaN, surrogates, depth
    validation_response.install(app)
    metrics = _Metrics(engine)

    def serving_or_503() -> responses.JSONResponse | None:
        if engine.phase is sim_model.Phase.STARTING:
            return _error(503, "the engine is still loading", "ServiceUnavailableError")
        if engine.asleep:
            return _error(503, "the engine is sleeping", "ServiceUnavailableError")
        return None

    def model_or_404(name: str | None) -> responses.JSONResponse | None:
        if name is not None and name not in engine.model_names:
            return _error(404, f"The model `{name}` does not exist.", "NotFoundError")
        return None

    @app.get("/health")
    async def health() -> fastapi.Response:
        if engine.phase is sim_model.Phase.STARTING:
            return fastapi.Response(status_code=503)
        return fastapi.Response(status_code=200)

    @app.get("/v1/models")
    async def models() -> dict[str, object]:
        data = [
            {
                "id": name,
                "object": "model",
                "created": int(engine.started_at),
                "owned_by": "vllm",
                "root": engine.sim.model,
                "parent": None,
                "max_model_len": engine.sim.max_model_len,
            }
            for name in engine.model_names
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/completions", response_model=None)
    async def completions(body: _CompletionRequest) -> responses.JSONResponse | dict[str, object]:
        problem = model_or_404(body.model) or serving_or_503()
        if problem is not None:
            return problem
        if body.stream:
            return _error(400, "streaming is not supported by the engine simulator", "BadRequestError")
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        prompt_tokens = sum(len(p.split()) for p in prompts)
        if prompt_tokens + body.max_tokens > engine.sim.max_model_len:
            return _error(
                400, f"prompt plus max_tokens exceeds max_model_len {engine.sim.max_model_len}", "BadRequestError"
            )
        choices = [
            {"index": i, "text": engine.text(p, body.max_tokens), "logprobs": None, "finish_reason": "length"}
            for i, p in enumerate(prompts)
        ]
        metrics.prompt_tokens.labels(metrics.name).inc(prompt_tokens)
        metrics.generation_tokens.labels(metrics.name).inc(body.max_tokens * len(prompts))
        return {
            "id": "cmpl-" + hashlib.sha256("".join(prompts).encode()).hexdigest()[:24],
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.model or engine.model_names[0],
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": body.max_tokens * len(prompts),
                "total_tokens": prompt_tokens + body.max_tokens * len(prompts),
            },
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: _ChatRequest) -> responses.JSONResponse | dict[str, object]:
        problem = model_or_404(body.model) or serving_or_503()
        if problem is not None:
            return problem
        if body.stream:
            return _error(400, "streaming is not supported by the engine simulator", "BadRequestError")
        prompt = "\n".join(str(m.content) for m in body.messages if m.content is not None)
        prompt_tokens = len(prompt.split())
        n = body.max_completion_tokens or body.max_tokens or 16
        if prompt_tokens + n > engine.sim.max_model_len:
            return _error(
                400, f"prompt plus max_tokens exceeds max_model_len {engine.sim.max_model_len}", "BadRequestError"
            )
        metrics.prompt_tokens.labels(metrics.name).inc(prompt_tokens)
        metrics.generation_tokens.labels(metrics.name).inc(n)
        return {
            "id": "chatcmpl-" + hashlib.sha256(prompt.encode()).hexdigest()[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model or engine.model_names[0],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": engine.text(prompt, n)},
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n},
        }

    @app.get("/metrics")
    async def metrics_endpoint() -> fastapi.Response:
        metrics.refresh()
        return fastapi.Response(prometheus_client.generate_latest(metrics.registry), media_type="text/plain")

    if engine.sim.dev_mode:

        @app.post("/sleep", response_model=None)
        async def sleep(level: int = 1) -> fastapi.Response | responses.JSONResponse:
            if not engine.sim.enable_sleep_mode:
                return _error(
                    400, "sleep mode is not enabled; start the engine with --enable-sleep-mode", "BadRequestError"
                )
            if level not in (1, 2):
                return _error(400, f"unsupported sleep level {level!r}; use 1 or 2", "BadRequestError")
            if engine.phase is sim_model.Phase.STARTING:
                return _error(503, "the engine is still loading", "ServiceUnavailableError")
            try:
                await engine.sleep(level)
            except errors.LauncherError as exc:
                return _error(exc.http_status, str(exc), type(exc).__name__)
            return fastapi.Response(status_code=200)

        @app.post("/wake_up", response_model=None)
        async def wake_up(tags: Annotated[list[str] | None, fastapi.Query()] = None) -> fastapi.Response:
            wanted = frozenset(tags or ())
            unknown = wanted - sim_model.ALL_TAGS
            if unknown:
                return _error(400, f"unknown tags {sorted(unknown)!r}; use weights or kv_cache", "BadRequestError")
            if engine.phase is sim_model.Phase.STARTING:
                return _error(503, "the engine is still loading", "ServiceUnavailableError")
            try:
                await engine.wake(wanted)
            except errors.LauncherError as exc:
                return _error(exc.http_status, str(exc), type(exc).__name__)
            return fastapi.Response(status_code=200)

        @app.get("/is_sleeping", response_model=None)
        async def is_sleeping() -> dict[str, bool] | responses.JSONResponse:
            # Real vLLM does not listen at all while it loads; answering 503
            # keeps a controller from mistaking a loading engine for an awake one.
            if engine.phase is sim_model.Phase.STARTING:
                return _error(503, "the engine is still loading", "ServiceUnavailableError")
            return {"is_sleeping": bool(engine.asleep)}

    return app


def _start_workers(count: int) -> list[subprocess.Popen[bytes]]:
    """Stand-ins for vLLM's engine worker processes: same process group, deaf to SIGTERM.

    They outlive the main process unless the whole group is killed, which is
    exactly the failure the launcher's group reaping must prevent.
    """
    code = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    signal.pause()\n"
    workers = []
    for _ in range(count):
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
        logger.info("simulated worker started", extra={"worker_pid": proc.pid})
        workers.append(proc)
    return workers


class _DeafServer(uvicorn.Server):
    """A server that ignores SIGTERM, like a wedged engine: only SIGKILL stops it."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)


def serve(sim: settings_mod.EngineSimSettings, engine: SimEngine | None = None) -> int:
    """Run the simulator (or ``engine``, e.g. the torch-backed one) until SIGTERM/SIGINT; returns the exit status."""
    engine = engine or SimEngine(sim)
    logger.info(
        "engine simulator starting",
        extra={
            "pid": os.getpid(),
            "model": sim.model,
            "host": sim.host,
            "port": sim.port,
            "gpu_uuids": sim.gpu_uuids,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
            "start_seconds": sim_model.start_seconds(sim),
        },
    )
    _start_workers(sim.workers)
    config = uvicorn.Config(
        create_app(engine), host=sim.host, port=sim.port, log_config=None, log_level=sim.log_level, access_log=False
    )
    server = _DeafServer(config) if sim.ignore_sigterm else uvicorn.Server(config)
    asyncio.run(server.serve())
    return 0
