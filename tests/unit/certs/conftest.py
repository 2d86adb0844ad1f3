"""Fixtures of the certs unit tests: a fixed clock, a policy and a fake API for Secrets and injection."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from certs import issuer, rotation_plan
from kube import errors as kube_errors


@pytest.fixture
def now() -> datetime.datetime:
    """A fixed 'now'."""
    return datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def policy() -> rotation_plan.Policy:
    """Short validities so that tests move through a rotation with small time steps."""
    return rotation_plan.Policy(
        identity=issuer.ServingIdentity("fma-webhook", ("fma-webhook.fma.svc",), ("127.0.0.1",)),
        ca_validity=datetime.timedelta(days=300),
        serving_validity=datetime.timedelta(days=30),
        renew_fraction=1 / 3,
        overlap=datetime.timedelta(hours=1),
    )


class FakeApi:
    """Enough of ``kube.Client`` for Secrets and webhook configurations: get, create, replace with versions."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.version = 0
        self.writes: list[str] = []
        self.conflicts_to_inject = 0

    def put(self, plural: str, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(obj)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.objects[(plural, namespace, stored["metadata"]["name"])] = stored
        return copy.deepcopy(stored)

    def get(self, resource: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = self.objects.get((resource.plural, namespace, name))
        if found is None:
            raise kube_errors.NotFound(404, "NotFound", f"{resource.plural} {name!r} not found")
        return copy.deepcopy(found)

    def get_or_none(self, resource: Any, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.get(resource, name, namespace)
        except kube_errors.NotFound:
            return None

    def create(self, resource: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        key = (resource.plural, namespace, body["metadata"]["name"])
        if key in self.objects:
            raise kube_errors.AlreadyExists(409, "AlreadyExists", "exists")
        self.writes.append(f"create {resource.plural}/{body['metadata']['name']}")
        return self.put(resource.plural, namespace, body)

    def replace(self, resource: Any, body: dict[str, Any], *, subresource: str | None = None) -> dict[str, Any]:
        namespace = body["metadata"].get("namespace") if resource.namespaced else None
        key = (resource.plural, namespace, body["metadata"]["name"])
        current = self.objects.get(key)
        if current is None:
            raise kube_errors.NotFound(404, "NotFound", "gone")
        if (
            self.conflicts_to_inject > 0
            or body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]
        ):
            self.conflicts_to_inject = max(0, self.conflicts_to_inject - 1)
            raise kube_errors.Conflict(409, "Conflict", "the object has been modified")
        self.writes.append(f"replace {resource.plural}/{body['metadata']['name']}")
        return self.put(resource.plural, namespace, body)

    def close(self) -> None:
        return None


@pytest.fixture
def fake_api() -> FakeApi:
    """An in-memory API."""
    return FakeApi()
