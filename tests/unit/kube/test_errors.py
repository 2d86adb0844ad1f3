"""Status bodies map to the right error class, keeping reason and message."""

from __future__ import annotations

import json

import pytest

from kube import errors


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(
            404, {"code": 404, "reason": "NotFound", "message": 'pods "x" not found'}, errors.NotFound, id="404"
        ),
        pytest.param(
            409, {"code": 409, "reason": "AlreadyExists", "message": "exists"}, errors.AlreadyExists, id="exists"
        ),
        pytest.param(409, {"code": 409, "reason": "Conflict", "message": "modified"}, errors.Conflict, id="conflict"),
        pytest.param(410, {"code": 410, "reason": "Expired", "message": "too old"}, errors.Gone, id="gone"),
        pytest.param(422, {"code": 422, "reason": "Invalid", "message": "bad"}, errors.Invalid, id="invalid"),
        pytest.param(403, {"code": 403, "reason": "Forbidden", "message": "no"}, errors.Forbidden, id="forbidden"),
        pytest.param(429, {"code": 429, "reason": "TooManyRequests"}, errors.TooManyRequests, id="throttled"),
        pytest.param(503, b"upstream down", errors.ServerError, id="5xx-plain-text"),
        pytest.param(418, None, errors.APIError, id="unknown"),
    ],
)
def test_from_status_picks_the_class(status: int, body: object, expected: type[errors.APIError]) -> None:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    error = errors.from_status(status, raw)  # type: ignore[arg-type]  # the parametrized bodies cover every accepted type
    assert type(error) is expected
    assert error.status == status


def test_message_and_reason_are_kept() -> None:
    error = errors.from_status(422, {"code": 422, "reason": "Invalid", "message": "spec.port: Invalid value: 0"})
    assert error.reason == "Invalid"
    assert error.message == "spec.port: Invalid value: 0"
    assert "spec.port" in str(error)
    assert isinstance(error, errors.KubeError)


def test_status_code_in_the_body_wins_for_watch_errors() -> None:
    assert isinstance(errors.from_status(200, {"code": 410, "reason": "Expired", "message": "m"}), errors.Gone)
