"""The installed chart over its life: upgrade, certificate rotation, killed Pods, uninstall.

All on the session's shared release (``installed_chart``); the uninstall
test is marked ``uninstalls`` and runs after every other test.  Pods created
in loops here are annotated (so the webhook converts them) but pinned to a
node label no node has, so they stay Pending and run nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import kube
from devcluster import helm_release, samples, waiting
from kube import errors as kube_errors
from kube import resources

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

ISC_KEY = "dual-pods.llm-d.ai/inference-server-config"
CONVERTED_KEY = "dual-pods.llm-d.ai/converted"
DUAL_LABEL = "dual-pods.llm-d.ai/dual"
WEBHOOK_NAME = "requesters.fma.llm-d.ai"
JOBS = resources.Resource("batch", "v1", "jobs", "Job")
CRON_JOBS = resources.Resource("batch", "v1", "cronjobs", "CronJob")
# A create may wait for one webhook call (webhook.timeoutSeconds, 5 s) and the apiserver's own work.
CREATE_LIMIT_S = 15.0


def _pending_pod(name: str) -> dict[str, Any]:
    """An annotated Pod the webhook converts and no node can take."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"loop": "lifecycle"}, "annotations": {ISC_KEY: "not-there"}},
        "spec": {
            "nodeSelector": {"fma-test/no-such-node": "true"},
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "inference-server",
                    "image": "vllm/vllm-openai:v0.11.0",
                    "command": ["vllm", "serve", "tiny-llm"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        },
    }


@dataclasses.dataclass
class CreateLoop:
    """Creates (and deletes) converted Pods one after another in a thread, recording every outcome."""

    api: kube.Client
    converted: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    slowest_s: float = 0.0
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def record(self, node: pytest.Item) -> None:
        """Put the loop's counts into the test's report (user properties, e.g. in JUnit XML)."""
        node.user_properties.append(("creates_converted", self.converted))
        node.user_properties.append(("creates_failed", len(self.failures)))
        node.user_properties.append(("slowest_create_s", round(self.slowest_s, 3)))

    def run(self) -> None:
        while not self.stop.is_set():
            name = f"loop-{uuid.uuid4().hex[:8]}"
            started = time.monotonic()
            try:
                created = self.api.create(resources.PODS, _pending_pod(name), helm_release.NAMESPACE)
            except kube_errors.KubeError as exc:
                self.failures.append(str(exc))
            else:
                if (created["metadata"].get("annotations") or {}).get(CONVERTED_KEY) == "v1":
                    self.converted += 1
                else:
                    self.failures.append(f"Pod {name} admitted without conversion")
                with contextlib.suppress(kube_errors.KubeError):
                    self.api.delete(resources.PODS, name, helm_release.NAMESPACE)
            finally:
                self.slowest_s = max(self.slowest_s, time.monotonic() - started)
            self.stop.wait(0.2)


@pytest.fixture
def create_loop(installed_chart: helm_release.InstalledChart) -> Iterator[CreateLoop]:
    """A running ``CreateLoop``; stopped, and its Pods removed, after the test."""
    loop = CreateLoop(installed_chart.api)
    thread = threading.Thread(target=loop.run, name="create-loop", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the create loop did not stop within 60 s"
        for pod in installed_chart.pods("loop=lifecycle"):
            # A Pod listed here may finish its own deletion (the loop's, or its finalizer lifted) before ours.
            with contextlib.suppress(kube_errors.NotFound):
                installed_chart.api.delete(resources.PODS, pod["metadata"]["name"], helm_release.NAMESPACE)
        waiting.wait_for(
            lambda: not installed_chart.pods("loop=lifecycle"), timeout=60, what="the create loop's Pods gone"
        )


def _bound(installed_chart: helm_release.InstalledChart, app: str) -> dict[str, Any] | None:
    pods = [p for p in installed_chart.pods(f"app={app}") if not p["metadata"].get("deletionTimestamp")]
    if len(pods) == 1 and helm_release.pod_ready(pods[0]) and pods[0]["metadata"]["labels"].get(DUAL_LABEL):
        return pods[0]
    return None


def _start_model(installed_chart: helm_release.InstalledChart, app: str, isc: str) -> dict[str, Any]:
    installed_chart.api.create(
        helm_release.DEPLOYMENTS, samples.deployment(app, samples.vllm_template(isc, app)), helm_release.NAMESPACE
    )
    found = waiting.wait_for(
        lambda: _bound(installed_chart, app), timeout=180, what=f"Deployment {app}'s requester bound and Ready"
    )
    assert found is not None
    return found


class PodWatch:
    """Watches one Pod in a thread and records every state in which it was not bound to ``provider`` and Ready."""

    def __init__(self, api: kube.Client, pod: dict[str, Any]) -> None:
        self.api = api
        self.name = pod["metadata"]["name"]
        self.provider = pod["metadata"]["labels"][DUAL_LABEL]
        self.version = pod["metadata"]["resourceVersion"]
        self.events = 0
        self.lapses: list[str] = []
        self._abort: Callable[[], None] | None = None
        self.opened = threading.Event()
        self.error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)
        self._thread.start()

    def _on_open(self, abort: Callable[[], None]) -> None:
        self._abort = abort
        self.opened.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                for kind, obj in self.api.watch(
                    resources.PODS,
                    helm_release.NAMESPACE,
                    resource_version=self.version,
                    field_selector=f"metadata.name={self.name}",
                    timeout_seconds=60,
                    on_open=self._on_open,
                ):
                    if kind == "BOOKMARK":
                        self.version = obj["metadata"]["resourceVersion"]
                        continue
                    self.events += 1
                    self.version = obj["metadata"]["resourceVersion"]
                    bound_to = (obj["metadata"].get("labels") or {}).get(DUAL_LABEL)
                    if kind == "DELETED" or obj["metadata"].get("deletionTimestamp"):
                        self.lapses.append(f"{kind}: the requester is being deleted")
                    elif bound_to != self.provider:
                        self.lapses.append(f"{kind}: bound to {bound_to!r}, not {self.provider!r}")
                    elif not helm_release.pod_ready(obj):
                        self.lapses.append(f"{kind}: not Ready ({obj.get('status', {}).get('conditions')})")
            except kube_errors.KubeError:
                if self._stopped.is_set():
                    return
            except Exception as exc:  # the test asserts there was none
                self.error = exc
                return

    def stop(self) -> None:
        self._stopped.set()
        if self._abort is not None:
            self._abort()
        self._thread.join(10)


def _pod_uids(installed_chart: helm_release.InstalledChart, component: str) -> set[str]:
    """The UIDs of the component's Pods that are not terminating."""
    pods = installed_chart.pods(f"app.kubernetes.io/component={component}")
    return {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}


def test_upgrade_rolls_every_component_and_keeps_the_binding(
    installed_chart: helm_release.InstalledChart, sim_model: str, request: pytest.FixtureRequest
) -> None:
    api = installed_chart.api
    requester = _start_model(installed_chart, "upgrade-model", sim_model)
    before = {c: _pod_uids(installed_chart, c) for c in helm_release.COMPONENTS}
    watch = PodWatch(api, requester)
    assert watch.opened.wait(30), "the watch on the requester did not open"
    try:
        # Debug logging everywhere changes every component's Pod template.
        changed = [f"--set={c}.logLevel=debug" for c in ("controllers", "webhook", "extender")] + [
            "--set=scheduler.verbosity=3"
        ]
        installed_chart.helm("upgrade", *installed_chart.install_args(*changed), timeout=360)
        waiting.wait_for(installed_chart.all_available, timeout=120, what="every Deployment rolled out and Available")

        def rolled() -> bool:
            after = {c: _pod_uids(installed_chart, c) for c in helm_release.COMPONENTS}
            return all(after[c] and not after[c] & before[c] for c in helm_release.COMPONENTS)

        # Old Pods may still be terminating when the Deployments report the rollout complete.
        waiting.wait_for(rolled, timeout=120, what="every component's Pods replaced by new ones")
        now = _bound(installed_chart, "upgrade-model")
        assert now is not None
        assert now["metadata"]["uid"] == requester["metadata"]["uid"]
        assert now["metadata"]["labels"][DUAL_LABEL] == watch.provider
    finally:
        watch.stop()
        api.delete(helm_release.DEPLOYMENTS, "upgrade-model", helm_release.NAMESPACE)
    request.node.user_properties.append(("requester_events_seen", watch.events))
    assert watch.error is None, repr(watch.error)
    assert watch.lapses == [], watch.lapses
    waiting.wait_for(lambda: not installed_chart.pods("app=upgrade-model"), timeout=120, what="upgrade-model gone")


def _served_certificate(installed_chart: helm_release.InstalledChart) -> bytes:
    """The webhook's serving certificate as the apiserver sees it: through the Service's ClusterIP."""
    service = installed_chart.api.get(
        resources.Resource("", "v1", "services", "Service"),
        f"{helm_release.RELEASE}-fma-webhook",
        helm_release.NAMESPACE,
    )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((service["spec"]["clusterIP"], 443), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _run_rotation(installed_chart: helm_release.InstalledChart, *flags: str) -> None:
    """Run the chart's rotation CronJob now, as a Job with ``flags`` added, and wait until it succeeds."""
    api, ns = installed_chart.api, helm_release.NAMESPACE
    cron = api.get(CRON_JOBS, f"{helm_release.RELEASE}-fma-certs-rotate", ns)
    template = cron["spec"]["jobTemplate"]
    template["spec"]["template"]["spec"]["containers"][0]["args"].extend(flags)
    name = f"rotate-now-{uuid.uuid4().hex[:6]}"
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": template.get("metadata", {}).get("labels", {})},
        "spec": template["spec"],
    }
    api.create(JOBS, job, ns)

    def succeeded() -> bool:
        status = api.get(JOBS, name, ns).get("status") or {}
        assert not status.get("failed"), f"rotation Job {name} failed: {installed_chart.log_of(name)}"
        return bool(status.get("succeeded"))

    waiting.wait_for(succeeded, timeout=120, what=f"rotation Job {name} succeeded")
    api.delete(JOBS, name, ns, propagation_policy="Background")


def test_certificate_rotation_while_pods_are_created(
    installed_chart: helm_release.InstalledChart,
    create_loop: CreateLoop,
    request: pytest.FixtureRequest,
) -> None:
    first = _served_certificate(installed_chart)
    waiting.wait_for(lambda: create_loop.converted >= 3, timeout=60, what="the loop creating converted Pods")
    _run_rotation(installed_chart, "--force-ca")
    _run_rotation(installed_chart, "--force-serving")
    # The webhook Pods see the renewed Secret at the next volume sync and reload it.
    waiting.wait_for(
        lambda: _served_certificate(installed_chart) != first,
        timeout=180,
        interval=1.0,
        what="the webhook serving the renewed certificate",
    )
    converted_at_switch = create_loop.converted
    waiting.wait_for(
        lambda: create_loop.converted >= converted_at_switch + 5, timeout=60, what="more creates after the switch"
    )
    create_loop.record(request.node)
    assert create_loop.failures == [], create_loop.failures
    assert create_loop.slowest_s < CREATE_LIMIT_S


@pytest.mark.parametrize("component", ["webhook", "extender"])
def test_a_killed_pod_during_creation_never_hangs_a_create(
    installed_chart: helm_release.InstalledChart,
    create_loop: CreateLoop,
    component: str,
    request: pytest.FixtureRequest,
) -> None:
    api, ns = installed_chart.api, helm_release.NAMESPACE
    waiting.wait_for(lambda: create_loop.converted >= 3, timeout=60, what="the loop creating converted Pods")
    victims = installed_chart.pods(f"app.kubernetes.io/component={component}")
    assert victims
    victim = victims[0]["metadata"]["name"]
    api.delete(resources.PODS, victim, ns, grace_period_seconds=0)
    seen = create_loop.converted
    waiting.wait_for(installed_chart.all_available, timeout=120, what=f"the {component} Deployment replaced its Pod")
    waiting.wait_for(lambda: create_loop.converted >= seen + 5, timeout=60, what="creates going on after the kill")
    create_loop.record(request.node)
    # Fail policy: a create the webhook could not answer fails with the apiserver's clear message.
    for failure in create_loop.failures:
        assert f'failed calling webhook "{WEBHOOK_NAME}"' in failure, failure
    if component == "extender":
        # The extender is not on the create path at all.
        assert create_loop.failures == []
    assert create_loop.slowest_s < CREATE_LIMIT_S


KINDS_WITH_RELEASE_LABELS = [
    resources.Resource("apps", "v1", "deployments", "Deployment"),
    resources.Resource("", "v1", "services", "Service"),
    resources.SERVICE_ACCOUNTS,
    resources.CONFIG_MAPS,
    resources.SECRETS,
    resources.PODS,
    JOBS,
    CRON_JOBS,
    resources.Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    resources.Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    resources.Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    resources.Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    resources.Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    resources.Resource(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
    ),
    resources.MUTATING_WEBHOOK_CONFIGURATIONS,
    resources.Resource(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        namespaced=False,
    ),
    resources.Resource(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        namespaced=False,
    ),
]


def _left_behind(api: kube.Client) -> list[str]:
    found: list[str] = []
    for kind in KINDS_WITH_RELEASE_LABELS:
        items, _ = api.list_all(kind, None, label_selector=helm_release.INSTANCE_SELECTOR)
        found.extend(f"{kind.kind} {i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in items)
    return found


@pytest.mark.uninstalls
def test_uninstall_leaves_nothing_behind_and_no_requester_hangs(
    installed_chart: helm_release.InstalledChart, sim_model: str
) -> None:
    api, ns = installed_chart.api, helm_release.NAMESPACE
    requester = _start_model(installed_chart, "left-running", sim_model)
    assert _left_behind(api)
    installed_chart.helm("uninstall", helm_release.RELEASE, "--namespace", ns, "--wait", "--timeout", "3m", timeout=240)
    waiting.wait_for(lambda: not _left_behind(api), timeout=120, what="no object with the release's labels")
    # The pre-delete hook released FMA's finalizers: the requester and its launcher keep running as
    # ordinary Pods (docs/install.md), and deleting them completes without anyone left to help.
    name = requester["metadata"]["name"]
    launcher = requester["metadata"]["labels"][DUAL_LABEL]
    for pod_name in (name, launcher):
        left = api.get(resources.PODS, pod_name, ns)
        fma_finalizers = [f for f in left["metadata"].get("finalizers") or [] if f.startswith("dual-pods.llm-d.ai/")]
        assert fma_finalizers == [], (pod_name, fma_finalizers)
    api.delete(helm_release.DEPLOYMENTS, "left-running", ns)
    api.delete(resources.PODS, launcher, ns)
    waiting.wait_for(
        lambda: all(api.get_or_none(resources.PODS, n, ns) is None for n in (name, launcher)),
        timeout=120,
        what=f"Pods {name} and {launcher} deleted (no finalizer left on them)",
    )
