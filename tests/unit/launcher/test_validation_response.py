"""The 422 answer stays a 422 for bodies that are not UTF-8 (FastAPI's own handler answers 500)."""

from __future__ import annotations

import asyncio

import fastapi
import httpx
import pydantic

from launcher import validation_response


class _Body(pydantic.BaseModel):
    options: str


def _app() -> fastapi.FastAPI:
    app = fastapi.FastAPI()
    validation_response.install(app)

    @app.post("/items")
    async def create(body: _Body) -> dict[str, str]:
        return {"options": body.options}

    return app


def _post(**kwargs: object) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post("/items", **kwargs)  # type: ignore[arg-type]  # httpx's keyword arguments

    return asyncio.run(send())


def test_undecodable_non_json_body_is_a_422_naming_the_body() -> None:
    response = _post(content=b"\x80\xff", headers={"content-type": "text/plain"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"]
    assert error["input"] == "\ufffd\ufffd"


def test_ordinary_validation_errors_keep_fastapis_shape() -> None:
    response = _post(json={"options": 5})
    assert _post(json={"options": "x"}).json() == {"options": "x"}
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "options"]


def test_printable_decodes_nested_bytes_only() -> None:
    value = {"a": [b"ok", bytearray(b"\xff")], "b": 1, "c": ("x", None)}
    assert validation_response.printable(value) == {"a": ["ok", "\ufffd"], "b": 1, "c": ["x", None]}


def test_non_finite_and_surrogate_inputs_are_echoed_encodably() -> None:
    """Issue 15: FastAPI's handler answered 500 when the echoed input was NaN or held a lone surrogate."""
    nan = _post(content=b'{"options": NaN}', headers={"content-type": "application/json"})
    assert nan.status_code == 422
    assert nan.json()["detail"][0]["input"] == "nan"
    surrogate = _post(content=b'{"options": ["\\udc80"]}', headers={"content-type": "application/json"})
    assert surrogate.status_code == 422
    assert surrogate.json()["detail"][0]["input"] == ["\\udc80"]


def test_printable_escapes_what_utf8_json_cannot_hold() -> None:
    value = {"\udc80": [float("inf"), float("-inf"), "ok\ud800"], "n": float("nan")}
    assert validation_response.printable(value) == {"\\udc80": ["inf", "-inf", "ok\\ud800"], "n": "nan"}
