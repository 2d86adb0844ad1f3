"""The development cluster's control plane is a real Kubernetes control plane.

Each test proves one component does its real job: the apiserver (version,
readiness, CRDs, admission), the controller manager (Deployment →
ReplicaSet → Pods) and the scheduler (binding a GPU Pod to a GPU Node).
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from devcluster import binaries, control_plane, pki, waiting

pytestmark = pytest.mark.cluster


@pytest.fixture
def namespace(kube_api_client: k8s.ApiClient) -> Iterator[str]:
    """A fresh namespace, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = k8s.CoreV1Api(kube_api_client)
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    waiting.wait_for(
        lambda: _has_default_sa(core, name),
        timeout=30,
        what=f"the default ServiceAccount in {name}",
    )
    yield name
    core.delete_namespace(name)


def _has_default_sa(core: k8s.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespaced_service_account("default", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_apiserver_reports_the_pinned_version_and_is_ready(devcluster: control_plane.ClusterState) -> None:
    with devcluster.http_client() as api:
        version = api.get("/version").json()
        readyz = api.get("/readyz")
    assert version["gitVersion"] == binaries.KUBERNETES_VERSION
    assert readyz.status_code == 200
    assert readyz.text == "ok"


def test_crd_becomes_established_and_custom_object_round_trips(kube_api_client: k8s.ApiClient, namespace: str) -> None:
    ext = k8s.ApiextensionsV1Api(kube_api_client)
    group = f"g{uuid.uuid4().hex[:6]}.example.com"
    crd_name = f"widgets.{group}"
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": crd_name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {"size": {"type": "integer"}, "color": {"type": "string"}},
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    try:

        def established() -> bool:
            crd = ext.read_custom_resource_definition(crd_name)
            conditions = crd.status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        waiting.wait_for(established, timeout=30, what=f"CRD {crd_name} Established")
        custom = k8s.CustomObjectsApi(kube_api_client)
        body = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 3, "color": "teal"},
        }
        waiting.wait_for(
            lambda: custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", body),
            timeout=30,
            what="the first create of a Widget (discovery catches up with the new CRD)",
            ignore=(ApiException,),
        )
        fetched = custom.get_namespaced_custom_object(group, "v1", namespace, "widgets", "w1")
        assert fetched["spec"] == {"size": 3, "color": "teal"}
    finally:
        ext.delete_custom_resource_definition(crd_name)


def test_controller_manager_turns_a_deployment_into_a_replicaset_and_pods(
    kube_api_client: k8s.ApiClient, namespace: str
) -> None:
    apps = k8s.AppsV1Api(kube_api_client)
    core = k8s.CoreV1Api(kube_api_client)
    labels = {"app": "two"}
    apps.create_namespaced_deployment(
        namespace,
        k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name="two"),
            spec=k8s.V1DeploymentSpec(
                replicas=2,
                selector=k8s.V1LabelSelector(match_labels=labels),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=labels),
                    spec=k8s.V1PodSpec(
                        # No schedulable node may exist: the Pods may stay Pending.
                        node_selector={"fma.test/nowhere": "true"},
                        containers=[k8s.V1Container(name="c", image="example.invalid/none")],
                    ),
                ),
            ),
        ),
    )
    replica_sets = waiting.wait_for(
        lambda: apps.list_namespaced_replica_set(namespace).items,
        timeout=30,
        what="a ReplicaSet of the Deployment",
    )
    assert len(replica_sets) == 1
    assert replica_sets[0].metadata.owner_references[0].kind == "Deployment"

    def two_pods() -> list[k8s.V1Pod] | None:
        items: list[k8s.V1Pod] = core.list_namespaced_pod(namespace).items
        return items if len(items) == 2 else None

    pods = waiting.wait_for(two_pods, timeout=30, what="2 Pods of the ReplicaSet")
    owners = {p.metadata.owner_references[0].name for p in pods}
    assert owners == {replica_sets[0].metadata.name}


def test_scheduler_binds_a_gpu_pod_to_a_gpu_node(kube_api_client: k8s.ApiClient, namespace: str) -> None:
    core = k8s.CoreV1Api(kube_api_client)
    node_name = f"gpu-node-{uuid.uuid4().hex[:6]}"
    now = datetime.datetime.now(datetime.UTC)
    resources = {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "8"}
    core.create_node(
        k8s.V1Node(
            metadata=k8s.V1ObjectMeta(name=node_name, labels={"kubernetes.io/hostname": node_name}),
        )
    )
    try:
        core.patch_node_status(
            node_name,
            {
                "status": {
                    "capacity": resources,
                    "allocatable": resources,
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "test node",
                            "lastHeartbeatTime": now.isoformat(),
                            "lastTransitionTime": now.isoformat(),
                        }
                    ],
                }
            },
        )
        core.create_namespaced_pod(
            namespace,
            k8s.V1Pod(
                metadata=k8s.V1ObjectMeta(name="wants-gpu"),
                spec=k8s.V1PodSpec(
                    node_selector={"kubernetes.io/hostname": node_name},
                    containers=[
                        k8s.V1Container(
                            name="c",
                            image="example.invalid/none",
                            resources=k8s.V1ResourceRequirements(limits={"nvidia.com/gpu": "1"}),
                        )
                    ],
                ),
            ),
        )
        bound = waiting.wait_for(
            lambda: core.read_namespaced_pod("wants-gpu", namespace).spec.node_name,
            timeout=30,
            what="the scheduler to bind the GPU Pod",
        )
        assert bound == node_name
    finally:
        core.delete_node(node_name)


def test_validating_admission_policy_forbids_changing_a_label(kube_api_client: k8s.ApiClient, namespace: str) -> None:
    admission = k8s.AdmissionregistrationV1Api(kube_api_client)
    core = k8s.CoreV1Api(kube_api_client)
    name = f"frozen-tier-{uuid.uuid4().hex[:6]}"
    message = "the tier label is immutable"
    admission.create_validating_admission_policy(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["UPDATE"],
                            "resources": ["configmaps"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "object.metadata.?labels.tier.orValue('') == "
                        "oldObject.metadata.?labels.tier.orValue('')",
                        "message": message,
                    }
                ],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
            },
        }
    )
    try:
        core.create_namespaced_config_map(
            namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="cm", labels={"tier": "gold"}))
        )
        # Allowed: a change that keeps the label (also proves the policy is loaded
        # once the forbidden change below starts failing).
        core.patch_namespaced_config_map("cm", namespace, {"data": {"k": "v"}})

        def rejected() -> ApiException | None:
            try:
                core.patch_namespaced_config_map("cm", namespace, {"metadata": {"labels": {"tier": "bronze"}}})
            except ApiException as exc:
                return exc
            # The policy was not active yet: undo and try again.
            core.patch_namespaced_config_map("cm", namespace, {"metadata": {"labels": {"tier": "gold"}}})
            return None

        error = waiting.wait_for(rejected, timeout=30, what="the policy to reject a label change")
        assert error.status == 422
        assert message in json.loads(error.body)["message"]
        assert core.read_namespaced_config_map("cm", namespace).metadata.labels["tier"] == "gold"
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


class _Webhook(BaseHTTPRequestHandler):
    """A tiny mutating webhook: adds a label to every Pod it is asked about."""

    calls: list[str]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        review: dict[str, Any] = json.loads(self.rfile.read(length))
        request = review["request"]
        self.calls.append(request["object"]["metadata"].get("generateName", ""))
        patch = [{"op": "add", "path": "/metadata/labels", "value": {"mutated-by": "test-webhook"}}]
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": request["uid"],
                    "allowed": True,
                    "patchType": "JSONPatch",
                    "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_mutating_webhook_over_tls_patches_created_pods(
    kube_api_client: k8s.ApiClient, namespace: str, tmp_path: Any
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    ca = pki.create_ca("webhook-test-ca", now)
    serving = pki.issue_certificate(ca, "webhook", now, ip_addresses=("127.0.0.1",), server=True)
    cert_file, key_file = serving.write(tmp_path, "serving")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_file), str(key_file))
    handler = type("Handler", (_Webhook,), {"calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    admission = k8s.AdmissionregistrationV1Api(kube_api_client)
    core = k8s.CoreV1Api(kube_api_client)
    name = f"label-pods-{uuid.uuid4().hex[:6]}"
    admission.create_mutating_webhook_configuration(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "label.fma.test",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{server.server_address[1]}/mutate",
                        "caBundle": base64.b64encode(ca.cert_pem).decode(),
                    },
                    "rules": [
                        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
                    ],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                }
            ],
        }
    )
    try:
        pod_body = k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(generate_name="mutated-"),
            spec=k8s.V1PodSpec(
                node_selector={"fma.test/nowhere": "true"},
                containers=[k8s.V1Container(name="c", image="example.invalid/none")],
            ),
        )

        def created_mutated() -> k8s.V1Pod | None:
            pod = core.create_namespaced_pod(namespace, pod_body)
            if (pod.metadata.labels or {}).get("mutated-by") == "test-webhook":
                return pod
            return None  # the apiserver had not loaded the configuration yet

        pod = waiting.wait_for(created_mutated, timeout=30, what="a Pod created through the webhook")
        assert pod.metadata.labels["mutated-by"] == "test-webhook"
        assert "mutated-" in handler.calls, "the apiserver never called the webhook"
    finally:
        admission.delete_mutating_webhook_configuration(name)
        server.shutdown()
        server.server_close()
