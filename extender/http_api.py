"""The extender's HTTP surface: ``POST /filter``, ``POST /prioritize``, ``/healthz``, ``/metrics``.

The scheduler calls ``<urlPrefix>/<verb>`` with an ExtenderArgs body.  Each
handler only parses (``protocol``), calls the pure verb (``decision``) over
the cluster model, records metrics and serialises; a body that does not parse
gets **400** with a ``{"detail": message}`` naming every bad field, and a body
above the size cap gets 413.  ``/healthz`` answers 200 once the watch caches
have their first list (503 before), so a readiness probe keeps the scheduler
from getting neutral answers from an empty model.

Handlers are ``async`` and never block: the verbs are CPU-only reads of
memoised values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

import fastapi
from fastapi import responses

from crds import sleeper_scoring
from extender import decision, errors, metrics, protocol

__all__ = ["FILTER_PATH", "PRIORITIZE_PATH", "create_app"]

logger = logging.getLogger(__name__)

FILTER_PATH: Final = "/filter"
PRIORITIZE_PATH: Final = "/prioritize"


def _json(body: bytes) -> responses.Response:
    return responses.Response(content=body, media_type="application/json")


def _error(status: int, message: str) -> responses.JSONResponse:
    return responses.JSONResponse(status_code=status, content={"detail": message})


def create_app(
    *,
    world: decision.World,
    extender_metrics: metrics.ExtenderMetrics,
    ready: Callable[[], bool],
    policy: sleeper_scoring.Policy | None = None,
    max_body_bytes: int = 64 * 1024 * 1024,
) -> fastapi.FastAPI:
    """Build the app over ``world``; ``ready`` says whether the model has synced."""
    app = fastapi.FastAPI(title="fma-extender", docs_url=None, redoc_url=None, openapi_url=None)

    async def _args(request: fastapi.Request, verb: str) -> protocol.ExtenderArgs | responses.JSONResponse:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return _error(413, f"body of {declared} bytes exceeds the limit of {max_body_bytes}")
        body = await request.body()
        if len(body) > max_body_bytes:
            return _error(413, f"body of {len(body)} bytes exceeds the limit of {max_body_bytes}")
        try:
            return protocol.parse_args(body)
        except errors.BadExtenderArgs as exc:
            extender_metrics.bad_requests.labels(verb=verb).inc()
            logger.info("malformed extender request", extra={"verb": verb, "error": str(exc)})
            return _error(400, str(exc))

    @app.post(FILTER_PATH)
    async def filter_verb(request: fastapi.Request) -> fastapi.Response:
        started = time.perf_counter()
        args = await _args(request, "filter")
        if isinstance(args, responses.JSONResponse):
            return args
        result, outcome = decision.filter_nodes(args, world)
        body = result.model_dump_json(by_alias=True)
        extender_metrics.nodes_scored.labels(verb="filter").inc(outcome.nodes)
        extender_metrics.latency.labels(verb="filter").observe(time.perf_counter() - started)
        if outcome.fma:
            logger.debug(
                "filtered nodes",
                extra={
                    "pod": args.pod.ref,
                    "nodes": outcome.nodes,
                    "failed": len(result.failed_nodes) + len(result.failed_and_unresolvable_nodes),
                },
            )
        return _json(body.encode())

    @app.post(PRIORITIZE_PATH)
    async def prioritize_verb(request: fastapi.Request) -> fastapi.Response:
        started = time.perf_counter()
        args = await _args(request, "prioritize")
        if isinstance(args, responses.JSONResponse):
            return args
        priorities, outcome = decision.prioritize(args, world, policy)
        body = protocol.encode_priorities(priorities)
        extender_metrics.nodes_scored.labels(verb="prioritize").inc(outcome.nodes)
        extender_metrics.decisions.labels(placement=outcome.best.value).inc()
        extender_metrics.latency.labels(verb="prioritize").observe(time.perf_counter() - started)
        if outcome.fma:
            logger.debug(
                "prioritized nodes", extra={"pod": args.pod.ref, "nodes": outcome.nodes, "best": outcome.best.value}
            )
        return _json(body)

    @app.get("/healthz")
    async def healthz() -> fastapi.Response:
        if ready():
            return responses.PlainTextResponse("ok\n")
        return responses.PlainTextResponse("caches not synced\n", status_code=503)

    @app.get("/metrics")
    async def metrics_endpoint() -> fastapi.Response:
        return responses.Response(content=extender_metrics.exposition(), media_type="text/plain; version=0.0.4")

    return app
