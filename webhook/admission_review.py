"""AdmissionReview v1 on the wire: reading requests, writing responses.

Requests are validated with pydantic models that allow unknown fields (the
apiserver adds fields over time); the admitted object stays a raw dict.
Bodies are parsed with ``crds.strict_json``: NaN, Infinity, lone surrogates
and nesting deeper than 200 levels are malformed requests, answered with a
denial that says so (a 200,000-deep body once surfaced as "internal
error").  Responses always echo the request's ``uid`` — also for bodies that are
too large or do not parse, where the uid is recovered from the raw bytes
when possible — because the apiserver discards an answer without it.

Pure; no I/O.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Any, Literal

import pydantic

from crds import errors as crds_errors
from crds import strict_json, validation_paths
from webhook import errors, json_patch

__all__ = [
    "API_VERSION",
    "AdmissionRequest",
    "AdmissionReview",
    "GroupVersionKind",
    "find_uid",
    "parse",
    "response",
]

API_VERSION = "admission.k8s.io/v1"
"""The only AdmissionReview version served."""

_UID = re.compile(rb'"uid"\s*:\s*"([^"\\]{1,128})"')
_UID_SCAN_BYTES = 4096


class _Foreign(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow", populate_by_name=True)


class GroupVersionKind(_Foreign):
    """``request.kind``."""

    group: str = ""
    version: str = ""
    kind: str = ""


class AdmissionRequest(_Foreign):
    """``request`` of an AdmissionReview."""

    uid: str = pydantic.Field(min_length=1)
    kind: GroupVersionKind = pydantic.Field(default_factory=GroupVersionKind)
    operation: str = ""
    namespace: str = ""
    name: str = ""
    object: dict[str, Any] | None = None
    dry_run: bool = pydantic.Field(default=False, alias="dryRun")


class AdmissionReview(_Foreign):
    """An AdmissionReview v1 request body."""

    api_version: Literal["admission.k8s.io/v1"] = pydantic.Field(alias="apiVersion")
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


def find_uid(body: bytes) -> str:
    """Best effort: the first ``"uid"`` near the start of a body that may not parse ('' if none).

    The apiserver writes ``request.uid`` before the object, so the first uid
    in the first few KiB is the request's.
    """
    match = _UID.search(body[:_UID_SCAN_BYTES])
    return match.group(1).decode("utf-8", "replace") if match else ""


def parse(body: bytes) -> AdmissionReview:
    """Parse a request body; raise ``MalformedReview`` with a message naming the bad field."""
    try:
        data = strict_json.loads(body)
    except crds_errors.MalformedJson as exc:
        raise errors.MalformedReview(f"the body is not JSON: {exc}") from exc
    try:
        return AdmissionReview.model_validate(data)
    except pydantic.ValidationError as exc:
        raise errors.MalformedReview("not an AdmissionReview v1: " + validation_paths.summary(exc)) from exc


def response(
    uid: str,
    *,
    allowed: bool,
    patch: Sequence[json_patch.Operation] = (),
    warnings: Sequence[str] = (),
    message: str = "",
    code: int = 400,
) -> dict[str, Any]:
    """The AdmissionReview answer (a dict ready for ``json.dumps``)."""
    answer: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        answer["status"] = {"status": "Failure", "code": code, "reason": "BadRequest", "message": message}
    if patch:
        encoded = json.dumps(list(patch), separators=(",", ":")).encode()
        answer["patchType"] = "JSONPatch"
        answer["patch"] = base64.b64encode(encoded).decode("ascii")
    if warnings:
        answer["warnings"] = list(warnings)
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": answer}
