"""Services in the development cluster work as in a real one: ClusterIP, DNS name, apiserver, webhooks.

The Service proxy (``devcluster.service_proxy``) listens on each Service's
loopback ClusterIP and forwards to a ready Pod of its selector; simnode
mounts its hosts file at ``/etc/hosts`` in every Pod.  These tests drive it
through real simnode Pods (Python HTTP servers) in a namespace of their own.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devcluster import control_plane, pki, waiting
from devcluster.simnode.pytest_fixtures import RunningSimnode

pytestmark = pytest.mark.cluster

_ECHO = """
import http.server, os
name = os.environ["HOSTNAME"].encode()
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8080), Echo).serve_forever()
"""

_CLIENT = """
import json, socket, sys, urllib.request
for url in sys.argv[1:]:
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    print(json.dumps({"url": url, "body": body}), flush=True)
host = sys.argv[1].split("/")[2].split(":")[0]
print(json.dumps({"resolved": socket.gethostbyname(host)}), flush=True)
"""

_IN_CLUSTER = """
import json, os
from kube import client
api = client.connect()
review = api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                     body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
print(json.dumps({"server": api.server, "user": review["status"]["userInfo"]["username"]}), flush=True)
"""

_WEBHOOK = """
import http.server, json, os, ssl
class Review(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        message = "denied by the in-cluster webhook " + os.environ["HOSTNAME"]
        answer = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "response": {"uid": review["request"]["uid"], "allowed": False,
                               "status": {"code": 403, "message": message}}}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/tls/tls.crt", "/tls/tls.key")
server = http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8443), Review)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""

_POD_IP = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[httpx.Client]:
    """The apiserver as the cluster admin (raw JSON)."""
    with devcluster.http_client() as client:
        yield client


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return dict(response.json())


def _server_pod(name: str, app: str, script: str, port: int, **extra: Any) -> dict[str, Any]:
    container = {
        "name": "server",
        "image": "ignored",
        "command": ["python", "-c", textwrap.dedent(script)],
        "env": [_POD_IP],
        "ports": [{"name": "serve", "containerPort": port}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
    }
    container |= extra.pop("container", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [container], **extra},
    }


def _service(name: str, app: str, port: int, target: int | str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": port, "targetPort": target}]},
    }


def _ready(api: httpx.Client, namespace: str, name: str) -> bool:
    response = api.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    if response.status_code != 200:
        return False
    conditions = response.json().get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _start_servers(api: httpx.Client, namespace: str, pods: list[dict[str, Any]]) -> None:
    for body in pods:
        _ok(api.post(f"/api/v1/namespaces/{namespace}/pods", json=body))
    for body in pods:
        name = body["metadata"]["name"]
        waiting.wait_for(functools.partial(_ready, api, namespace, name), timeout=60, what=f"Pod {name} Ready")


def _run_client(
    api: httpx.Client, simnode: RunningSimnode, namespace: str, name: str, script: str, *args: str
) -> list[dict[str, Any]]:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": "ignored", "command": ["python", "-c", textwrap.dedent(script), *args]}
            ],
        },
    }
    _ok(api.post(f"/api/v1/namespaces/{namespace}/pods", json=body))

    def finished() -> str | None:
        phase = _ok(api.get(f"/api/v1/namespaces/{namespace}/pods/{name}")).get("status", {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = waiting.wait_for(finished, timeout=60, what=f"client Pod {name} finished")
    log = simnode.log_of(namespace, name)
    assert phase == "Succeeded", log
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def _cluster_ip(api: httpx.Client, namespace: str, name: str) -> str:
    return str(_ok(api.get(f"/api/v1/namespaces/{namespace}/services/{name}"))["spec"]["clusterIP"])


def test_a_service_reaches_its_pod_by_cluster_ip_and_by_dns_name(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str, devcluster: control_plane.ClusterState
) -> None:
    ns = fresh_namespace
    _ok(api.post(f"/api/v1/namespaces/{ns}/services", json=_service("echo", "echo", 80, "serve")))
    _start_servers(api, ns, [_server_pod("echo-a", "echo", _ECHO, 8080)])
    ip = _cluster_ip(api, ns, "echo")
    assert ip.startswith("127."), ip
    assert devcluster.service_cidr.startswith(".".join(ip.split(".")[:2]) + "."), (ip, devcluster.service_cidr)
    # From the host, by ClusterIP (the proxy listens there as soon as it sees the Service).
    body = waiting.wait_for(
        lambda: httpx.get(f"http://{ip}:80/", timeout=5).text,
        timeout=30,
        what="echo by ClusterIP",
        ignore=(httpx.HTTPError,),
    )
    assert body == "echo-a"
    # From inside a Pod, by every DNS form a real cluster resolves across namespaces.
    urls = [f"http://echo.{ns}.svc.cluster.local/", f"http://echo.{ns}.svc:80/", f"http://{ip}/"]
    results = _run_client(api, simnode, ns, "client", _CLIENT, *urls)
    assert [r["body"] for r in results if "body" in r] == ["echo-a"] * 3
    assert {"resolved": ip} in results


def test_connections_fail_over_when_a_pod_goes(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str
) -> None:
    del simnode
    ns = fresh_namespace
    _ok(api.post(f"/api/v1/namespaces/{ns}/services", json=_service("echo", "echo", 8000, 8080)))
    _start_servers(api, ns, [_server_pod("echo-a", "echo", _ECHO, 8080), _server_pod("echo-b", "echo", _ECHO, 8080)])
    ip = _cluster_ip(api, ns, "echo")
    seen: set[str] = set()

    def both_answer() -> bool:
        seen.add(httpx.get(f"http://{ip}:8000/", timeout=5).text)
        return seen == {"echo-a", "echo-b"}

    waiting.wait_for(both_answer, timeout=30, what="both Pods behind the Service", ignore=(httpx.HTTPError,))
    _ok(api.delete(f"/api/v1/namespaces/{ns}/pods/echo-a"))
    waiting.wait_for(
        lambda: api.get(f"/api/v1/namespaces/{ns}/pods/echo-a").status_code == 404, timeout=60, what="echo-a gone"
    )
    answers = [httpx.get(f"http://{ip}:8000/", timeout=5).text for _ in range(10)]
    assert answers == ["echo-b"] * 10
    _ok(api.delete(f"/api/v1/namespaces/{ns}/pods/echo-b"))
    waiting.wait_for(
        lambda: api.get(f"/api/v1/namespaces/{ns}/pods/echo-b").status_code == 404, timeout=60, what="echo-b gone"
    )
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{ip}:8000/", timeout=5)


def test_a_pod_reaches_the_apiserver_in_cluster_with_its_own_token(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str, devcluster: control_plane.ClusterState
) -> None:
    results = _run_client(api, simnode, fresh_namespace, "in-cluster", _IN_CLUSTER)
    assert results == [
        {
            "server": f"https://{devcluster.kubernetes_service_ip}:443",
            "user": f"system:serviceaccount:{fresh_namespace}:default",
        }
    ]


def test_the_apiserver_calls_a_webhook_by_service_reference(
    api: httpx.Client, simnode: RunningSimnode, fresh_namespace: str
) -> None:
    del simnode
    ns = fresh_namespace
    now = datetime.datetime.now(datetime.UTC)
    ca = pki.create_ca("routing-test-ca", now)
    serving = pki.issue_certificate(ca, "hook", now, dns_names=(f"hook.{ns}.svc",), server=True)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hook-tls"},
        "data": {
            "tls.crt": base64.b64encode(serving.cert_pem).decode(),
            "tls.key": base64.b64encode(serving.key_pem).decode(),
        },
    }
    _ok(api.post(f"/api/v1/namespaces/{ns}/secrets", json=secret))
    _ok(api.post(f"/api/v1/namespaces/{ns}/services", json=_service("hook", "hook", 443, "serve")))
    pod = _server_pod(
        "hook-0",
        "hook",
        _WEBHOOK,
        8443,
        container={"volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": True}]},
        volumes=[{"name": "tls", "secret": {"secretName": "hook-tls"}}],
    )
    _start_servers(api, ns, [pod])
    name = f"routing-{uuid.uuid4().hex[:8]}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "deny.routing.test",
                "clientConfig": {
                    "service": {"namespace": ns, "name": "hook", "port": 443, "path": "/validate"},
                    "caBundle": base64.b64encode(ca.cert_pem).decode(),
                },
                "rules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "objectSelector": {"matchLabels": {"routing-test": "deny"}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }
        ],
    }
    _ok(api.post("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json=config))
    try:
        labelled = {"metadata": {"generateName": "cm-", "labels": {"routing-test": "deny"}}}

        def denied_by_hook() -> str | None:
            response = api.post(f"/api/v1/namespaces/{ns}/configmaps", json=labelled)
            message = str(response.json().get("message", ""))
            return message if response.status_code == 403 and "in-cluster webhook" in message else None

        message = waiting.wait_for(denied_by_hook, timeout=30, what="the webhook's denial through its Service")
        assert message is not None
        assert "denied by the in-cluster webhook hook-0" in message
        # Objects the webhook does not select are not sent to it.
        _ok(api.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"generateName": "cm-"}}))
    finally:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}")
