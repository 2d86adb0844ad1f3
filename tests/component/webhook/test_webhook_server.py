"""The webhook as a real HTTPS server on loopback: answers, caps, probes, metrics and certificate reload."""

from __future__ import annotations

import base64
import datetime
import json
import pathlib
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography import x509

from certs import credential, issuer, reloading_context, renewal, rotation_plan, store
from crds import keys
from devcluster import waiting
from webhook import app as app_mod
from webhook import cluster_facts, metrics, server, settings

pytestmark = pytest.mark.component

POLICY = rotation_plan.Policy(identity=issuer.ServingIdentity("fma-webhook", ip_addresses=("127.0.0.1",)))


class Running:
    def __init__(self, directory: pathlib.Path, threaded: server.ThreadedServer, context, webhook_metrics) -> None:
        self.directory = directory
        self.threaded = threaded
        self.context = context
        self.metrics = webhook_metrics
        self.url = f"https://127.0.0.1:{threaded.port}"

    def client(self) -> httpx.Client:
        verify = ssl.create_default_context(cafile=str(self.directory / store.BUNDLE))
        return httpx.Client(base_url=self.url, verify=verify, timeout=5.0)


@pytest.fixture
def running(tmp_path: pathlib.Path) -> Iterator[Running]:
    files = store.FileStore(tmp_path)
    renewal.run(files, POLICY, datetime.datetime.now(datetime.UTC))
    webhook_metrics = metrics.Metrics()
    context = reloading_context.ReloadingContext(
        tmp_path / store.TLS_CERT, tmp_path / store.TLS_KEY, on_reload=webhook_metrics.certificate_loaded
    )
    context.start(0.05)
    configured = settings.Settings(requester_image="img", max_body_bytes=64 * 1024, lookups=False)
    state = server.build_state(configured, cluster_facts.NoLookups(), webhook_metrics)
    threaded = server.ThreadedServer.start(app_mod.create_app(state), context.context)
    try:
        yield Running(tmp_path, threaded, context, webhook_metrics)
    finally:
        threaded.stop()
        context.stop()


def _review(pod: dict[str, Any], uid: str = "uid-1", operation: str = "CREATE") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": operation,
            "namespace": "ns",
            "object": pod,
        },
    }


def _pod(annotations: dict[str, str], gpus: str | None = "1") -> dict[str, Any]:
    resources = {"limits": {"nvidia.com/gpu": gpus}} if gpus else {}
    return {
        "metadata": {"generateName": "p-", "annotations": annotations},
        "spec": {"containers": [{"name": "inference-server", "image": "vllm", "resources": resources}]},
    }


def _requests_total(client: httpx.Client) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("fma_webhook_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            totals[labels] = float(value)
    return totals


def test_patch_uid_and_metrics(running: Running) -> None:
    with running.client() as client:
        answer = client.post("/mutate", json=_review(_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc"}))).json()
        response = answer["response"]
        assert answer["kind"] == "AdmissionReview"
        assert response["uid"] == "uid-1"
        assert response["allowed"] is True
        ops = json.loads(base64.b64decode(response["patch"]))
        assert {"op": "add", "path": "/spec/schedulerName", "value": "fma-scheduler"} in ops
        denied = client.post(
            "/mutate", json=_review(_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc"}, None), "u2")
        )
        assert denied.status_code == 200
        assert denied.json()["response"]["uid"] == "u2"
        assert "nvidia.com/gpu" in denied.json()["response"]["status"]["message"]
        update = client.post("/mutate", json=_review(_pod({}), "u3", operation="UPDATE")).json()["response"]
        assert update == {"uid": "u3", "allowed": True}
        totals = _requests_total(client)
    assert totals == {
        'fma_webhook_requests_total{mode="launcher",outcome="patched"}': 1.0,
        'fma_webhook_requests_total{mode="launcher",outcome="denied"}': 1.0,
        'fma_webhook_requests_total{mode="none",outcome="unchanged"}': 1.0,
    }


def test_malformed_and_oversized_bodies_get_a_review_with_the_uid(running: Running) -> None:
    with running.client() as client:
        broken = client.post("/mutate", content=b'{"apiVersion":"admission.k8s.io/v1","request":{"uid":"abc","object":')
        assert broken.status_code == 200
        assert broken.json()["response"]["uid"] == "abc"
        assert broken.json()["response"]["allowed"] is False
        big_pod = _pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc", "x": "y" * (128 * 1024)})
        big = client.post("/mutate", json=_review(big_pod, "big-1")).json()["response"]
        assert big["uid"] == "big-1"
        assert big["allowed"] is False
        assert "exceeds 65536 bytes" in big["status"]["message"]
        assert 'outcome="malformed"} 2.0' in client.get("/metrics").text


def test_health_and_readiness(running: Running) -> None:
    with running.client() as client:
        assert client.get("/healthz").text == "ok\n"
        assert client.get("/readyz").status_code == 200
        assert client.post("/healthz").status_code == 405


def _served_certificate(port: int, cafile: pathlib.Path) -> x509.Certificate:
    verify = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        verify.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_renewed_certificate_is_served_without_restart(running: Running) -> None:
    files = store.FileStore(running.directory)
    before = _served_certificate(running.threaded.port, running.directory / store.BUNDLE)
    now = datetime.datetime.now(datetime.UTC)
    renewal.run(files, POLICY, now, force_ca=True)  # stage the next CA (bundle has both)
    promoted = renewal.run(files, POLICY, now)  # promote: the serving cert is re-issued by the new CA
    assert promoted.state.serving is not None
    new_fingerprint = promoted.state.serving.fingerprint

    def serving_new() -> bool:
        served = _served_certificate(running.threaded.port, running.directory / store.BUNDLE)
        return credential.fingerprint(served) == new_fingerprint

    waiting.wait_for(serving_new, timeout=10, what="the server to present the renewed certificate")
    assert credential.fingerprint(before) != new_fingerprint
    with running.client() as client:
        assert "fma_webhook_certificate_reloads_total 1.0" in client.get("/metrics").text


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param(
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"deep-1","object":'
            + b"[" * 30_000
            + b"]" * 30_000
            + b"}}",
            "nested deeper than 201 levels",
            id="deep-nesting",
        ),
        pytest.param(
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"nan-1","object":'
            b'{"spec": {"x": NaN}}}}',
            "NaN and Infinity are not JSON numbers",
            id="nan",
        ),
        pytest.param(
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"sur-1","object":'
            b'{"metadata": {"name": "\\udc80"}}}}',
            "lone UTF-16 surrogate",
            id="lone-surrogate",
        ),
    ],
)
def test_hostile_json_is_denied_as_malformed_not_internal_error(running: Running, body: bytes, named: str) -> None:
    """Issue 15: a 200,000-deep body was answered "internal error" (a RecursionError)."""
    with running.client() as client:
        answer = client.post("/mutate", content=body)
        assert answer.status_code == 200
        response = answer.json()["response"]
        assert response["uid"] == body.split(b'"uid":"')[1].split(b'"')[0].decode()
        assert response["allowed"] is False
        assert response["status"]["code"] == 400
        assert named in response["status"]["message"]
        assert "internal error" not in response["status"]["message"]
        assert 'outcome="malformed"} 1.0' in client.get("/metrics").text
