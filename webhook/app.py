"""The ASGI app: ``POST /mutate`` plus ``/healthz``, ``/readyz`` and ``/metrics``.

The request handler is the supervising code of the webhook: it reads the
body up to the cap, parses it, gathers the cluster facts, calls the pure
``mutation.mutate`` and always answers with an AdmissionReview that echoes
the uid — for malformed bodies and for our own bugs too (``allowed:
false``), never with a bare HTTP error, which the apiserver could only
report as "failed calling webhook".
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import fastapi
import pydantic
from fastapi import responses

from webhook import admission_review, cluster_facts, errors, metrics, mutation, pod_view

__all__ = ["AppState", "create_app"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class AppState:
    """Everything the handlers use, passed in explicitly."""

    options: mutation.Options
    facts: cluster_facts.FactSource
    metrics: metrics.Metrics
    max_body_bytes: int
    ready: Callable[[], bool] = lambda: True


async def _read_capped(request: fastapi.Request, limit: int) -> tuple[bytes, bool]:
    """The body, and whether it exceeded ``limit`` (then only its first ``limit`` bytes)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        head = b""
        async for chunk in request.stream():
            head += chunk
            if len(head) >= 4096:
                break
        return head, True
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


async def _facts_for(state: AppState, namespace: str, raw: dict[str, Any]) -> cluster_facts.Facts:
    """Gather facts, in a worker thread only when that means waiting on the apiserver."""
    try:
        view = pod_view.parse(raw)
    except pydantic.ValidationError:
        return cluster_facts.Facts()  # mutate() denies it with the details
    if state.facts.blocks(view):
        return await anyio.to_thread.run_sync(state.facts.gather, namespace, view)
    return state.facts.gather(namespace, view)


async def _decide(state: AppState, body: bytes, too_large: bool) -> tuple[str, mutation.Decision]:
    if too_large:
        raise errors.MalformedReview(f"the AdmissionReview exceeds {state.max_body_bytes} bytes")
    review = admission_review.parse(body)
    request = review.request
    if request.operation != "CREATE" or request.kind.kind != "Pod" or not isinstance(request.object, dict):
        return request.uid, mutation.Decision(allowed=True, mode="none")
    raw = request.object
    facts = dataclasses.replace(await _facts_for(state, request.namespace, raw), request_uid=request.uid)
    decision = mutation.mutate(raw, state.options, facts)
    if state.options.placement in mutation.HINTED_PLACEMENTS and decision.allowed and decision.mode != "none":
        outcome = "unavailable" if facts.hints is None else "none" if facts.hints.empty else "hinted"
        if decision.nominated_node is not None:
            outcome = "nominated"
        state.metrics.placement_hints.labels(outcome=outcome).inc()
    return request.uid, decision


def create_app(state: AppState) -> fastapi.FastAPI:
    """Build the app around ``state``."""
    app = fastapi.FastAPI(title="fma-webhook", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fma = state

    @app.post("/mutate")
    async def mutate(request: fastapi.Request) -> responses.Response:
        started = time.perf_counter()
        body, too_large = await _read_capped(request, state.max_body_bytes)
        uid, mode = "", "none"
        try:
            uid, decision = await _decide(state, body, too_large)
            mode, outcome = decision.mode, decision.outcome
            answer = admission_review.response(
                uid,
                allowed=decision.allowed,
                patch=decision.patch,
                warnings=decision.warnings,
                message=decision.message,
            )
        except errors.MalformedReview as exc:
            uid, outcome = admission_review.find_uid(body), "malformed"
            answer = admission_review.response(uid, allowed=False, message=str(exc))
        except Exception:  # supervising request handler: answer, log, carry on
            logger.exception("admission failed", extra={"request_uid": uid})
            uid, outcome = uid or admission_review.find_uid(body), "error"
            answer = admission_review.response(
                uid, allowed=False, message="internal error in the FMA webhook; see its log", code=500
            )
        elapsed = time.perf_counter() - started
        state.metrics.observe(outcome, mode, elapsed)
        level = logging.INFO if outcome in ("patched", "denied", "malformed", "error") else logging.DEBUG
        if logger.isEnabledFor(level):
            extra: dict[str, Any] = {"request_uid": uid, "outcome": outcome, "mode": mode, "seconds": round(elapsed, 6)}
            message = answer["response"].get("status", {}).get("message")
            if message:
                extra["reason"] = message
            logger.log(level, "admission answered", extra=extra)
        return responses.Response(json.dumps(answer).encode(), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> responses.PlainTextResponse:
        return responses.PlainTextResponse("ok\n")

    @app.get("/readyz")
    async def readyz() -> responses.PlainTextResponse:
        if state.ready():
            return responses.PlainTextResponse("ok\n")
        return responses.PlainTextResponse("not ready\n", status_code=503)

    @app.get("/metrics")
    async def metrics_endpoint() -> responses.Response:
        return responses.Response(state.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
