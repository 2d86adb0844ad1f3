"""``helm install`` with ``placement=hints`` and ``placementNominate=plugin``: FMA's kube-scheduler places a
requester on its sleeper's node through the webhook's nominated-node annotation, with no gate, and it wakes hot.

A cluster of its own (not the session's shared release: the chart's webhook
and scheduler act cluster-wide), 2 simnode nodes x 2 GPUs handing out the
lowest free GPU first.  The chart is installed as an operator would, with
only ``placement=hints``, ``placementNominate=plugin`` and one webhook
replica (so that the one sleeper cache the test waits on is the one that
admits).  Its scheduler Pod runs ``fma-kube-scheduler`` from simnode's PATH:
``binaries.ensure_fma_scheduler()`` builds it (cached by plugin source hash)
and links it there.

A model is actuated once, scaled to zero (its instance sleeps on its
launcher), and, once the webhook's cache sees that sleeper's GPU free
(server-side dry-run creates of the same Pod template, answered through the
real admission chain, carry the annotation), scaled up again: the new
requester carries ``dual-pods.llm-d.ai/nominated-node`` naming the
sleeper's node and no scheduling gate, is scheduled by the release's
scheduler (the plugin build, checked on its running process) without a
failed cycle, lands on that node, binds the same launcher and instance,
and is actuated hot.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from crds import keys
from devcluster import binaries, helm_release, samples, waiting
from devcluster.simnode import runtime_record
from kube import resources
from tests.integration.chart import chart_cluster
from tests.integration.chart.test_install import bound_requester

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

NS = helm_release.NAMESPACE
P = keys.PREFIX
APP = "plugin-model"
ISC = "tiny"
SCHEDULER_NAME = "fma-scheduler"
EVENTS = resources.Resource("", "v1", "events", "Event")


@pytest.fixture(scope="module")
def plugin_chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[helm_release.InstalledChart]:
    """A dev cluster with 2 nodes of 2 GPUs and the chart installed with hints and the scheduler plugin."""
    fma_scheduler = binaries.ensure_fma_scheduler()
    with chart_cluster.installed(
        pathlib.Path(tmp_path_factory.mktemp("chart-plugin")),
        node_prefix="chartplugin",
        set_values=("placement=hints", "placementNominate=plugin", "webhook.replicas=1"),
        settled=_settled,
        what="every Deployment of the release Available (no extender)",
    ) as (chart, notes):
        assert "FMA's kube-scheduler build with the NominatedNode plugin" in notes, notes
        assert binaries.locate_fma_scheduler() == fma_scheduler
        yield chart


def _settled(chart: helm_release.InstalledChart) -> bool:
    """Every Deployment of the release settled; with hints alone there is no extender."""
    found = {d["metadata"]["name"]: d for d in chart.deployments()}
    wanted = {f"{helm_release.RELEASE}-fma-{c}" for c in helm_release.COMPONENTS if c != "extender"}
    return set(found) == wanted and all(helm_release.deployment_settled(d) for d in found.values())


def _scale(chart: helm_release.InstalledChart, replicas: int) -> None:
    chart.api.patch(helm_release.DEPLOYMENTS, APP, {"spec": {"replicas": replicas}}, NS)


def _bound(chart: helm_release.InstalledChart) -> tuple[dict[str, Any], str]:
    try:
        found = waiting.wait_for(
            lambda: bound_requester(chart, APP), timeout=180, what="the Deployment's Pod a Ready requester, bound"
        )
    except waiting.WaitTimeout:
        _print_state(chart)
        raise
    assert found is not None
    return found


def _asleep(chart: helm_release.InstalledChart, launcher: str, instance: str) -> bool:
    """The launcher is labelled sleeping and lists ``instance`` running (asleep in it)."""
    meta = chart.api.get(resources.PODS, launcher, NS)["metadata"]
    inventory = json.loads((meta.get("annotations") or {}).get(keys.INSTANCES_ANNOTATION) or "{}")
    running = {i.get("id") for i in inventory.get("instances") or [] if i.get("status") == "running"}
    return meta["labels"].get(P + "sleeping") == "true" and instance in running


def _dry_run_annotation(chart: helm_release.InstalledChart) -> str | None:
    """The nominated node the webhook writes into a requester of the model now (a server-side dry-run create
    through the real admission chain: nothing is stored)."""
    template = samples.vllm_template(ISC, APP)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**template["metadata"], "generateName": "dry-run-probe-"},
        "spec": template["spec"],
    }
    created = chart.api.request(
        "POST", resources.PODS.path(NS), query={"dryRun": "All", "fieldManager": "chart-tests"}, body=body
    )
    return ((created.get("metadata") or {}).get("annotations") or {}).get(keys.NOMINATED_NODE_ANNOTATION)


def _controllers_metric(chart: helm_release.InstalledChart, name: str, label: str) -> float:
    """The sum of the samples of ``name`` whose labels contain ``label`` over the Ready controller Pods."""
    total = 0.0
    for text in chart_cluster.metrics_texts(chart, "controllers"):
        total += sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{") and label in line
        )
    return total


def _scheduler_executable(chart: helm_release.InstalledChart) -> tuple[pathlib.Path, list[str]]:
    """The running scheduler container's executable (resolved) and command line, from /proc."""
    (pod,) = [p for p in chart.pods("app.kubernetes.io/component=scheduler") if helm_release.pod_ready(p)]
    record = runtime_record.load(chart.simnode_state_dir, pod["metadata"]["uid"])
    assert record is not None
    process = record.containers["scheduler"].process
    assert process is not None
    argv = pathlib.Path(f"/proc/{process.pid}/cmdline").read_bytes().decode().split("\0")
    return pathlib.Path(f"/proc/{process.pid}/exe").resolve(), argv


def _events_of(chart: helm_release.InstalledChart, pod: dict[str, Any]) -> list[dict[str, Any]]:
    items, _ = chart.api.list_all(EVENTS, NS, field_selector=f"involvedObject.uid={pod['metadata']['uid']}")
    return items


def _print_state(chart: helm_release.InstalledChart) -> None:
    """What a failed wait needs: the Pods, and the log tails of the controllers, webhook and scheduler."""
    for pod in chart.pods("app.kubernetes.io/component!=none"):
        meta = pod["metadata"]
        print(meta["name"], pod["spec"].get("nodeName"), meta.get("annotations"), pod.get("status", {}).get("phase"))
    for pod in chart.pods("app.kubernetes.io/component in (controllers, webhook, scheduler)"):
        print(pod["metadata"]["name"], chart.log_of(pod["metadata"]["name"])[-3000:])


def test_a_nominated_requester_runs_through_fmas_scheduler_to_its_sleeper_and_wakes_hot(
    plugin_chart: helm_release.InstalledChart,
) -> None:
    chart, api = plugin_chart, plugin_chart.api
    started = time.monotonic()
    # The release's scheduler runs FMA's build, found as fma-kube-scheduler on the Pod's PATH.
    exe, argv = _scheduler_executable(chart)
    assert exe == binaries.locate_fma_scheduler().resolve(), (exe, argv)
    assert argv[0] == binaries.FMA_SCHEDULER_COMMAND, argv
    chart_cluster.sim_model(chart, ISC)

    api.create(helm_release.DEPLOYMENTS, samples.deployment(APP, samples.vllm_template(ISC, APP)), NS)
    first, launcher = _bound(chart)
    assert keys.NOMINATED_NODE_ANNOTATION not in first["metadata"]["annotations"], "nothing sleeps yet"
    node = first["spec"]["nodeName"]
    instance = first["metadata"]["labels"][P + "instance"]
    hot_before = _controllers_metric(chart, "fma_actuation_seconds_count", 'path="hot"')

    _scale(chart, 0)
    waiting.wait_for(lambda: not chart.pods(f"app={APP}"), timeout=120, what="the requester gone")
    waiting.wait_for(lambda: _asleep(chart, launcher, instance), timeout=60, what="the instance asleep")
    try:
        waiting.wait_for(
            lambda: _dry_run_annotation(chart) == node,
            timeout=60,
            what="the webhook naming the sleeper's node for a new requester (dry-run)",
        )
    except waiting.WaitTimeout:
        _print_state(chart)
        raise

    _scale(chart, 1)
    second, second_launcher = _bound(chart)
    meta, spec = second["metadata"], second["spec"]
    assert meta["annotations"][keys.NOMINATED_NODE_ANNOTATION] == node
    assert not spec.get("schedulingGates"), "plugin mode writes no gate"
    assert spec["schedulerName"] == SCHEDULER_NAME
    assert spec["nodeName"] == node
    assert second_launcher == launcher
    assert meta["labels"][P + "instance"] == instance
    waiting.wait_for(
        lambda: _controllers_metric(chart, "fma_actuation_seconds_count", 'path="hot"') == hot_before + 1,
        timeout=30,
        what="one more hot actuation",
    )
    events = _events_of(chart, second)
    reasons = [e.get("reason") for e in events]
    assert "FailedScheduling" not in reasons, reasons
    scheduled = [e for e in events if e.get("reason") == "Scheduled"]
    assert scheduled, reasons
    assert {e.get("reportingComponent") or (e.get("source") or {}).get("component") for e in scheduled} == {
        SCHEDULER_NAME
    }, scheduled
    print(f"test body (model, sleeper, hot wake): {time.monotonic() - started:.1f} s")
