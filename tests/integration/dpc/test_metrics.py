"""Every metric family the controllers and the launcher export, read from real scrapes.

The families are those of docs/protocol.md, "Metrics".

One scenario drives the real ``fma-controllers`` (dual-pods controller and
populator, with a policy that keeps one launcher on the node) through a cold
actuation, a scale-down to sleep and a hot wake,
beside a requester whose SPI never answers (so the work queue retries and an
HTTP call ends without a response).  The controller's and the launcher's
``/metrics`` are then parsed with Prometheus' own text parser and each family
is checked for its name, type, label set, buckets and values that follow from
what happened.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from prometheus_client import parser as prom_parser
from prometheus_client import samples as prom_samples

from devcluster import samples, waiting
from kube import resources

from .conftest import Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"
Families = dict[str, Any]

_QUEUE_BUCKETS = (0.015625, 0.0625, 0.25, 1, 4, 16, 64)
CONTROLLER_FAMILIES: dict[str, tuple[str, set[str], tuple[float, ...] | None]] = {
    # family name as the parser reports it (counters without ``_total``): type, labels, buckets
    "fma_actuation_seconds": (
        "histogram",
        {"exported_namespace", "path", "instancesDeleted", "isc_name"},
        (0, 1, 3, 5, 7.5, 10, 15, 30, 60, 120, 240, 480, 960, 1920),
    ),
    "fma_http_latency_seconds": (
        "histogram",
        {"purpose", "method", "exported_namespace", "isc_name", "status_code"},
        (0.001, 0.01, 0.1, 1, 2, 3, 5, 10, 30, 90, 270, 810),
    ),
    "fma_launcher_create_seconds": (
        "histogram",
        {"exported_namespace", "lcfg_name", "success"},
        (0.001, 0.01, 0.1, 1, 2, 3, 4, 5),
    ),
    "fma_duality": (
        "gauge",
        {"exported_namespace", "requester_name", "exported_pod", "exported_container", "instance_id", "UUID", "node"},
        None,
    ),
    "fma_requester_count": ("gauge", {"isc_name"}, None),
    "fma_isc_count": ("gauge", {"launcher_config_name"}, None),
    "fma_launcher_pod_count": ("gauge", {"lcfg_name", "phase"}, None),
    "fma_dpc_innerqueue_adds": ("counter", {"node"}, None),
    "fma_dpc_innerqueue_depth": ("gauge", {"node"}, None),
    "fma_dpc_innerqueue_queue_duration_seconds": ("histogram", {"node"}, _QUEUE_BUCKETS),
    "fma_dpc_innerqueue_retries": ("counter", {"node"}, None),
    "fma_dpc_innerqueue_work_duration_seconds": ("histogram", {"node"}, _QUEUE_BUCKETS),
}
_LAUNCHER_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60)
LAUNCHER_FAMILIES: dict[str, tuple[str, set[str], tuple[float, ...] | None]] = {
    "fma_launcher_instances": ("gauge", {"status"}, None),
    "fma_launcher_instance_start_seconds": ("histogram", set(), _LAUNCHER_BUCKETS),
    "fma_launcher_instance_stop_seconds": ("histogram", set(), _LAUNCHER_BUCKETS),
    "fma_launcher_instance_unsolicited_exits": ("counter", set(), None),
}
CYCLE_PURPOSES = {
    "get_gpu_uuids",
    "create_instance",
    "get_instance_state",
    "query_sleeping",
    "relay_ready",
    "sleep",
    "wake",
}


def scrape(url: str) -> Families:
    """Parse one ``/metrics`` answer into families by name, with Prometheus' own parser."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in prom_parser.text_string_to_metric_families(response.text)}


def find(families: Families, sample_name: str, **labels: str) -> list[prom_samples.Sample]:
    """The samples named ``sample_name`` whose labels include ``labels``."""
    family = families[_family_of(families, sample_name)]
    return [s for s in family.samples if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]


def value(families: Families, sample_name: str, **labels: str) -> float:
    """The one sample named ``sample_name`` with ``labels`` (exactly one must match)."""
    found = find(families, sample_name, **labels)
    assert len(found) == 1, f"{sample_name}{labels}: {found}"
    return float(found[0].value)


def _family_of(families: Families, sample_name: str) -> str:
    if sample_name in families:  # a gauge, even one named like ``fma_requester_count``
        return sample_name
    for suffix in ("_bucket", "_count", "_sum", "_total"):
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)]
    return sample_name


def check_shapes(families: Families, expected: dict[str, tuple[str, set[str], tuple[float, ...] | None]]) -> None:
    """Each family: present, its type, its exposed sample names, its label set, its buckets."""
    for name, (kind, labels, buckets) in expected.items():
        assert name in families, f"{name} is not exported; got {sorted(families)}"
        family = families[name]
        assert family.type == kind, (name, family.type)
        assert family.samples, f"{name} has no series"
        suffixes = {"histogram": {"_bucket", "_count", "_sum"}, "counter": {"_total"}, "gauge": {""}}[kind]
        assert {s.name[len(name) :] for s in family.samples} == suffixes, (name, {s.name for s in family.samples})
        for sample in family.samples:
            got = set(sample.labels) - {"le"}
            assert got == labels, (name, sample.labels)
            assert math.isfinite(sample.value), (name, sample)
            assert sample.value >= 0, (name, sample)
        if buckets is not None:
            series: dict[tuple[tuple[str, str], ...], list[float]] = {}
            for sample in family.samples:
                if sample.name == name + "_bucket":
                    key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                    series.setdefault(key, []).append(float(sample.labels["le"]))
            for key, bounds in series.items():
                assert bounds == [*map(float, buckets), math.inf], (name, key, bounds)


def _buckets_consistent(samples_: Iterable[prom_samples.Sample], count: float) -> bool:
    cumulative = [s.value for s in samples_]
    return cumulative == sorted(cumulative) and cumulative[-1] == count


def _bad_spi_requester(harness: Harness, node: str) -> None:
    """A requester of ``isc1`` whose SPI port (annotation) has no listener: every GPU query fails."""
    template = samples.requester_template("isc1", "nospi", node=node)
    template["metadata"]["annotations"][P + "admin-port"] = "8089"
    harness.create(
        resources.PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "nospi", **template["metadata"]},
            "spec": template["spec"],
        },
    )


def test_a_cold_sleep_hot_cycle_exports_every_contracted_family(harness: Harness) -> None:
    ns = harness.namespace
    harness.launcher_config()
    harness.isc("isc1", labels={"model": "tiny"})
    harness.start_controller("--enable-populator", "true")
    node, other = harness.simnode.node_names[:2]
    _bad_spi_requester(harness, other)
    harness.deployment("r1", "isc1", node=node)
    first = harness.ready_requester("r1")
    gpu = first["metadata"]["annotations"][P + "accelerators"]
    launcher_name = first["metadata"]["labels"][P + "dual"]
    instance_id = first["metadata"]["labels"][P + "instance"]
    metrics_url = f"http://127.0.0.1:{harness.metrics_port}/metrics"
    # Keep one launcher on the node from now on: the bound one counts (docs/populator.md, "How it works"), so the
    # populator creates none, and it keeps that launcher (asleep) once it is unbound.
    harness.create(
        resources.LAUNCHER_POPULATION_POLICIES,
        samples.launcher_population_policy(
            "keep-one", launcher_config_name="lc", count=1, match_labels={"kubernetes.io/hostname": node}
        ),
    )

    harness.scale("r1", 0)
    waiting.wait_for(lambda: not harness.pods("app=r1"), timeout=60, what="the first requester to be gone")
    harness.scale("r1", 1)
    second = harness.ready_requester("r1")
    assert second["metadata"]["labels"][P + "dual"] == launcher_name

    def settled() -> Families | None:
        families = scrape(metrics_url)
        hot = find(families, "fma_actuation_seconds_count", exported_namespace=ns, path="hot")
        retries = find(families, "fma_dpc_innerqueue_retries_total", node=other)
        counted = find(families, "fma_requester_count", isc_name="isc1")
        idle = find(families, "fma_dpc_innerqueue_depth", node=node)
        done = hot and retries and retries[0].value >= 1 and counted and counted[0].value == 2
        return families if done and idle and idle[0].value == 0 else None

    found = waiting.wait_for(settled, timeout=90, what="the hot actuation and a retry of the SPI-less requester")
    assert found is not None
    families = found
    check_shapes(families, CONTROLLER_FAMILIES)

    # fma_actuation_seconds: one cold, then one hot, each once per binding.
    for path in ("cold", "hot"):
        count = value(families, "fma_actuation_seconds_count", exported_namespace=ns, path=path, isc_name="isc1")
        assert count == 1, path
        labels = find(families, "fma_actuation_seconds_count", exported_namespace=ns, path=path)[0].labels
        assert labels["instancesDeleted"] == "0"
        seconds = value(families, "fma_actuation_seconds_sum", exported_namespace=ns, path=path, isc_name="isc1")
        assert 0 < seconds < 120, (path, seconds)
        buckets = find(families, "fma_actuation_seconds_bucket", exported_namespace=ns, path=path)
        assert _buckets_consistent(buckets, count)
    assert not find(families, "fma_actuation_seconds_count", exported_namespace=ns, path="warm")

    # fma_http_latency_seconds: every call of the cycle answered 2xx; the SPI-less requester's got no response.
    answered = {
        s.labels["purpose"]
        for s in find(families, "fma_http_latency_seconds_count", exported_namespace=ns)
        if s.labels["status_code"].startswith("2") and s.value >= 1
    }
    assert answered >= CYCLE_PURPOSES, CYCLE_PURPOSES - answered
    for sample in find(families, "fma_http_latency_seconds_count", exported_namespace=ns):
        assert sample.labels["method"] in {"GET", "POST", "PUT", "DELETE"}, sample
        assert sample.labels["status_code"].isdigit(), sample
    unanswered = value(
        families, "fma_http_latency_seconds_count", exported_namespace=ns, purpose="get_gpu_uuids", status_code="0"
    )
    assert unanswered >= 2
    wake = find(families, "fma_http_latency_seconds_count", exported_namespace=ns, purpose="wake")
    assert [(s.labels["method"], s.value) for s in wake] == [("POST", 1)]

    # fma_launcher_create_seconds: exactly the one cold launcher, created successfully within the buckets' span.
    assert (
        value(families, "fma_launcher_create_seconds_count", exported_namespace=ns, lcfg_name="lc", success="true") == 1
    )
    assert not find(families, "fma_launcher_create_seconds_count", exported_namespace=ns, success="false")
    assert 0 < value(families, "fma_launcher_create_seconds_sum", exported_namespace=ns, lcfg_name="lc") < 5

    # fma_duality: 1 for the bound pair on its GPU; the first requester's series dropped to 0 once it was gone.
    pair = {
        "exported_namespace": ns,
        "exported_pod": launcher_name,
        "exported_container": "inference-server",
        "instance_id": instance_id,
        "UUID": gpu,
        "node": node,
    }
    assert value(families, "fma_duality", requester_name=second["metadata"]["name"], **pair) == 1
    assert value(families, "fma_duality", requester_name=first["metadata"]["name"], **pair) == 0

    # Gauges of the custom resources: two requesters of isc1 (one never scheduled an engine), one ISC on lc.
    assert value(families, "fma_requester_count", isc_name="isc1") == 2
    assert value(families, "fma_isc_count", launcher_config_name="lc") == 1

    # fma_launcher_pod_count (populator): all five phases of lc, the one launcher bound.
    phases = {s.labels["phase"]: s.value for s in find(families, "fma_launcher_pod_count", lcfg_name="lc")}
    assert phases == {"bound": 1, "unbound": 0, "stuck_scheduling": 0, "stuck_starting": 0, "stale": 0}

    # The inner queue of each node: adds, waits and work observed; retries where the SPI never answered.
    for group in (node, other):
        adds = value(families, "fma_dpc_innerqueue_adds_total", node=group)
        waited = value(families, "fma_dpc_innerqueue_queue_duration_seconds_count", node=group)
        worked = value(families, "fma_dpc_innerqueue_work_duration_seconds_count", node=group)
        depth = value(families, "fma_dpc_innerqueue_depth", node=group)
        # Every add is handed out once (waited) and then processed (worked); one may be in progress.
        # The families are read one after another, so an item moving meanwhile may shift a count by one.
        assert adds >= 1, group
        assert abs(adds - waited - depth) <= 1, (group, adds, waited, depth)
        assert -1 <= waited - worked <= 2, (group, waited, worked)
        assert value(families, "fma_dpc_innerqueue_work_duration_seconds_sum", node=group) < worked * 64
    assert value(families, "fma_dpc_innerqueue_adds_total", node=node) >= 4  # two requesters, their launcher
    assert value(families, "fma_dpc_innerqueue_depth", node=node) == 0
    assert value(families, "fma_dpc_innerqueue_retries_total", node=other) >= 1

    # The launcher's own metrics: one instance started and running, none stopped yet.
    launcher = harness.get(launcher_name)
    launcher_url = f"http://{launcher['status']['podIP']}:8001"
    lfam = scrape(f"{launcher_url}/metrics")
    check_shapes(lfam, LAUNCHER_FAMILIES)
    assert value(lfam, "fma_launcher_instances", status="running") == 1
    assert value(lfam, "fma_launcher_instances", status="stopped") == 0
    assert value(lfam, "fma_launcher_instance_start_seconds_count") == 1
    assert 0 < value(lfam, "fma_launcher_instance_start_seconds_sum") < 60
    assert value(lfam, "fma_launcher_instance_stop_seconds_count") == 0
    assert value(lfam, "fma_launcher_instance_unsolicited_exits_total") == 0

    # Asleep and unbound again, the instance is deleted through the launcher API: one stop observed.
    harness.scale("r1", 0)
    waiting.wait_for(lambda: not harness.pods("app=r1"), timeout=60, what="the second requester to be gone")
    assert httpx.delete(f"{launcher_url}/v2/vllm/instances/{instance_id}", timeout=30).status_code == 200

    def stop_counted() -> Families | None:
        scraped = scrape(f"{launcher_url}/metrics")
        return scraped if value(scraped, "fma_launcher_instance_stop_seconds_count") == 1 else None

    counted = waiting.wait_for(stop_counted, timeout=30, what="the launcher to count the stop")
    assert counted is not None
    lfam = counted
    assert value(lfam, "fma_launcher_instances", status="running") == 0
    assert 0 < value(lfam, "fma_launcher_instance_stop_seconds_sum") < 30
    assert value(lfam, "fma_launcher_instance_unsolicited_exits_total") == 0
