"""AdmissionReview parsing and answers: uid always echoed, messages name the bad field."""

from __future__ import annotations

import base64
import json

import pytest

from webhook import admission_review, errors


def test_parse_reads_the_request_and_keeps_unknown_fields() -> None:
    body = json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "operation": "CREATE",
                "namespace": "ns",
                "object": {"metadata": {}},
                "userInfo": {"username": "x"},
            },
        }
    ).encode()
    review = admission_review.parse(body)
    assert review.request.uid == "u1"
    assert review.request.kind.kind == "Pod"
    assert review.request.namespace == "ns"
    assert review.request.object == {"metadata": {}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{", "not JSON", id="not-json"),
        pytest.param(b"[" * 200_000 + b"]" * 200_000, "nested deeper than 201 levels", id="200000-deep"),
        pytest.param(b'{"apiVersion": NaN}', "NaN and Infinity", id="nan"),
        pytest.param(b'{"apiVersion": [Infinity]}', "NaN and Infinity", id="infinity"),
        pytest.param(b'{"apiVersion": 1e999}', "too large for a double", id="overflow"),
        pytest.param(b'{"apiVersion": "\\udc80"}', "surrogate", id="lone-surrogate"),
        pytest.param(b'{"apiVersion": "\xed\xb2\x80"}', "invalid unicode", id="raw-surrogate-bytes"),
        pytest.param(
            b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "apiVersion", id="v1beta1"
        ),
        pytest.param(
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}}',
            "request.uid",
            id="empty-uid",
        ),
    ],
)
def test_parse_rejects_with_a_message(body: bytes, message: str) -> None:
    with pytest.raises(errors.MalformedReview, match=message):
        admission_review.parse(body)


@pytest.mark.parametrize(
    ("body", "uid"),
    [
        pytest.param(b'{"request":{"uid":"abc-1","object":{"metadata":{"uid":"x"}}}', "abc-1", id="truncated"),
        pytest.param(b"garbage", "", id="no-uid"),
        pytest.param(b'{"request": {"uid" : "sp aced"', "sp aced", id="spaces"),
    ],
)
def test_find_uid(body: bytes, uid: str) -> None:
    assert admission_review.find_uid(body) == uid


def test_response_shapes() -> None:
    allowed = admission_review.response(
        "u", allowed=True, patch=[{"op": "add", "path": "/a", "value": 1}], warnings=["w"]
    )
    assert allowed["apiVersion"] == "admission.k8s.io/v1"
    answer = allowed["response"]
    assert answer["uid"] == "u"
    assert answer["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(answer["patch"])) == [{"op": "add", "path": "/a", "value": 1}]
    assert answer["warnings"] == ["w"]
    denied = admission_review.response("u", allowed=False, message="no")["response"]
    assert denied == {
        "uid": "u",
        "allowed": False,
        "status": {"status": "Failure", "code": 400, "reason": "BadRequest", "message": "no"},
    }
