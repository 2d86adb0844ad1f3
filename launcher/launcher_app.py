"""The launcher HTTP API (docs/protocol.md, "Launcher API") over a ``ProcessTable``.

Handlers only translate between HTTP and the table: bodies are validated by
the ``schemas`` models (422 naming the field), launcher errors map to their
status code through ``errors.LauncherError.http_status``, and nothing here
owns state.  The watch route is declared before ``/{instance_id}`` so that
``watch`` is never taken for an ID.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import fastapi
from fastapi import responses

from launcher import errors, log_range, process_table, request_guard, schemas, validation_response

__all__ = ["INDEX_ENDPOINTS", "create_app"]

logger = logging.getLogger(__name__)

_BASE = "/v2/vllm/instances"

INDEX_ENDPOINTS = {
    "index": "GET /",
    "health": "GET /health",
    "create_instance": f"POST {_BASE}",
    "create_named_instance": f"PUT {_BASE}/{{instance_id}}",
    "delete_instance": f"DELETE {_BASE}/{{instance_id}}",
    "delete_all_instances": f"DELETE {_BASE}",
    "get_instance_status": f"GET {_BASE}/{{instance_id}}",
    "get_all_instances": f"GET {_BASE}",
    "get_instance_logs": f"GET {_BASE}/{{instance_id}}/log",
    "watch_instances": f"GET {_BASE}/watch",
}


def _created(state: schemas.InstanceState) -> responses.JSONResponse:
    return responses.JSONResponse(state.wire(), status_code=201)


def create_app(  # noqa: PLR0915 - one closure per route, sharing the table
    table: process_table.ProcessTable,
    *,
    metrics_render: Callable[[], bytes],
    token: str | None,
    max_body_bytes: int,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    healthy: Callable[[], str | None] = lambda: None,
    ready: Callable[[], str | None] = lambda: None,
) -> request_guard.App:
    """Build the ASGI app: the FastAPI routes wrapped in the body guard and, with a token, the auth guard.

    ``healthy`` returns None when the launcher can work, or why it cannot; the
    liveness probe (``/health``) then answers 503 so that the kubelet restarts it.
    ``ready`` returns None once instances can be started (the engine is
    preloaded and the preloaded parent is alive), or why not; the readiness
    probe (``/readyz``) answers 503 until then.  Both probes stay open when
    auth is on and say nothing about instances.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: fastapi.FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        try:
            yield
        finally:
            if on_shutdown is not None:
                await on_shutdown()

    app = fastapi.FastAPI(title="Multi-Instance vLLM Management API", version="2.0", lifespan=lifespan)
    validation_response.install(app)

    @app.exception_handler(errors.LauncherError)
    async def launcher_error(_: fastapi.Request, exc: errors.LauncherError) -> fastapi.Response:
        if isinstance(exc, errors.RangeNotSatisfiable):
            return fastapi.Response(status_code=416, headers={"Content-Range": f"bytes */{exc.total}"})
        if exc.http_status >= 500:
            logger.error("request failed", extra={"error": str(exc)})
        return responses.JSONResponse({"detail": str(exc)}, status_code=exc.http_status)

    @app.get("/")
    async def index() -> dict[str, object]:
        return {"name": "Multi-Instance vLLM Management API", "version": "2.0", "endpoints": INDEX_ENDPOINTS}

    @app.get("/health", response_model=None)
    async def health() -> dict[str, str] | responses.JSONResponse:
        problem = healthy()
        if problem is not None:
            return responses.JSONResponse({"detail": problem}, status_code=503)
        return {"status": "OK"}

    @app.get("/readyz", response_model=None)
    async def readyz() -> dict[str, str] | responses.JSONResponse:
        problem = ready()
        if problem is not None:
            return responses.JSONResponse({"detail": problem}, status_code=503)
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics() -> fastapi.Response:
        return fastapi.Response(metrics_render(), media_type="text/plain; version=0.0.4")

    @app.post(_BASE, status_code=201, response_model=None)
    async def create_instance(config: schemas.VllmConfig) -> responses.JSONResponse:
        return _created(await table.create(str(uuid.uuid4()), config))

    @app.put(_BASE + "/{instance_id}", status_code=201, response_model=None)
    async def create_named_instance(instance_id: str, config: schemas.VllmConfig) -> responses.JSONResponse:
        if not schemas.is_valid_instance_id(instance_id):
            raise errors.InvalidInstanceId(
                f"instance ID {instance_id!r} is not a valid label value "
                "(1-63 characters, alphanumeric at both ends, '-', '_' or '.' inside)"
            )
        return _created(await table.create(instance_id, config))

    @app.get(_BASE, response_model=None)
    async def list_instances(detail: bool = True) -> dict[str, object]:
        view = table.list_view() if detail else table.ids_view()
        if isinstance(view, schemas.ListView):
            return {**view.model_dump(exclude={"instances"}), "instances": [s.wire() for s in view.instances]}
        return view.model_dump()

    @app.delete(_BASE, response_model=None)
    async def delete_all_instances() -> dict[str, object]:
        result = await table.delete_all()
        return {
            **result.model_dump(exclude={"stopped_instances"}),
            "stopped_instances": [s.wire() for s in result.stopped_instances],
        }

    @app.get(_BASE + "/watch", response_model=None)
    async def watch_instances(since: int | None = None) -> responses.StreamingResponse:
        if since is None:
            initial = [schemas.WatchEvent(type="CREATED", object=s) for s in table.states()]
        else:
            initial = table.events.replay_since(since)
        subscription = table.events.subscribe()

        async def lines() -> AsyncIterator[bytes]:
            try:
                for event in initial:
                    yield event.line()
                async for event in subscription:
                    yield event.line()
            finally:
                table.events.unsubscribe(subscription)

        return responses.StreamingResponse(
            lines(), media_type="application/x-ndjson", headers={"X-Content-Type-Options": "nosniff"}
        )

    @app.get(_BASE + "/{instance_id}", response_model=None)
    async def get_instance_status(instance_id: str) -> dict[str, object]:
        return table.get(instance_id).wire()

    @app.delete(_BASE + "/{instance_id}", response_model=None)
    async def delete_instance(instance_id: str) -> dict[str, object]:
        return (await table.delete(instance_id)).wire()

    @app.get(_BASE + "/{instance_id}/log", response_model=None)
    async def get_instance_logs(instance_id: str, request: fastapi.Request) -> fastapi.Response:
        path = table.log_path(instance_id)
        try:
            with path.open("rb") as f:
                total = f.seek(0, 2)
                piece = log_range.plan(request.headers.get("range"), total)
                f.seek(piece.start)
                body = f.read(max(piece.length, 0))
        except FileNotFoundError:
            raise errors.InstanceNotFound(f"Instance {instance_id} has no log") from None
        headers = {"Accept-Ranges": "bytes", "Content-Range": piece.content_range}
        return fastapi.Response(body, status_code=piece.status, media_type="application/octet-stream", headers=headers)

    guarded: request_guard.App = request_guard.BodyGuard(app, max_body_bytes)
    if token:
        guarded = request_guard.BearerAuth(guarded, token)
    return guarded
