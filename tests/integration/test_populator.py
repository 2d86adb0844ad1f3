"""The launcher populator against a real apiserver, scheduler and simnode (docs/populator.md).

Launchers on the session's process-running simnode nodes run the real
``fma-launcher --engine sim`` and become Ready through their contracted
readiness probe; a module-scoped status-only node is the third GPU node.
Each test has its own namespace and selects nodes by a label key of its own,
so tests sharing the session's nodes do not see each other's policies.
Launchers that must not run (the race, the stuck launcher) are kept
unschedulable by an extra nodeSelector, which costs no processes.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import prometheus_client
import pytest

import kube
from controllers import populator
from crds import keys, manifests, names
from devcluster import control_plane, waiting
from devcluster import simnode as simnode_mod
from devcluster.simnode.pytest_fixtures import RunningSimnode
from kube import resources

pytestmark = pytest.mark.cluster

LAUNCHER_BIN = str(pathlib.Path(sys.executable).parent / "fma-launcher")
LAUNCHER_SELECTOR = f"{keys.COMPONENT_LABEL}={keys.COMPONENT_LAUNCHER}"
NOWHERE = {"populator-test.fma/nowhere": "true"}


@pytest.fixture(scope="module")
def admin(devcluster: control_plane.ClusterState) -> Iterator[kube.Client]:
    """The cluster admin (the tests' own writes), after the CRDs are applied."""
    client = kube.connect(str(devcluster.kubeconfig), field_manager="populator-test")
    for document in manifests.documents():
        client.patch(
            resources.CUSTOM_RESOURCE_DEFINITIONS,
            document["metadata"]["name"],
            document,
            patch_type="apply",
            force=True,
        )
    for document in manifests.documents():
        name = str(document["metadata"]["name"])
        waiting.wait_for(functools.partial(_established, client, name), timeout=30, what=f"CRD {name} established")
    yield client
    client.close()


def _established(client: kube.Client, name: str) -> bool:
    crd = client.get(resources.CUSTOM_RESOURCE_DEFINITIONS, name)
    conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
    return conditions.get("Established") == "True"


@pytest.fixture(scope="module")
def third_node(devcluster: control_plane.ClusterState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One status-only GPU node of this module's own simnode (Pods on it are reported Ready, not run)."""
    state_dir = tmp_path_factory.mktemp("popsim")
    options = simnode_mod.SimnodeOptions(
        nodes=0,
        status_only_nodes=1,
        node_prefix=f"pop{uuid.uuid4().hex[:4]}",
        gpu_map_namespace=None,
        state_dir=state_dir,
    )
    record = simnode_mod.spawn(devcluster, options, state_dir / "simnode.log")
    try:
        simnode_mod.wait_ready(devcluster, options, record, timeout=60.0)
        yield simnode_mod.node_names(options)[0]
    finally:
        simnode_mod.stop(record, state_dir)
        with devcluster.http_client() as api:
            api.delete(f"/api/v1/nodes/{simnode_mod.node_names(options)[0]}")


@dataclasses.dataclass
class Harness:
    """A running populator on its own caches, and the test's view of the namespace."""

    admin: kube.Client
    namespace: str
    pool: str
    """This test's node label key: nodes labelled ``<pool>=yes`` are selected by its policies."""
    populator: populator.Populator
    registry: prometheus_client.CollectorRegistry
    labelled: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """(node, label key) pairs this test set, removed afterwards."""

    def launchers(self, config: str | None = None, node: str | None = None) -> list[dict[str, Any]]:
        selector = LAUNCHER_SELECTOR
        if config is not None:
            selector += f",{keys.LAUNCHER_CONFIG_NAME_LABEL}={config}"
        if node is not None:
            selector += f",{keys.NODE_NAME_LABEL}={node}"
        items, _ = self.admin.list_all(resources.PODS, self.namespace, label_selector=selector)
        return items

    def live(self, config: str, node: str) -> list[dict[str, Any]]:
        return [p for p in self.launchers(config, node) if not p["metadata"].get("deletionTimestamp")]

    def exactly(self, config: str, node: str, count: int) -> list[dict[str, Any]]:
        """The pair's launchers when there are exactly ``count`` (> 0), none terminating; else an empty list."""
        pods = self.launchers(config, node)
        if len(pods) != count or any(p["metadata"].get("deletionTimestamp") for p in pods):
            return []
        return pods

    def gauge(self, config: str, phase: str) -> float | None:
        return self.registry.get_sample_value("fma_launcher_pod_count", {"lcfg_name": config, "phase": phase})

    def events(self, reason: str) -> list[dict[str, Any]]:
        items, _ = self.admin.list_all(resources.EVENTS, self.namespace)
        return [e for e in items if e.get("reason") == reason]

    def label_node(self, node: str, selected: bool, key: str | None = None) -> None:
        key = key or self.pool
        self.labelled.append((node, key))
        self.admin.patch(resources.NODES, node, {"metadata": {"labels": {key: "yes" if selected else None}}})

    def create_config(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": "fma.llm-d.ai/v1alpha1",
            "kind": "LauncherConfig",
            "metadata": {"name": name},
            "spec": {"maxInstances": 2, "podTemplate": {"spec": spec}},
        }
        return self.admin.create(resources.LAUNCHER_CONFIGS, body, self.namespace)

    def create_policy(
        self, name: str, counts: dict[str, int], selector: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "fma.llm-d.ai/v1alpha1",
            "kind": "LauncherPopulationPolicy",
            "metadata": {"name": name},
            "spec": {
                "enhancedNodeSelector": {"labelSelector": selector or {"matchLabels": {self.pool: "yes"}}},
                "countForLauncher": [{"launcherConfigName": k, "launcherCount": v} for k, v in counts.items()],
            },
        }
        return self.admin.create(resources.LAUNCHER_POPULATION_POLICIES, body, self.namespace)

    def set_count(self, policy: str, config: str, count: int) -> None:
        patch = {"spec": {"countForLauncher": [{"launcherConfigName": config, "launcherCount": count}]}}
        self.admin.patch(resources.LAUNCHER_POPULATION_POLICIES, policy, patch, self.namespace)

    def status(self, resource: resources.Resource, name: str) -> dict[str, Any]:
        return self.admin.get(resource, name, self.namespace).get("status") or {}


def launcher_spec(**extra: Any) -> dict[str, Any]:
    """A launcher template that runs the real launcher with the simulated engine on the Pod's own address."""
    return {
        "terminationGracePeriodSeconds": 5,
        "containers": [
            {
                "name": "inference-server",
                "image": "ignored",
                "command": [LAUNCHER_BIN, "--engine", "sim", "--host", "$(POD_IP)", "--port", "8001"],
                "args": ["--mock-gpus", "--no-nvml", "--log-level", "warning"],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            }
        ],
        **extra,
    }


def ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def bound(pod: dict[str, Any]) -> bool:
    return bool((pod["metadata"].get("annotations") or {}).get(keys.REQUESTER_ANNOTATION))


@pytest.fixture
def harness_factory(
    devcluster: control_plane.ClusterState, admin: kube.Client, fresh_namespace: str
) -> Iterator[Callable[..., Harness]]:
    """Start a populator (own client, caches and registry) for the test's namespace; stopped afterwards."""
    started: list[tuple[Harness, list[kube.WatchCache], kube.Client]] = []
    pool = f"populator-test.fma/{fresh_namespace}"

    def start(**settings: Any) -> Harness:
        api = kube.connect(str(devcluster.kubeconfig), field_manager=names.POPULATOR_FIELD_MANAGER)
        pods = kube.WatchCache(api, resources.PODS, namespace=fresh_namespace, indexers=populator.POD_INDEXERS)
        nodes = kube.WatchCache(api, resources.NODES)
        configs = kube.WatchCache(api, resources.LAUNCHER_CONFIGS, namespace=fresh_namespace)
        policies = kube.WatchCache(api, resources.LAUNCHER_POPULATION_POLICIES, namespace=fresh_namespace)
        registry = prometheus_client.CollectorRegistry()
        the_populator = populator.Populator(
            api,
            namespace=fresh_namespace,
            pods=pods,
            nodes=nodes,
            launcher_configs=configs,
            policies=policies,
            events=kube.EventRecorder(api, component=names.POPULATOR_FIELD_MANAGER, instance="test"),
            registry=registry,
            settings=populator.PopulatorSettings(**settings),
        )
        the_populator.register_handlers()
        caches = [pods, nodes, configs, policies]
        for cache in caches:
            cache.start()
        assert kube.cache.wait_all_synced(caches, 30)
        the_populator.start(workers=2)
        harness = Harness(admin, fresh_namespace, pool, the_populator, registry)
        started.append((harness, caches, api))
        return harness

    yield start
    for harness, caches, api in started:
        for node, key in set(harness.labelled):
            admin.patch(resources.NODES, node, {"metadata": {"labels": {key: None}}})
        harness.populator.stop()
        for cache in caches:
            cache.stop()
        api.close()


def test_policy_populates_exactly_the_selected_nodes_and_follows_the_count(
    harness_factory: Callable[..., Harness], simnode: RunningSimnode, third_node: str
) -> None:
    h = harness_factory()
    first, second = simnode.node_names
    h.label_node(first, True)
    h.label_node(second, True)
    h.create_config("lc", launcher_spec())
    h.create_policy("pool", {"lc": 2})

    def converged(count: int) -> bool:
        per_node = [h.live("lc", node) for node in (first, second)]
        return all(len(pods) == count and all(ready(p) and not bound(p) for p in pods) for pods in per_node)

    waiting.wait_for(lambda: converged(2), timeout=90, what="2 Ready unbound launchers on each selected node")
    assert h.launchers("lc", third_node) == []
    for pod in h.launchers("lc"):
        assert pod["spec"]["nodeSelector"] == {
            "kubernetes.io/hostname": pod["metadata"]["labels"][keys.NODE_NAME_LABEL]
        }
        assert pod["spec"]["nodeName"] == pod["metadata"]["labels"][keys.NODE_NAME_LABEL]
    assert h.populator.stats().creates == 4
    waiting.wait_for(lambda: h.gauge("lc", "unbound") == 4.0, timeout=10, what="the unbound gauge at 4")
    assert h.gauge("lc", "bound") == 0.0
    assert h.gauge("lc", "stale") == 0.0
    status = h.status(resources.LAUNCHER_POPULATION_POLICIES, "pool")
    assert status["errors"] == []
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Accepted": "True", "ResolvedRefs": "True"}
    assert h.status(resources.LAUNCHER_CONFIGS, "lc")["observedGeneration"] == 1

    h.set_count("pool", "lc", 3)
    waiting.wait_for(lambda: converged(3), timeout=90, what="3 Ready launchers on each selected node")
    h.set_count("pool", "lc", 1)
    waiting.wait_for(lambda: converged(1) and len(h.launchers("lc")) == 2, timeout=60, what="1 launcher per node")
    assert h.launchers("lc", third_node) == []
    assert h.populator.stats().delete_conflicts == 0


def test_relabelling_a_node_moves_its_launchers(
    harness_factory: Callable[..., Harness], simnode: RunningSimnode, third_node: str
) -> None:
    h = harness_factory()
    first = simnode.node_names[0]
    h.label_node(first, True)
    h.create_config("lc", launcher_spec())
    h.create_policy("pool", {"lc": 1})
    waiting.wait_for(lambda: len(h.live("lc", first)) == 1, timeout=30, what="a launcher on the first node")
    h.label_node(first, False)
    h.label_node(third_node, True)
    waiting.wait_for(
        lambda: not h.launchers("lc", first) and [ready(p) for p in h.live("lc", third_node)] == [True],
        timeout=60,
        what="the launcher moved to the third node",
    )


def test_template_edit_replaces_unbound_launchers_but_not_a_bound_one(
    harness_factory: Callable[..., Harness], third_node: str
) -> None:
    h = harness_factory()
    h.label_node(third_node, True)
    h.create_config("lc", launcher_spec())
    h.create_policy("pool", {"lc": 2})
    old = waiting.wait_for(lambda: h.exactly("lc", third_node, 2), timeout=30, what="2 launchers")
    old_hash = old[0]["metadata"]["annotations"][keys.LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION]
    # Bind one as the dual-pods controller does: one resourceVersion-checked update of the requester annotation.
    chosen = old[0]
    chosen["metadata"]["annotations"][keys.REQUESTER_ANNOTATION] = "uid-r1 requester-1"
    chosen = h.admin.replace(resources.PODS, chosen)
    patch = {"spec": {"podTemplate": {"spec": launcher_spec(activeDeadlineSeconds=100000)}}}
    h.admin.patch(resources.LAUNCHER_CONFIGS, "lc", patch, h.namespace)

    def replaced() -> list[dict[str, Any]]:
        pods = h.live("lc", third_node)
        if len(pods) != 2 or len(h.launchers("lc", third_node)) != 2:
            return []
        new = [
            p
            for p in pods
            if p["metadata"]["annotations"][keys.LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION] != old_hash
        ]
        return pods if len(new) == 1 and not bound(new[0]) else []

    pods = waiting.wait_for(replaced, timeout=30, what="the unbound launcher replaced")
    kept = [p for p in pods if p["metadata"]["uid"] == chosen["metadata"]["uid"]]
    assert len(kept) == 1
    assert kept[0]["metadata"]["annotations"][keys.LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION] == old_hash
    assert old[1]["metadata"]["uid"] not in {p["metadata"]["uid"] for p in pods}
    waiting.wait_for(
        lambda: (h.gauge("lc", "bound"), h.gauge("lc", "unbound"), h.gauge("lc", "stale")) == (1.0, 1.0, 0.0),
        timeout=10,
        what="the gauge: the bound launcher counts as bound, not stale",
    )


def test_deleting_the_launcher_config_removes_its_launchers(
    harness_factory: Callable[..., Harness], third_node: str
) -> None:
    h = harness_factory()
    h.label_node(third_node, True)
    h.create_config("lc", launcher_spec())
    h.create_policy("pool", {"lc": 2})
    waiting.wait_for(lambda: len(h.live("lc", third_node)) == 2, timeout=30, what="2 launchers")
    waiting.wait_for(lambda: h.gauge("lc", "unbound") == 2.0, timeout=10, what="the gauge")
    h.admin.delete(resources.LAUNCHER_CONFIGS, "lc", h.namespace)
    waiting.wait_for(lambda: not h.launchers("lc"), timeout=60, what="the launchers garbage-collected")
    waiting.wait_for(lambda: h.gauge("lc", "unbound") is None, timeout=10, what="the gauge series removed")
    waiting.wait_for(
        lambda: (
            h.status(resources.LAUNCHER_POPULATION_POLICIES, "pool").get("errors")
            == ['LauncherConfig "lc" referenced in CountForLauncher does not exist']
        ),
        timeout=10,
        what="the policy reporting the missing LauncherConfig",
    )


def test_unschedulable_launcher_becomes_stuck_with_label_and_one_event(
    harness_factory: Callable[..., Harness], simnode: RunningSimnode
) -> None:
    h = harness_factory(stuck_scheduling_threshold=3.0)
    node = simnode.node_names[0]
    h.label_node(node, True)
    gate = f"populator-gate.fma/{h.namespace}"
    h.create_config("lc", launcher_spec(nodeSelector={gate: "yes"}))
    h.create_policy("pool", {"lc": 1})
    stuck = waiting.wait_for(
        lambda: [
            p for p in h.launchers("lc", node) if p["metadata"]["labels"].get(keys.LAUNCHER_STUCK_LABEL) == "true"
        ],
        timeout=30,
        what="the launcher labelled stuck",
    )
    assert len(h.launchers("lc", node)) == 1
    name = stuck[0]["metadata"]["name"]
    events = waiting.wait_for(lambda: h.events(names.EVENT_LAUNCHER_STUCK), timeout=10, what="the LauncherStuck Event")
    assert len(events) == 1
    assert events[0]["type"] == "Warning"
    assert events[0]["involvedObject"]["name"] == name
    assert events[0]["message"] == "Launcher is stuck (stuck_scheduling); leaving it in place for investigation"
    assert events[0]["source"]["component"] == "launcher-populator"
    waiting.wait_for(lambda: h.gauge("lc", "stuck_scheduling") == 1.0, timeout=10, what="the stuck gauge")
    assert h.populator.stats().stuck_marks == 1
    assert [p["metadata"]["name"] for p in h.launchers("lc", node)] == [name]

    # Recovery: once the node admits it, the launcher runs, becomes Ready and loses the label; no new Event.
    h.label_node(node, True, key=gate)
    recovered = waiting.wait_for(
        lambda: [
            p for p in h.launchers("lc", node) if ready(p) and keys.LAUNCHER_STUCK_LABEL not in p["metadata"]["labels"]
        ],
        timeout=60,
        what="the launcher Ready and no longer labelled stuck",
    )
    assert [p["metadata"]["name"] for p in recovered] == [name]
    waiting.wait_for(lambda: h.gauge("lc", "unbound") == 1.0, timeout=10, what="the gauge back to unbound")
    assert h.gauge("lc", "stuck_scheduling") == 0.0
    assert len(h.events(names.EVENT_LAUNCHER_STUCK)) == 1
    assert h.populator.stats().stuck_clears == 1


def test_deleting_excess_never_loses_a_concurrent_binding(
    harness_factory: Callable[..., Harness], simnode: RunningSimnode
) -> None:
    h = harness_factory()
    node = simnode.node_names[1]
    h.label_node(node, True)
    h.create_config("lc", launcher_spec(nodeSelector=NOWHERE))
    h.create_policy("pool", {"lc": 2})
    rng = random.Random(7)
    outcomes = {"bound": 0, "lost": 0}
    for _ in range(12):
        pods = waiting.wait_for(
            lambda: h.exactly("lc", node, 2),
            timeout=30,
            what="2 unbound launchers",
        )
        target = max(pods, key=lambda p: p["metadata"]["creationTimestamp"] + p["metadata"]["name"])
        result: dict[str, Any] = {}

        def bind(pod: dict[str, Any] = target, out: dict[str, Any] = result) -> None:
            time.sleep(rng.uniform(0, 0.03))  # noqa: sleep-ok - jitter between the two writers, not a wait
            pod["metadata"]["annotations"][keys.REQUESTER_ANNOTATION] = f"uid-{uuid.uuid4().hex[:6]} r"
            try:
                out["pod"] = h.admin.replace(resources.PODS, pod)
            except (kube.errors.Conflict, kube.errors.NotFound) as exc:
                out["error"] = exc

        binder = threading.Thread(target=bind)
        binder.start()
        h.set_count("pool", "lc", 0)
        binder.join()
        if "pod" in result:
            outcomes["bound"] += 1
            uid = str(result["pod"]["metadata"]["uid"])
            waiting.wait_for(
                functools.partial(lambda kept: [p["metadata"]["uid"] for p in h.launchers("lc", node)] == [kept], uid),
                timeout=30,
                what="only the bound launcher left",
            )
            survivor = h.launchers("lc", node)[0]
            assert not survivor["metadata"].get("deletionTimestamp")
            assert bound(survivor)
            # Unbind (as the controller would) so that the populator may delete it now.
            h.admin.patch(
                resources.PODS,
                survivor["metadata"]["name"],
                {"metadata": {"annotations": {keys.REQUESTER_ANNOTATION: None}}},
                h.namespace,
            )
        else:
            outcomes["lost"] += 1
        waiting.wait_for(lambda: not h.launchers("lc", node), timeout=30, what="every launcher deleted")
        h.set_count("pool", "lc", 2)
    assert outcomes["bound"] + outcomes["lost"] == 12
    # Both writers won some rounds; each lost delete was a precondition conflict or found the Pod bound.
    assert outcomes["bound"] > 0, (outcomes, h.populator.stats())


def test_bad_input_is_reported_and_leaves_affected_pairs_alone(
    harness_factory: Callable[..., Harness], third_node: str
) -> None:
    h = harness_factory()
    h.label_node(third_node, True)
    h.create_config("good", launcher_spec())
    h.create_config("broken", {"containers": [{"name": "not-the-server", "image": "ignored"}]})
    # Launchers that exist for the affected pairs must neither be deleted nor joined by new ones.
    for config in ("broken", "nope"):
        h.admin.create(
            resources.PODS,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"old-{config}",
                    "labels": {
                        keys.COMPONENT_LABEL: "launcher",
                        keys.LAUNCHER_CONFIG_NAME_LABEL: config,
                        keys.NODE_NAME_LABEL: third_node,
                    },
                },
                "spec": {"nodeSelector": NOWHERE, "containers": [{"name": "inference-server", "image": "ignored"}]},
            },
            h.namespace,
        )
    h.create_policy("refs", {"good": 1, "broken": 0, "nope": 0})
    bad_selector = {"matchExpressions": [{"key": h.pool, "operator": "Bogus", "values": ["yes"]}]}
    h.create_policy("selector", {"good": 3}, selector=bad_selector)
    with pytest.raises(kube.errors.Invalid, match="launcherCount"):
        h.create_policy("negative", {"good": -1})

    refs = waiting.wait_for(
        lambda: h.status(resources.LAUNCHER_POPULATION_POLICIES, "refs").get("errors"), timeout=20, what="refs status"
    )
    assert refs == [
        'LauncherConfig "broken" referenced in CountForLauncher is malformed: container "inference-server" not found',
        'LauncherConfig "nope" referenced in CountForLauncher does not exist',
    ]
    refs_conditions = {
        c["type"]: (c["status"], c["reason"])
        for c in h.status(resources.LAUNCHER_POPULATION_POLICIES, "refs")["conditions"]
    }
    assert refs_conditions == {"Accepted": ("True", "Valid"), "ResolvedRefs": ("False", "LauncherConfigMalformed")}
    selector = waiting.wait_for(
        lambda: h.status(resources.LAUNCHER_POPULATION_POLICIES, "selector").get("errors"), timeout=20, what="status"
    )
    assert selector == ["matchExpressions[0]: 'Bogus' is not a valid label selector operator"]
    assert h.status(resources.LAUNCHER_CONFIGS, "broken")["errors"] == ['container "inference-server" not found']
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in h.admin.list_all(resources.EVENTS, h.namespace)[0]}
    waiting.wait_for(
        lambda: (
            {("refs", "LauncherConfigMalformed"), ("selector", "InvalidSelector"), ("broken", "InvalidSpec")}
            <= {(e["involvedObject"]["name"], e["reason"]) for e in h.admin.list_all(resources.EVENTS, h.namespace)[0]}
        ),
        timeout=10,
        what=f"the Warning Events (so far {reasons})",
    )
    # The good pair is unaffected: exactly its count (the unparsable selector's 3 matches nothing).
    waiting.wait_for(lambda: len(h.live("good", third_node)) == 1, timeout=30, what="the good launcher")
    waiting.wait_for(lambda: h.populator.queue.pending() == 0, timeout=10, what="the populator idle")
    assert [p["metadata"]["name"] for p in h.launchers("broken")] == ["old-broken"]
    assert [p["metadata"]["name"] for p in h.launchers("nope")] == ["old-nope"]
    assert len(h.launchers("good")) == 1
