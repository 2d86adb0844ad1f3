"""The webhook against the real apiserver: registered by URL with the generated caBundle.

One webhook server and one MutatingWebhookConfiguration serve the whole
module.  The configuration is scoped twice — a namespaceSelector on this
module's namespace and the template's CEL matchConditions — so that other
tests sharing the session cluster never reach it; it is deleted afterwards.
Pods stay Pending (the FMA scheduler is not running here), which is all
admission needs.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime
import json
import pathlib
import ssl
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from certs import ca_bundle, credential, injection, issuer, reloading_context, renewal, rotation_plan, store
from crds import keys, manifests
from devcluster import control_plane, waiting
from kube import client as kube_client
from kube import errors as kube_errors
from kube import resources
from webhook import app as app_mod
from webhook import cluster_facts, configuration, metrics, requester_agent, server, server_patch, settings

pytestmark = pytest.mark.cluster

DEPLOYMENTS = resources.custom("apps", "v1", "deployments", "Deployment")
POLICY = rotation_plan.Policy(
    identity=issuer.ServingIdentity("fma-webhook", ip_addresses=("127.0.0.1",)), overlap=datetime.timedelta(0)
)


@dataclasses.dataclass
class WebhookEnv:
    api: kube_client.Client
    namespace: str
    mwc_name: str
    cert_dir: pathlib.Path
    settings: settings.Settings
    context: reloading_context.ReloadingContext
    threaded: server.ThreadedServer

    def metrics_text(self) -> str:
        verify = ssl.create_default_context(cafile=str(self.cert_dir / store.BUNDLE))
        with httpx.Client(verify=verify, timeout=5) as client:
            return client.get(f"https://127.0.0.1:{self.threaded.port}/metrics").text

    def requests_total(self) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in self.metrics_text().splitlines()
            if line.startswith("fma_webhook_requests_total{")
        )

    def create_pod(self, pod: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        query = {"dryRun": "All"} if dry_run else None
        created: dict[str, Any] = self.api.request("POST", resources.PODS.path(self.namespace), query=query, body=pod)
        return created


def _install_crds(api: kube_client.Client) -> None:
    for document in manifests.documents():
        with contextlib.suppress(kube_errors.AlreadyExists):
            api.create(resources.CUSTOM_RESOURCE_DEFINITIONS, document)

    def established() -> bool:
        for document in manifests.documents():
            crd = api.get(resources.CUSTOM_RESOURCE_DEFINITIONS, document["metadata"]["name"])
            conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") != "True":
                return False
        return True

    waiting.wait_for(established, timeout=60, what="FMA CRDs established")


def _pod(annotations: dict[str, str] | None, *, name: str | None = None, gpus: str | None = "1") -> dict[str, Any]:
    limits = {"cpu": "1", "memory": "1Gi"} | ({"nvidia.com/gpu": gpus} if gpus else {})
    metadata: dict[str, Any] = {"name": name} if name else {"generateName": "pod-"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [
                {
                    "name": "inference-server",
                    "image": "vllm/vllm-openai",
                    "command": ["vllm", "serve", "m"],
                    "resources": {"limits": limits},
                }
            ]
        },
    }


def _strip_finalizers(api: kube_client.Client, namespace: str) -> int:
    pods, _ = api.list_all(resources.PODS, namespace)
    for pod in pods:
        if pod["metadata"].get("finalizers"):
            with contextlib.suppress(kube_errors.NotFound):
                api.patch(resources.PODS, pod["metadata"]["name"], {"metadata": {"finalizers": None}}, namespace)
    return len(pods)


@pytest.fixture(scope="module")
def webhook_env(
    devcluster: control_plane.ClusterState, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebhookEnv]:
    api = kube_client.connect(str(devcluster.kubeconfig), field_manager="webhook-test")
    _install_crds(api)
    namespace = f"wh-{uuid.uuid4().hex[:8]}"
    api.create(resources.NAMESPACES, {"metadata": {"name": namespace}})
    waiting.wait_for(
        lambda: api.get_or_none(resources.SERVICE_ACCOUNTS, "default", namespace),
        timeout=30,
        what="the default ServiceAccount",
    )
    cert_dir = tmp_path_factory.mktemp("webhook-certs")
    renewal.run(store.FileStore(cert_dir), POLICY, datetime.datetime.now(datetime.UTC))
    webhook_metrics = metrics.Metrics()
    context = reloading_context.ReloadingContext(
        cert_dir / store.TLS_CERT, cert_dir / store.TLS_KEY, on_reload=webhook_metrics.certificate_loaded
    )
    context.start(0.1)
    lookups = cluster_facts.ClusterLookups(kube_client.connect(str(devcluster.kubeconfig)), timeout=1.0)
    lookups.start()
    waiting.wait_for(lambda: lookups.synced, timeout=30, what="the ISC cache to sync")
    configured = settings.Settings(requester_image="fma:test", kubeconfig=str(devcluster.kubeconfig))
    state = server.build_state(configured, lookups, webhook_metrics)
    threaded = server.ThreadedServer.start(app_mod.create_app(state), context.context)
    mwc_name = f"fma-webhook-test-{namespace}"
    document = configuration.render(
        (cert_dir / store.BUNDLE).read_bytes(),
        url=f"https://127.0.0.1:{threaded.port}/mutate",
        name=mwc_name,
        namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
    )
    api.create(resources.MUTATING_WEBHOOK_CONFIGURATIONS, document)
    env = WebhookEnv(api, namespace, mwc_name, cert_dir, configured, context, threaded)
    try:
        probe = _pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "probe"})
        waiting.wait_for(
            lambda: keys.CONVERTED_ANNOTATION in env.create_pod(probe, dry_run=True)["metadata"].get("annotations", {}),
            timeout=30,
            what="the apiserver to call the webhook",
        )
        yield env
    finally:
        api.delete(resources.MUTATING_WEBHOOK_CONFIGURATIONS, mwc_name)
        for deployment in api.list_all(DEPLOYMENTS, namespace)[0]:
            api.delete(DEPLOYMENTS, deployment["metadata"]["name"], namespace, propagation_policy="Background")
        _strip_finalizers(api, namespace)
        api.delete(resources.NAMESPACES, namespace)

        def gone() -> bool:
            _strip_finalizers(api, namespace)
            return api.get_or_none(resources.NAMESPACES, namespace) is None

        waiting.wait_for(gone, timeout=90, interval=0.5, what=f"namespace {namespace} deleted")
        threaded.stop()
        context.stop()
        lookups.stop()
        api.close()


def _deployment(
    name: str, annotations: dict[str, str], labels: dict[str, str], container: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, **labels}, "annotations": annotations},
                "spec": {"containers": [container], "volumes": [{"name": "cache", "emptyDir": {}}]},
            },
        },
    }


def _pods_of(env: WebhookEnv, app: str, count: int) -> list[dict[str, Any]]:
    def listed() -> list[dict[str, Any]] | None:
        pods, _ = env.api.list_all(resources.PODS, env.namespace, label_selector=f"app={app}")
        return pods if len(pods) == count else None

    found = waiting.wait_for(listed, timeout=60, what=f"{count} Pods of {app}")
    assert found is not None
    return found


def _agent(env: WebhookEnv, pod: dict[str, Any] | None = None) -> dict[str, Any]:
    """The agent container; with ``pod``, plus the token mount that the apiserver's ServiceAccount
    admission adds when it is re-invoked after our change (reinvocationPolicy IfNeeded)."""
    options = server.mutation_options(env.settings)
    gpus = {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
    agent = requester_agent.container(options.agent, 8081, gpus)
    if pod is not None:
        token = next(v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
        mount = {"name": token, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        agent["volumeMounts"] = [mount]
    return agent


SERVER_CONTAINER = {
    "name": "inference-server",
    "image": "vllm/vllm-openai:v0.10.0",
    "command": ["vllm", "serve"],
    "args": ["meta-llama/Llama-3.1-8B"],
    "ports": [{"containerPort": 8000, "name": "http"}],
    "volumeMounts": [{"name": "cache", "mountPath": "/root/.cache"}],
    "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
    "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "4", "memory": "16Gi"}},
}


def test_launcher_mode_deployment_yields_requesters(webhook_env: WebhookEnv) -> None:
    env = webhook_env
    env.api.create(
        resources.INFERENCE_SERVER_CONFIGS,
        {
            "apiVersion": "fma.llm-d.ai/v1alpha1",
            "kind": "InferenceServerConfig",
            "metadata": {"name": "llama"},
            "spec": {"modelServerConfig": {"port": 8005, "options": "--model m"}, "launcherConfigName": "lc"},
        },
        env.namespace,
    )
    app = "launcher-mode"
    env.api.create(
        DEPLOYMENTS,
        _deployment(app, {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "llama"}, {}, SERVER_CONTAINER),
        env.namespace,
    )
    for pod in _pods_of(env, app, 2):
        assert pod["metadata"]["annotations"] == {
            keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "llama",
            keys.ADMIN_PORT_ANNOTATION: "8081",
            keys.CONVERTED_ANNOTATION: "v1",
        }
        assert pod["metadata"]["finalizers"] == [keys.REQUESTER_FINALIZER]
        assert pod["spec"]["schedulerName"] == "fma-scheduler"
        assert pod["spec"]["containers"] == [_agent(env, pod)]
        assert pod["spec"]["volumes"][0] == {"name": "cache", "emptyDir": {}}


def test_direct_mode_deployment_yields_requesters_with_a_derived_patch(webhook_env: WebhookEnv) -> None:
    env = webhook_env
    app = "direct-mode"
    annotations = {keys.ACTUATION_ANNOTATION: "direct", keys.PROVIDER_LABELS_ANNOTATION: "inference-pool"}
    created = env.api.create(
        DEPLOYMENTS, _deployment(app, annotations, {"inference-pool": "pool-a"}, SERVER_CONTAINER), env.namespace
    )
    template = created["spec"]["template"]  # as the apiserver defaulted it
    server = copy.deepcopy(template["spec"]["containers"][0])
    resources_ = server["resources"]
    resources_["requests"] = {**resources_["limits"], **resources_.get("requests", {})}  # Pod defaulting
    for pod in _pods_of(env, app, 2):
        labels = pod["metadata"]["labels"]
        assert "inference-pool" not in labels
        assert labels["app"] == app
        expected_patch = server_patch.derive(
            server,
            _agent(env),
            template["spec"]["volumes"],
            drop_labels=sorted(labels),
            provider_labels={"inference-pool": "pool-a"},
            scheduler_name=("default-scheduler",),
        )
        assert pod["metadata"]["annotations"] == {
            **annotations,
            keys.SERVER_PATCH_ANNOTATION: server_patch.encode(expected_patch),
            keys.ADMIN_PORT_ANNOTATION: "8081",
            keys.CONVERTED_ANNOTATION: "v1",
        }
        patch = json.loads(pod["metadata"]["annotations"][keys.SERVER_PATCH_ANNOTATION])
        container = patch["spec"]["containers"][0]
        assert container["args"] == ["meta-llama/Llama-3.1-8B", "--enable-sleep-mode"]
        assert {"name": "VLLM_SERVER_DEV_MODE", "value": "1"} in container["env"]
        assert "nvidia.com/gpu" not in container["resources"]["limits"]
        assert patch["spec"]["volumes"] == [{"name": "cache", "emptyDir": {}}]
        assert pod["metadata"]["finalizers"] == [keys.REQUESTER_FINALIZER]
        assert pod["spec"]["containers"] == [_agent(env, pod)]


def test_unannotated_pod_is_untouched_and_never_reaches_the_webhook(webhook_env: WebhookEnv) -> None:
    env = webhook_env
    before = env.requests_total()
    plain = _pod({"example.com/note": "not fma"}, name="plain")
    created = env.create_pod(plain)
    assert created["metadata"]["annotations"] == {"example.com/note": "not fma"}
    assert "finalizers" not in created["metadata"]
    assert created["spec"]["schedulerName"] == "default-scheduler"
    assert created["spec"]["containers"][0]["command"] == ["vllm", "serve", "m"]
    assert env.requests_total() == before
    env.create_pod(_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "llama"}), dry_run=True)
    assert env.requests_total() == before + 1, "the counter does count requests that reach the webhook"


@pytest.mark.parametrize(
    ("annotations", "gpus", "container", "message"),
    [
        pytest.param(
            {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "llama"},
            "1",
            "server",
            "needs a container named 'inference-server'",
            id="no-container",
        ),
        pytest.param(
            {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "llama", keys.SERVER_PATCH_ANNOTATION: "{}"},
            "1",
            "inference-server",
            "exclude each other",
            id="both-modes",
        ),
        pytest.param(
            {keys.SERVER_PATCH_ANNOTATION: "spec: [x"},
            "1",
            "inference-server",
            "not valid YAML or JSON",
            id="bad-patch",
        ),
        pytest.param(
            {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "llama"},
            None,
            "inference-server",
            "must request 'nvidia.com/gpu'",
            id="no-gpu",
        ),
        pytest.param(
            {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "llama"},
            "0",
            "inference-server",
            "positive whole number",
            id="zero-gpu",
        ),
        pytest.param(
            {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "Not_DNS"},
            "1",
            "inference-server",
            "not a valid InferenceServerConfig name",
            id="bad-isc",
        ),
    ],
)
def test_invalid_pods_are_denied_with_the_message(
    webhook_env: WebhookEnv, annotations, gpus, container, message
) -> None:
    pod = _pod(annotations, gpus=gpus)
    pod["spec"]["containers"][0]["name"] = container
    with pytest.raises(kube_errors.APIError) as denied:
        webhook_env.create_pod(pod)
    assert "denied the request" in denied.value.message
    assert message in denied.value.message


def test_missing_isc_is_a_warning(webhook_env: WebhookEnv, devcluster: control_plane.ClusterState) -> None:
    with devcluster.http_client() as http:
        response = http.post(
            f"/api/v1/namespaces/{webhook_env.namespace}/pods",
            params={"dryRun": "All"},
            json=_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "not-yet"}),
        )
    assert response.status_code == 201
    assert "InferenceServerConfig 'not-yet' does not exist (yet)" in response.headers.get("warning", "")


def test_certificate_rotation_while_pods_are_created_loses_no_request(webhook_env: WebhookEnv) -> None:
    env = webhook_env
    target = injection.Target("mutatingwebhookconfiguration", env.mwc_name)
    files = store.FileStore(env.cert_dir)
    created: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def create_in_a_loop() -> None:
        while not stop.is_set():
            try:
                pod = env.create_pod(_pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "llama"}))
            except kube_errors.KubeError as exc:
                failures.append(str(exc))
                continue
            if pod["metadata"]["annotations"].get(keys.CONVERTED_ANNOTATION) != "v1":
                failures.append(f"{pod['metadata']['name']} was not converted")
            created.append(pod["metadata"]["name"])

    def more_created(count: int) -> None:
        goal = len(created) + count
        waiting.wait_for(lambda: len(created) >= goal or failures, timeout=60, what=f"{count} more Pods")

    first_ca = renewal.read_state(files.load()).ca
    assert first_ca is not None
    reloads_before = env.context.reloads
    loop = threading.Thread(target=create_in_a_loop, daemon=True)
    loop.start()
    try:
        more_created(10)
        staged = renewal.run(
            files, POLICY, datetime.datetime.now(datetime.UTC), api=env.api, targets=[target], force_ca=True
        )
        assert staged.plan.action is rotation_plan.Action.STAGE
        assert staged.injected == (target,)
        more_created(20)
        promoted = renewal.run(files, POLICY, datetime.datetime.now(datetime.UTC), api=env.api, targets=[target])
        assert promoted.plan.action is rotation_plan.Action.PROMOTE
        waiting.wait_for(lambda: env.context.reloads > reloads_before, timeout=30, what="the server to reload")
        more_created(20)
        pruned = renewal.run(files, POLICY, datetime.datetime.now(datetime.UTC), api=env.api, targets=[target])
        assert pruned.plan.drop_from_bundle == {first_ca.fingerprint}
        more_created(20)
    finally:
        stop.set()
        loop.join(30)
    assert failures == []
    assert len(created) >= 70
    new_ca = promoted.state.ca
    assert new_ca is not None
    mwc = env.api.get(resources.MUTATING_WEBHOOK_CONFIGURATIONS, env.mwc_name)
    bundle = base64.b64decode(mwc["webhooks"][0]["clientConfig"]["caBundle"])
    assert ca_bundle.fingerprints(bundle) == {new_ca.fingerprint}
    served = reloading_context.ReloadingContext(env.cert_dir / store.TLS_CERT, env.cert_dir / store.TLS_KEY)
    assert served.not_after is not None
    serving = renewal.read_state(files.load()).serving
    assert serving is not None
    assert credential.signed_by(serving.certificate, new_ca.certificate)
