"""The dual-pods controller's decisions, as tables that run without a cluster.

See docs/controllers.md, "How the dual-pods controller works".

Each row builds a small world — requesters, launchers, providers, ISC and LC
in ``kube.testing.FakeClient`` (caches fed by ``sync()``), and the node's
agents behind ``httpx.MockTransport`` — runs the real controller's reconcile
of one item, and checks the writes and agent calls it made.  The fakes sit
at our own seams (the Kubernetes adapter, the HTTP transport), so what is
tested is the controller as it runs, minus the apiserver and the processes.

Tables: launcher selection through the controller, binding writes, the
bound path, relay once, deletion ordering and the exogenous-deletion relay,
sleep vs delete at unbind, obsolete-instance GC, direct-mode reuse and
eviction.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import httpx
import prometheus_client
import pytest

import kube
from controllers import dpc_metrics, dual_pods, launcher_binding, launcher_template, node_agents
from crds import binding_record, hashes, inference_server_config, keys, names, routing_metadata
from devcluster import samples
from kube import resources, testing

NS = "ns"
NODE = "n1"
GPUS = ["GPU-0"]
PORT = 8005
REQ_IP = "127.0.10.1"


# --- the node: requester agent, launchers and engines behind one MockTransport ----------------------------------


@dataclasses.dataclass
class Instance:
    state: dict[str, Any]
    sleeping: bool | None = False
    """``/is_sleeping``; None while the engine loads (the call fails)."""


@dataclasses.dataclass
class FakeNode:
    """Everything on the node that answers HTTP; records each call as ``(verb, target)``."""

    gpus: list[str] = dataclasses.field(default_factory=lambda: list(GPUS))
    launchers: dict[str, dict[str, Instance]] = dataclasses.field(default_factory=dict)
    """Launcher IP → instance ID → instance."""
    calls: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    broken_get: bool = False

    def _engine(self, ip: str, port: int) -> Instance | None:
        for inst in self.launchers.get(ip, {}).values():
            notes = inst.state.get("annotations") or {}
            if str(notes.get(names.INSTANCE_INFERENCE_PORT)) == str(port):
                return inst
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        ip, port, path = request.url.host, request.url.port or 80, request.url.path
        if path.startswith("/v1/"):
            return self._requester(request.method, path)
        if port == names.LAUNCHER_PORT:
            return self._launcher(ip, request.method, path, request)
        return self._engine_call(ip, port, request.method, path)

    def _requester(self, method: str, path: str) -> httpx.Response:
        if path == "/v1/dual-pods/accelerators":
            return httpx.Response(200, json=self.gpus)
        if path == "/v1/dual-pods/accelerator-memory-usage":
            return httpx.Response(200, json=dict.fromkeys(self.gpus, 0))
        self.calls.append((method, path.removeprefix("/v1/")))
        return httpx.Response(200, json={})

    def _launcher(self, ip: str, method: str, path: str, request: httpx.Request) -> httpx.Response:
        table = self.launchers.setdefault(ip, {})
        instance_id = path.removeprefix("/v2/vllm/instances").strip("/")
        if not instance_id:
            states = [i.state for i in table.values()]
            return httpx.Response(200, json={"revision": 1, "total_instances": len(states), "instances": states})
        self.calls.append((method, f"instance {instance_id}"))
        if method == "GET":
            if self.broken_get:
                return httpx.Response(500, text="broken")
            inst = table.get(instance_id)
            return httpx.Response(200, json=inst.state) if inst else httpx.Response(404, json={})
        if method == "PUT":
            body = json.loads(request.content)
            table[instance_id] = Instance({"instance_id": instance_id, "status": "running", **body}, sleeping=None)
            return httpx.Response(201, json={})
        if method == "DELETE":
            table.pop(instance_id, None)
            return httpx.Response(200, json={})
        return httpx.Response(405)

    def _engine_call(self, ip: str, port: int, method: str, path: str) -> httpx.Response:
        inst = self._engine(ip, port)
        if path == "/is_sleeping":
            if inst is None or inst.sleeping is None:
                return httpx.Response(503, text="loading")
            return httpx.Response(200, json={"is_sleeping": inst.sleeping})
        self.calls.append((method, path))
        if inst is not None:
            inst.sleeping = path == "/sleep"
        return httpx.Response(200, json={})


# --- the world --------------------------------------------------------------------------------------------------


class World:
    """A controller over a ``FakeClient`` and a ``FakeNode``; ``reconcile_*`` run one item."""

    def __init__(self, *, max_instances: int = 2, sleeper_limit: int = 1) -> None:
        self.api = testing.FakeClient(field_manager=names.DPC_FIELD_MANAGER)
        self.node = FakeNode()
        self.registry = prometheus_client.CollectorRegistry()
        self.now = 1000.0
        pods = self.api.cache(resources.PODS, indexers=dual_pods.POD_INDEXERS)
        self.controller = dual_pods.DualPodsController(
            self.api,
            settings=dual_pods.DPCSettings(namespace=NS, sleeper_limit=sleeper_limit),
            pods=pods,
            nodes=self.api.cache(resources.NODES),
            iscs=self.api.cache(resources.INFERENCE_SERVER_CONFIGS),
            lcs=self.api.cache(resources.LAUNCHER_CONFIGS),
            gpu_maps=self.api.cache(resources.CONFIG_MAPS),
            agents=node_agents.NodeAgents(httpx.Client(transport=httpx.MockTransport(self.node.handle))),
            events=kube.EventRecorder(self.api, component=names.DPC_FIELD_MANAGER, instance="test"),
            metrics=dpc_metrics.DPCMetrics(self.registry),
            monotonic=lambda: self.now,
            wall_clock=lambda: self.now,
        )
        self.api.seed(resources.NODES, {"metadata": {"name": NODE}, "spec": {}})
        lc = samples.launcher_config("lc", gpu_map_file="/gpu-map", log_dir="/logs", max_instances=max_instances)
        self.lc = self.api.seed(resources.LAUNCHER_CONFIGS, {**lc, "metadata": {**lc["metadata"], "namespace": NS}})
        self.isc("isc1")
        self._ips = iter(f"127.0.20.{i}" for i in range(1, 250))

    # objects

    def isc(self, name: str, *, options: str = "--model m") -> dict[str, Any]:
        body = samples.inference_server_config(name, launcher_config_name="lc", options=options, port=PORT)
        body["metadata"]["namespace"] = NS
        existing = self.api.stored(resources.INFERENCE_SERVER_CONFIGS, name, NS)
        if existing is not None:
            return self.api.patch(resources.INFERENCE_SERVER_CONFIGS, name, {"spec": body["spec"]}, NS)
        return self.api.seed(resources.INFERENCE_SERVER_CONFIGS, body)

    def instance_id(self, isc: str = "isc1") -> str:
        raw = self.api.stored(resources.INFERENCE_SERVER_CONFIGS, isc, NS)
        parsed = inference_server_config.InferenceServerConfig.model_validate(raw)
        return hashes.instance_id(parsed.spec.model_server_config, GPUS)

    def requester(self, name: str = "r1", *, ready: bool = False, deleting: bool = False) -> dict[str, Any]:
        template = samples.requester_template("isc1", "app")
        meta = {**template["metadata"], "name": name, "namespace": NS, "finalizers": [keys.REQUESTER_FINALIZER]}
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return self.api.seed(
            resources.PODS,
            {
                "metadata": meta,
                "spec": {**template["spec"], "nodeName": NODE},
                "status": {
                    "podIP": REQ_IP,
                    "containerStatuses": [
                        {
                            "name": names.INFERENCE_SERVER_CONTAINER,
                            "ready": ready,
                            "restartCount": 0,
                            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                        }
                    ],
                },
            },
        )

    def launcher(
        self,
        name: str,
        *instances: Instance,
        ready: bool = True,
        bound_to: dict[str, Any] | None = None,
        extra_notes: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = launcher_template.specialise(self.lc, NODE, auth_token_secret=None)
        ip = next(self._ips)
        body["metadata"].pop("generateName", None)
        body["metadata"]["name"] = name
        notes = body["metadata"].setdefault("annotations", {})
        notes.update(extra_notes or {})
        if bound_to is not None:
            notes[keys.REQUESTER_ANNOTATION] = binding_record.format_record(
                bound_to["metadata"]["uid"], bound_to["metadata"]["name"]
            )
            body["metadata"]["finalizers"] = [keys.PROVIDER_FINALIZER]
        body["status"] = {
            "podIP": ip,
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
        self.node.launchers[ip] = {i.state["instance_id"]: i for i in instances}
        return self.api.seed(resources.PODS, body)

    def instance(self, instance_id: str, *, isc: str = "isc1", port: int = PORT, **kw: Any) -> Instance:
        state = {
            "instance_id": instance_id,
            "status": kw.pop("status", "running"),
            "gpu_uuids": kw.pop("gpus", list(GPUS)),
            "annotations": {names.INSTANCE_ISC_NAME: isc, names.INSTANCE_INFERENCE_PORT: str(port)},
        }
        return Instance(state, **kw)

    def bound_launcher(self, name: str, requester: dict[str, Any], *instances: Instance) -> dict[str, Any]:
        """A launcher already committed to ``requester``'s instance (the four bound annotations)."""
        raw = self.api.stored(resources.INFERENCE_SERVER_CONFIGS, "isc1", NS)
        isc = inference_server_config.InferenceServerConfig.model_validate(raw)
        want = launcher_binding.desired(isc, GPUS)
        return self.launcher(name, *instances, bound_to=requester, extra_notes=want.bound_annotations())

    # running

    def reconcile_requester(self, requester: dict[str, Any]) -> float | None:
        self.api.sync()
        self.api.writes.clear()
        return self.controller.reconcile(NODE, ("requester", requester["metadata"]["uid"]))

    def pod(self, name: str) -> dict[str, Any]:
        pod = self.api.stored(resources.PODS, name, NS)
        assert pod is not None, name
        return pod

    def pod_writes(self) -> list[tuple[str, str]]:
        return [(w.verb, w.name) for w in self.api.writes if w.plural == "pods"]


# --- launcher selection and binding through the controller ------------------------------------------------------


def _target(world: World) -> str:
    return world.instance_id()


SelectionSetup = Callable[[World, dict[str, Any]], None]


def _hot(w: World, r: dict[str, Any]) -> None:
    w.launcher("a", w.instance("Iotheri", port=8006))
    w.launcher("b", w.instance(_target(w), sleeping=True))


def _capacity(w: World, r: dict[str, Any]) -> None:
    w.launcher("a", w.instance("Iotheri", port=8006))


def _reclaim(w: World, r: dict[str, Any]) -> None:
    w.launcher("a", w.instance("Ioldi", port=8006), w.instance("Inewi", port=8007))
    w.controller.state.discover("a", ["Ioldi", "Inewi"], 1.0)
    w.controller.state.touch("a", "Inewi", 5.0)


def _port_clash(w: World, r: dict[str, Any]) -> None:
    w.launcher("a", w.instance("Iclashi"))


def _none(w: World, r: dict[str, Any]) -> None:
    pass


def _not_ready(w: World, r: dict[str, Any]) -> None:
    w.launcher("a", ready=False)


def _bound_elsewhere(w: World, r: dict[str, Any]) -> None:
    other = w.requester("other")
    w.launcher("a", w.instance(_target(w), sleeping=True), bound_to=other)


def _stopped_garbage(w: World, r: dict[str, Any]) -> None:
    w.launcher("a", w.instance("Ideadi", port=8006, status="stopped"), w.instance("Inoporti", port=8007))
    w.node.launchers[w.pod("a")["status"]["podIP"]]["Inoporti"].state["annotations"].pop(names.INSTANCE_INFERENCE_PORT)


@pytest.mark.parametrize(
    ("setup", "path", "bound", "deleted", "created"),
    [
        pytest.param(_hot, "hot", "b", [], False, id="hot-sleeper-wins"),
        pytest.param(_capacity, "warm", "a", [], False, id="capacity-warm"),
        pytest.param(_reclaim, "warm", "a", ["Ioldi"], False, id="reclaim-deletes-lru-victim-first"),
        pytest.param(_port_clash, "warm", "a", ["Iclashi"], False, id="port-clash-reclaims"),
        pytest.param(_none, "cold", None, [], True, id="no-launcher-creates-bound"),
        pytest.param(_not_ready, None, None, [], False, id="not-ready-waits"),
        pytest.param(_bound_elsewhere, "cold", None, [], True, id="bound-launcher-never-chosen"),
        pytest.param(_stopped_garbage, "warm", "a", ["Ideadi", "Inoporti"], False, id="garbage-cleaned-then-capacity"),
    ],
)
def test_launcher_selection_and_bind(
    setup: SelectionSetup, path: str | None, bound: str | None, deleted: list[str], created: bool
) -> None:
    w = World()
    r = w.requester()
    setup(w, r)
    w.reconcile_requester(r)
    memo = w.controller.state.peek_requester(r["metadata"]["uid"])
    assert memo is not None
    assert memo.path == path
    assert [c for c in w.node.calls if c[0] == "DELETE"] == [("DELETE", f"instance {i}") for i in deleted]
    assert not [c for c in w.node.calls if c[0] in ("PUT", "POST")], "binding never creates or wakes"
    creates = [w_ for w_ in w.api.writes if w_.verb == "create" and w_.plural == "pods"]
    assert bool(creates) == created
    if created:
        body = creates[0].body["metadata"]
        assert body["annotations"][keys.REQUESTER_ANNOTATION].startswith(r["metadata"]["uid"])
        assert body["annotations"][keys.INSTANCE_ID_ANNOTATION] == w.instance_id()
        assert body["labels"][keys.DUAL_LABEL] == "r1"
        assert keys.PROVIDER_FINALIZER in body["finalizers"]
    if bound is not None:
        (bind,) = [x for x in w.api.writes if x.verb == "patch" and x.name == bound]
        meta = bind.body["metadata"]
        assert meta["resourceVersion"], "the bind write carries the resourceVersion read"
        assert set(keys.BOUND_LAUNCHER_ANNOTATIONS) <= set(meta["annotations"])
        assert meta["labels"] == {keys.DUAL_LABEL: "r1"}
        assert keys.PROVIDER_FINALIZER in meta["finalizers"]
    elif not created:
        assert w.pod_writes() == []


def test_a_bind_on_a_stale_launcher_conflicts_and_is_retried() -> None:
    w = World()
    r = w.requester()
    w.launcher("a")
    w.api.sync()
    w.api.patch(resources.PODS, "a", {"metadata": {"labels": {"someone": "else"}}}, NS)  # the cache lags
    with pytest.raises(Exception, match="conflicted"):
        w.controller.reconcile(NODE, ("requester", r["metadata"]["uid"]))
    assert keys.REQUESTER_ANNOTATION not in w.pod("a")["metadata"].get("annotations", {})


# --- the bound path ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BoundRow:
    instance: str
    """``none``, ``loading``, ``sleeping``, ``awake`` or ``stopped``."""
    instance_known: bool = False
    path: str | None = None
    launcher_ready: bool = True
    launcher_failed: bool = False


def _bound_world(row: BoundRow) -> tuple[World, dict[str, Any], dict[str, Any]]:
    w = World()
    r = w.requester()
    target = w.instance_id()
    instances = []
    if row.instance != "none":
        sleeping = {"loading": None, "sleeping": True, "awake": False, "stopped": False}[row.instance]
        status = "stopped" if row.instance == "stopped" else "running"
        instances.append(w.instance(target, sleeping=sleeping, status=status))
    launcher = w.bound_launcher("a", r, *instances)
    if not row.launcher_ready:
        w.api.patch(resources.PODS, "a", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, NS)
    if row.launcher_failed:
        w.api.patch(resources.PODS, "a", {"status": {"phase": "Failed"}}, NS)
    memo = w.controller.state.requester(r["metadata"]["uid"])
    memo.instance_known = row.instance_known
    memo.path = row.path  # type: ignore[assignment]
    return w, r, launcher


@pytest.mark.parametrize(
    ("row", "calls", "requester_deleted", "look_again"),
    [
        pytest.param(
            BoundRow("none"), [("GET", "instance"), ("PUT", "instance")], False, True, id="missing-never-seen-creates"
        ),
        pytest.param(BoundRow("none", instance_known=True), [("GET", "instance")], True, False, id="vanished-deletes"),
        pytest.param(BoundRow("stopped", path="hot"), [("GET", "instance")], True, False, id="stopped-deletes"),
        pytest.param(
            BoundRow("stopped", path="warm"),
            [("GET", "instance"), ("GET", "instance")],
            True,
            False,
            id="stopped-before-answering-is-a-start-failure",
        ),
        pytest.param(BoundRow("loading", path="warm"), [("GET", "instance")], False, True, id="loading-waits"),
        pytest.param(
            BoundRow("sleeping"),
            [("GET", "instance"), ("POST", "/wake_up"), ("POST", "become-ready")],
            False,
            True,
            id="sleeping-wakes-then-relays",
        ),
        pytest.param(
            BoundRow("awake", path="warm"),
            [("GET", "instance"), ("POST", "become-ready")],
            False,
            True,
            id="awake-relays",
        ),
        pytest.param(BoundRow("awake", launcher_ready=False), [], False, False, id="launcher-not-ready-waits"),
        pytest.param(BoundRow("awake", launcher_failed=True), [], True, False, id="launcher-failed-deletes"),
    ],
)
def test_bound_path(row: BoundRow, calls: list[tuple[str, str]], requester_deleted: bool, look_again: bool) -> None:
    w, r, _ = _bound_world(row)
    delay = w.reconcile_requester(r)
    assert [(verb, target.split(" ")[0]) for verb, target in w.node.calls] == [
        (verb, target.split(" ")[0]) for verb, target in calls
    ]
    deleted = ("delete", "r1") in w.pod_writes()
    assert deleted == requester_deleted
    assert (delay is not None) == look_again
    requester = w.api.stored(resources.PODS, "r1", NS)
    if requester is not None and not deleted:
        assert requester["metadata"]["labels"][keys.DUAL_LABEL] == "a"
        assert requester["metadata"]["labels"][keys.INSTANCE_LABEL] == w.instance_id()


def test_serving_marks_the_launcher_awake_with_the_committed_routing_once() -> None:
    w = World()
    w.isc("isc1")
    raw = w.api.stored(resources.INFERENCE_SERVER_CONFIGS, "isc1", NS)
    assert raw is not None
    r = w.requester()
    launcher = w.bound_launcher("a", r, w.instance(w.instance_id(), sleeping=False))
    committed = routing_metadata.RoutingMetadata(labels={"route": "isc1"})
    w.api.patch(
        resources.PODS,
        "a",
        {"metadata": {"annotations": {keys.ISC_ROUTING_METADATA_ANNOTATION: committed.format()}}},
        NS,
    )
    w.reconcile_requester(r)
    (mark,) = [x for x in w.api.writes if x.name == "a"]
    assert mark.body["metadata"]["labels"] == {keys.SLEEPING_LABEL: keys.SLEEPING_FALSE, "route": "isc1"}
    w.reconcile_requester(r)
    assert [x for x in w.api.writes if x.name == "a"] == [], "a second pass writes the launcher no more"
    assert launcher["metadata"]["name"] == "a"


def _publish(w: World, launcher: str, *, ready: bool | None, listed: bool = True) -> None:
    """The launcher's publisher writes its inventory on its Pod (``launcher.inventory``)."""
    entry: dict[str, Any] = {"id": w.instance_id(), "isc": "isc1", "gpus": GPUS, "port": PORT, "status": "running"}
    if ready is not None:
        entry["ready"] = ready
    value = json.dumps({"v": 1, "revision": 1, "instances": [entry] if listed else []})
    w.api.patch(resources.PODS, launcher, {"metadata": {"annotations": {keys.INSTANCES_ANNOTATION: value}}}, NS)


def test_a_starting_engine_is_not_polled_when_its_launcher_publishes_readiness() -> None:
    w = World()
    r = w.requester()
    w.bound_launcher("a", r)
    _publish(w, "a", ready=None, listed=False)  # the launcher publishes its (empty) inventory
    assert w.reconcile_requester(r) == 5.0, "created; the launcher's publication brings us back"
    assert [c[0] for c in w.node.calls] == ["GET", "PUT"]
    w.node.calls.clear()
    _publish(w, "a", ready=None)  # CREATED published: running, engine not ready
    assert w.reconcile_requester(r) == 5.0
    assert [c[0] for c in w.node.calls] == ["GET"], "the engine is not asked while it is starting"
    w.node.calls.clear()
    w.node.launchers[w.pod("a")["status"]["podIP"]][w.instance_id()].sleeping = False
    _publish(w, "a", ready=True)  # the launcher saw /health answer
    w.reconcile_requester(r)
    assert w.node.calls == [("GET", f"instance {w.instance_id()}"), ("POST", "become-ready")]


def test_a_launcher_that_publishes_nothing_is_polled() -> None:
    w = World()
    r = w.requester()
    w.bound_launcher("a", r)
    assert w.reconcile_requester(r) == 0.25
    delays = [w.reconcile_requester(r) for _ in range(4)]
    assert delays == [0.25, 0.375, 0.5625, 0.84375], "from 0.25 s growing by 1.5"


# --- relay once -------------------------------------------------------------------------------------------------


def test_ready_is_relayed_once_until_the_requester_shows_it() -> None:
    w = World()
    r = w.requester()
    w.bound_launcher("a", r, w.instance(w.instance_id(), sleeping=False))
    first = w.reconcile_requester(r)
    assert w.node.calls.count(("POST", "become-ready")) == 1
    assert first is not None, "looks again after the grace in case the relay was lost"
    w.now += 1.0
    w.reconcile_requester(r)  # e.g. the launcher's own Pod event, before the requester turns Ready
    assert w.node.calls.count(("POST", "become-ready")) == 1
    w.now += 10.0
    w.reconcile_requester(r)  # the relay never showed: made again
    assert w.node.calls.count(("POST", "become-ready")) == 2
    w.api.patch(
        resources.PODS,
        "r1",
        {"status": {"containerStatuses": [{**r["status"]["containerStatuses"][0], "ready": True}]}},
        NS,
    )
    assert w.reconcile_requester(r) is None
    assert w.node.calls.count(("POST", "become-ready")) == 2
    sample = w.registry.get_sample_value(
        "fma_actuation_seconds_count",
        {"exported_namespace": NS, "path": "hot", "instancesDeleted": "0", "isc_name": "isc1"},
    )
    assert sample == 1.0, "the actuation is observed once"


# --- deletion ordering and relays -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "calls", "finalizer_gone", "launcher_kept"),
    [
        pytest.param("none", [], True, False, id="unbound-finalizer-goes"),
        pytest.param("healthy", [("GET", "instance"), ("POST", "/sleep")], True, True, id="unbind-then-finalizer"),
        pytest.param("troubled", [], False, True, id="troubled-provider-deleted-finalizer-held"),
        pytest.param("deleting", [], False, False, id="deleting-provider-released-and-waited-for"),
    ],
)
def test_requester_deletion(
    provider: str, calls: list[tuple[str, str]], finalizer_gone: bool, launcher_kept: bool
) -> None:
    w = World()
    r = w.requester(deleting=True)
    if provider != "none":
        w.bound_launcher("a", r, w.instance(w.instance_id(), sleeping=False))
        if provider == "troubled":
            w.api.patch(resources.PODS, "a", {"status": {"phase": "Failed"}}, NS)
        if provider == "deleting":
            w.api.delete(resources.PODS, "a", NS)
    w.reconcile_requester(r)
    assert [(v, t.split(" ")[0]) for v, t in w.node.calls] == [(v, t.split(" ")[0]) for v, t in calls]
    requester = w.api.stored(resources.PODS, "r1", NS)
    fins = (requester or {"metadata": {}})["metadata"].get("finalizers") or []
    assert (keys.REQUESTER_FINALIZER not in fins) == finalizer_gone
    assert (requester is None) == finalizer_gone, "a deleted requester goes with its finalizer"
    launcher = w.api.stored(resources.PODS, "a", NS)
    assert (launcher is not None) == launcher_kept, "kept, or held by its finalizer while being deleted"
    if provider == "healthy":
        assert launcher is not None
        notes = launcher["metadata"].get("annotations") or {}
        assert keys.REQUESTER_ANNOTATION not in notes
        assert not set(keys.BOUND_LAUNCHER_ANNOTATIONS) & set(notes)
        assert launcher["metadata"]["labels"][keys.SLEEPING_LABEL] == keys.SLEEPING_TRUE
        assert keys.PROVIDER_FINALIZER not in (launcher["metadata"].get("finalizers") or [])
        writes = w.pod_writes()
        assert writes.index(("patch", "a")) < writes.index(("patch", "r1")), "unbind before the finalizer goes"
    if provider == "troubled":
        assert ("delete", "a") in w.pod_writes()
    if provider == "deleting":
        assert ("patch", "a") in w.pod_writes(), "its provider finalizer dropped: the deletion completes"


def test_an_exogenous_provider_deletion_deletes_the_requester_then_releases_the_provider() -> None:
    w = World()
    r = w.requester()
    w.bound_launcher("a", r, w.instance(w.instance_id(), sleeping=False))
    w.api.delete(resources.PODS, "a", NS)
    w.reconcile_requester(r)
    writes = w.pod_writes()
    assert writes.index(("delete", "r1")) < writes.index(("patch", "a"))
    assert w.api.stored(resources.PODS, "a", NS) is None, "released: its finalizer was the last"
    assert w.pod("r1")["metadata"].get("deletionTimestamp"), "held by its finalizer"
    w.reconcile_requester(r)
    assert w.pod_writes() == [("patch", "r1")], "once the deletion shows, nothing is bound: the finalizer goes"
    assert w.api.stored(resources.PODS, "r1", NS) is None


# --- sleep vs delete at unbind ----------------------------------------------------------------------------------


def _isc_changed(w: World) -> None:
    w.isc("isc1", options="--model other")


def _isc_deleted(w: World) -> None:
    w.api.delete(resources.INFERENCE_SERVER_CONFIGS, "isc1", NS)


def _check_fails(w: World) -> None:
    w.node.broken_get = True


def _unchanged(w: World) -> None:
    pass


@pytest.mark.parametrize(
    ("change", "instance_status", "outcome"),
    [
        pytest.param(_unchanged, "running", "sleep", id="same-id-sleeps"),
        pytest.param(_isc_changed, "running", "delete", id="obsolete-id-deleted"),
        pytest.param(_isc_deleted, "running", "delete", id="isc-gone-deleted"),
        pytest.param(_check_fails, "running", "sleep", id="failed-check-falls-back-to-sleep"),
        pytest.param(_unchanged, "stopped", "nothing", id="stopped-neither"),
        pytest.param(_unchanged, "gone", "nothing", id="already-gone-neither"),
    ],
)
def test_sleep_or_delete_at_unbind(change: Callable[[World], None], instance_status: str, outcome: str) -> None:
    w = World()
    r = w.requester(deleting=True)
    instances = [] if instance_status == "gone" else [w.instance(w.instance_id(), status=instance_status)]
    w.bound_launcher("a", r, *instances)
    change(w)
    w.reconcile_requester(r)
    verbs = {v for v, t in w.node.calls if v != "GET"}
    assert verbs == {"nothing": set(), "sleep": {"POST"}, "delete": {"DELETE"}}[outcome]
    notes = w.pod("a")["metadata"].get("annotations") or {}
    assert keys.REQUESTER_ANNOTATION not in notes, "released whatever happened to the engine"


# --- obsolete GC ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("isc", "gpus", "sleeping", "same_id", "deleted"),
    [
        pytest.param("isc1", GPUS, True, False, True, id="obsolete-sleeper-deleted"),
        pytest.param("isc1", GPUS, False, False, False, id="obsolete-awake-left-to-unbind"),
        pytest.param("isc2", GPUS, True, False, False, id="other-isc-kept"),
        pytest.param("isc1", [], True, False, False, id="no-gpus-kept"),
        pytest.param("isc1", GPUS, True, True, False, id="current-id-kept"),
    ],
)
def test_obsolete_gc(isc: str, gpus: list[str], sleeping: bool, same_id: bool, deleted: bool) -> None:
    w = World()
    old_id = w.instance_id()
    if not same_id:
        w.isc("isc1", options="--model newer")
    w.launcher("a", w.instance(old_id if not same_id else w.instance_id(), isc=isc, gpus=gpus, sleeping=sleeping))
    w.api.sync()
    w.controller.reconcile(NODE, ("gc", "isc1"))
    assert (("DELETE", f"instance {old_id if not same_id else w.instance_id()}") in w.node.calls) == deleted


# --- direct mode: reuse and eviction ----------------------------------------------------------------------------


def _direct_world(sleeper_limit: int = 1) -> tuple[World, dict[str, Any]]:
    w = World(sleeper_limit=sleeper_limit)
    w.api.seed(
        resources.CONFIG_MAPS,
        {"metadata": {"name": names.GPU_MAP_CONFIGMAP, "namespace": NS}, "data": {NODE: json.dumps({"GPU-0": 0})}},
    )
    template = samples.direct_requester_template("app", "m")
    r = w.api.seed(
        resources.PODS,
        {
            "metadata": {**template["metadata"], "name": "d1", "namespace": NS},
            "spec": {**template["spec"], "nodeName": NODE},
            "status": {"podIP": REQ_IP},
        },
    )
    return w, r


def _direct_body(w: World, r: dict[str, Any]) -> dict[str, Any]:
    from controllers import direct_mode  # noqa: PLC0415  # only the direct-mode rows need it

    nominal = direct_mode.nominal_pod(r, NODE)
    return direct_mode.provider_body(nominal, requester=r, node=NODE, indices=[0], gpus=GPUS)


def _sleeper(w: World, r: dict[str, Any], name: str, *, stamp: str, nominal: str | None = None) -> None:
    body = _direct_body(w, r)
    meta = body["metadata"]
    meta.pop("generateName")
    meta["name"] = name
    meta["namespace"] = NS
    meta["annotations"].pop(keys.REQUESTER_ANNOTATION)
    meta["labels"].pop(keys.DUAL_LABEL)
    meta["labels"][keys.SLEEPING_LABEL] = keys.SLEEPING_TRUE
    meta["finalizers"] = []
    meta["creationTimestamp"] = stamp
    if nominal is not None:
        meta["annotations"][keys.NOMINAL_ANNOTATION] = nominal
    body["status"] = {"podIP": "127.0.30.1", "phase": "Running"}
    w.api.seed(resources.PODS, body)


@pytest.mark.parametrize(
    ("sleepers", "limit", "expected"),
    [
        pytest.param([], 1, ("create",), id="none-creates-cold"),
        pytest.param([("s1", "2026-01-01T00:00:01Z", None)], 1, ("bind", "s1"), id="same-nominal-reused-hot"),
        pytest.param(
            [("s1", "2026-01-01T00:00:01Z", None), ("s2", "2026-01-01T00:00:09Z", None)],
            2,
            ("bind", "s2"),
            id="most-recent-sleeper-preferred",
        ),
        pytest.param([("o1", "2026-01-01T00:00:01Z", "Nother")], 1, ("create",), id="other-nominal-within-limit"),
        pytest.param(
            [("o1", "2026-01-01T00:00:01Z", "Nother"), ("o2", "2026-01-01T00:00:05Z", "Nother2")],
            1,
            ("evict", "o1"),
            id="over-limit-evicts-lru-first",
        ),
    ],
)
def test_direct_mode_reuse_and_eviction(
    sleepers: list[tuple[str, str, str | None]], limit: int, expected: tuple[str, ...]
) -> None:
    w, r = _direct_world(sleeper_limit=limit)
    for name, stamp, nominal in sleepers:
        _sleeper(w, r, name, stamp=stamp, nominal=nominal)
    w.reconcile_requester(r)
    writes = w.pod_writes()
    if expected[0] == "create":
        assert [v for v, _ in writes if v in ("create", "delete")] == ["create"]
    elif expected[0] == "bind":
        assert ("patch", expected[1]) in writes
        notes = w.pod(expected[1])["metadata"]["annotations"]
        assert notes[keys.REQUESTER_ANNOTATION].startswith(r["metadata"]["uid"])
        assert not [v for v, _ in writes if v == "create"]
    else:
        assert [x for x in writes if x[0] in ("create", "delete")] == [("delete", expected[1])]


# --- the ISC status item (docs/api.md, "Status") ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lc_exists", "resolved"),
    [pytest.param(True, "True", id="lc-resolves"), pytest.param(False, "False", id="lc-missing")],
)
def test_isc_status_is_written_once(lc_exists: bool, resolved: str) -> None:
    w = World()
    if not lc_exists:
        w.api.delete(resources.LAUNCHER_CONFIGS, "lc", NS)
    w.api.sync()
    w.controller.reconcile("", ("isc-status", "isc1"))
    (write,) = [x for x in w.api.writes if x.plural == "inferenceserverconfigs"]
    conditions = {c["type"]: c["status"] for c in write.body["status"]["conditions"]}
    assert conditions == {"Accepted": "True", "ResolvedRefs": resolved}
    w.api.writes.clear()
    w.api.sync()
    w.controller.reconcile("", ("isc-status", "isc1"))
    assert w.api.writes == [], "nothing changed: no second write"
