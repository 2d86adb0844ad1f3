"""``request_guard``: the body cap with strict JSON, and bearer auth that leaves only the probes open."""

from __future__ import annotations

import asyncio
from typing import Any

import fastapi
import httpx
import pytest

from launcher import request_guard


def _app(seen: list[bytes]) -> fastapi.FastAPI:
    app = fastapi.FastAPI()

    @app.post("/json")
    async def json_route(request: fastapi.Request) -> dict[str, int]:
        seen.append(await request.body())
        return {"ok": 1}

    @app.post("/raw")
    async def raw_route(request: fastapi.Request) -> dict[str, int]:
        seen.append(await request.body())
        return {"ok": 1}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "OK"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/secret")
    async def secret() -> dict[str, str]:
        return {"status": "in"}

    return app


def _call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(send())


@pytest.mark.parametrize(
    ("content_type", "checked"),
    [
        pytest.param(None, True, id="none-given"),
        pytest.param("application/json", True, id="json"),
        pytest.param("application/json; charset=utf-8", True, id="json-with-charset"),
        pytest.param("application/merge-patch+json", True, id="plus-json"),
        pytest.param("text/plain", False, id="text"),
        pytest.param("application/octet-stream", False, id="octet-stream"),
    ],
)
def test_reads_as_json_follows_fastapi(content_type: str | None, checked: bool) -> None:
    assert request_guard.reads_as_json(content_type) is checked


def test_strict_json_is_checked_before_the_app_runs() -> None:
    seen: list[bytes] = []
    app = request_guard.BodyGuard(_app(seen), 1024, raw_paths=frozenset({"/raw"}))
    answer = _call(app, "POST", "/json", content=b'{"a": NaN}', headers={"content-type": "application/json"})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["type"] == "json_invalid"
    assert problem["loc"] == ["body"]
    assert "NaN and Infinity" in problem["msg"]
    assert seen == []
    good = _call(app, "POST", "/json", content=b'{"a": 1}', headers={"content-type": "application/json"})
    assert good.status_code == 200
    assert seen == [b'{"a": 1}']


def test_raw_paths_and_non_json_bodies_are_only_capped() -> None:
    seen: list[bytes] = []
    app = request_guard.BodyGuard(_app(seen), 1024, raw_paths=frozenset({"/raw"}))
    assert _call(app, "POST", "/raw", content=b"[NaN").status_code == 200
    assert _call(app, "POST", "/json", content=b"[NaN", headers={"content-type": "text/plain"}).status_code == 200
    assert seen == [b"[NaN", b"[NaN"]
    too_big = _call(app, "POST", "/raw", content=b"x" * 1025)
    assert too_big.status_code == 413
    assert too_big.json() == {"detail": "request body exceeds the limit of 1024 bytes"}


def test_bearer_auth_leaves_only_the_probes_open() -> None:
    app = request_guard.BearerAuth(_app([]), "tok")
    assert _call(app, "GET", "/health").status_code == 200
    assert _call(app, "GET", "/readyz").status_code == 200
    denied = _call(app, "GET", "/secret")
    assert denied.status_code == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert _call(app, "GET", "/secret", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert _call(app, "GET", "/secret", headers={"Authorization": "Bearer tok"}).status_code == 200
