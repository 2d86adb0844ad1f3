"""Placement hints: the affinity operations, the mutation writing them, and the hint source over a sleeper cache.

The hint source reads a ``kube.sleeper_cache.SleeperCache`` whose watch caches
are replaced by in-memory ones (the cache's own seam), so the ranking seen
here is the extender's, computed from the same kind of cluster state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pydantic
import pytest

import crds
from crds import inference_server_config, keys, sleeper_scoring
from kube import resources, sleeper_cache
from webhook import cluster_facts, mutation, placement_hints, pod_view, server, settings

ISC = keys.INFERENCE_SERVER_CONFIG_ANNOTATION
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
HINTS = placement_hints.Hints(preferred=(("n-hot", 10), ("n-warm", 5), ("n-warm2", 5)), required={"pool": "gpu"})


def _term(weight: int, name: str) -> dict[str, Any]:
    # The API takes exactly one value for a matchFields requirement with In: one term per node.
    return {
        "weight": weight,
        "preference": {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [name]}]},
    }


POOL = {"key": "pool", "operator": "In", "values": ["gpu"]}


def _pod(affinity: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "inference-server"}]}
    if affinity is not None:
        spec["affinity"] = affinity
    return {"metadata": {"name": "p", "namespace": "team"}, "spec": spec}


def test_no_affinity_gets_a_whole_node_affinity(apply_patch) -> None:
    pod = _pod()
    patched = apply_patch(pod, placement_hints.operations(pod, HINTS))
    assert patched["spec"]["affinity"] == {
        "nodeAffinity": {
            REQUIRED: {"nodeSelectorTerms": [{"matchExpressions": [POOL]}]},
            PREFERRED: [_term(10, "n-hot"), _term(5, "n-warm"), _term(5, "n-warm2")],
        }
    }


def test_existing_affinity_is_kept_and_required_terms_are_anded(apply_patch) -> None:
    own_term = _term(30, "mine")
    pod = _pod(
        {
            "podAntiAffinity": {"x": 1},
            "nodeAffinity": {
                PREFERRED: [own_term],
                REQUIRED: {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]},
                    ]
                },
            },
        }
    )
    ops = placement_hints.operations(pod, HINTS)
    assert all(op["op"] in ("add", "replace") and not op["path"].endswith("/-") for op in ops)
    patched = apply_patch(pod, ops)
    node_affinity = patched["spec"]["affinity"]["nodeAffinity"]
    assert patched["spec"]["affinity"]["podAntiAffinity"] == {"x": 1}
    assert node_affinity[PREFERRED] == [own_term, _term(10, "n-hot"), _term(5, "n-warm"), _term(5, "n-warm2")]
    assert node_affinity[REQUIRED]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, POOL]},
        {
            "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}],
            "matchExpressions": [POOL],
        },
    ]
    assert apply_patch(patched, ops) == patched, "whole-array replaces: applying twice changes nothing more"


def test_affinity_without_node_affinity_and_preferred_only(apply_patch) -> None:
    pod = _pod({"podAffinity": {}})
    hints = placement_hints.Hints(preferred=(("n1", 7),))
    patched = apply_patch(pod, placement_hints.operations(pod, hints))
    assert patched["spec"]["affinity"] == {"podAffinity": {}, "nodeAffinity": {PREFERRED: [_term(7, "n1")]}}


@pytest.mark.parametrize(
    "affinity",
    [
        pytest.param("zone-a", id="affinity not an object"),
        pytest.param({"nodeAffinity": []}, id="nodeAffinity not an object"),
    ],
)
def test_shapes_the_api_refuses_get_no_hint(affinity: Any) -> None:
    assert placement_hints.operations(_pod(affinity), HINTS) == []


def test_empty_hints_write_nothing() -> None:
    assert placement_hints.operations(_pod(), placement_hints.Hints()) == []


def test_mutation_writes_hints_only_when_placement_says_so(pod_raw, agent_spec, apply_patch) -> None:
    pod = pod_raw({ISC: "isc"})
    facts = cluster_facts.Facts(isc_exists=True, hints=HINTS)
    hinted = mutation.mutate(pod, mutation.Options(agent=agent_spec, placement="hints"), facts)
    assert hinted.allowed
    patched = apply_patch(pod, list(hinted.patch))
    assert patched["spec"]["affinity"]["nodeAffinity"][PREFERRED][0] == _term(10, "n-hot")
    assert patched["spec"]["schedulerName"] == "fma-scheduler"
    plain = mutation.mutate(pod, mutation.Options(agent=agent_spec, placement="extender"), facts)
    assert "affinity" not in apply_patch(pod, list(plain.patch))["spec"]


# --- the hint source over a sleeper cache -------------------------------------------------------------

Handler = Callable[[str, Mapping[str, Any] | None, Mapping[str, Any] | None], None]


class MemoryCache:
    """An in-memory stand-in for ``kube.WatchCache`` (the sleeper cache's ``cache_factory`` seam)."""

    def __init__(
        self,
        api: object,
        resource: resources.Resource,
        *,
        namespace: str | None = None,
        field_selector: str | None = None,
        indexers: Mapping[str, Callable[[Mapping[str, Any]], Iterable[str]]] | None = None,
    ) -> None:
        self.resource = resource
        self.indexers = dict(indexers or {})
        self.objects: dict[str, dict[str, Any]] = {}
        self.handlers: list[Handler] = []
        self.synced = False

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def start(self) -> None:
        self.synced = True

    def stop(self) -> None:
        self.synced = False

    def wait_synced(self, timeout: float) -> bool:
        return self.synced

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        old = self.objects.get(key)
        self.objects[key] = obj
        for handler in self.handlers:
            handler(key, old, obj)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.objects.get(key)

    def items(self) -> list[dict[str, Any]]:
        return list(self.objects.values())

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        func = self.indexers[index]
        return [obj for _, obj in sorted(self.objects.items()) if value in func(obj)]


CONFIG = inference_server_config.ModelServerConfig(port=8005, options="--model m")
KEY = crds.config_key(CONFIG)


def _launcher(name: str, node: str, inventory: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "labels": {keys.LAUNCHER_CONFIG_NAME_LABEL: "lc", keys.NODE_NAME_LABEL: node},
            "annotations": {keys.INSTANCES_ANNOTATION: inventory},
        },
        "spec": {"nodeName": node, "containers": [{"name": "launcher"}]},
        "status": {"phase": "Running"},
    }


def _inventory(gpu: str) -> str:
    instance = {"id": "I1", "configKey": KEY, "gpus": [gpu], "status": "running", "port": 9000}
    return json.dumps({"v": 1, "revision": 1, "instances": [instance]})


@pytest.fixture
def source() -> tuple[cluster_facts.SleeperHints, dict[str, MemoryCache], list[int]]:
    caches: dict[str, MemoryCache] = {}
    counted: list[int] = []

    def factory(api: object, resource: resources.Resource, **kwargs: Any) -> MemoryCache:
        cache = MemoryCache(api, resource, **kwargs)
        caches[resource.plural] = cache
        return cache

    cache = sleeper_cache.SleeperCache(
        object(),  # type: ignore[arg-type]  # never called: every watch is an in-memory cache
        gpu_map_namespace="fma",
        cache_factory=factory,  # type: ignore[arg-type]  # duck-typed stand-in for kube.WatchCache
        on_malformed_inventory=lambda: counted.append(1),
    )
    policy = sleeper_scoring.Policy(allocation=sleeper_scoring.Allocation.LOWEST_INDEX)
    hints = cluster_facts.SleeperHints(cache, policy, limit=8)
    gpu_map: dict[str, str] = {}
    for node in ("n-hot", "n-warm", "n-bad", "n-empty"):
        caches["nodes"].put(
            {
                "metadata": {"name": node, "labels": {"pool": "gpu"}},
                "status": {"allocatable": {"nvidia.com/gpu": "2"}},
            }
        )
        gpu_map[node] = json.dumps({f"{node}-G0": 0, f"{node}-G1": 1})
    caches["configmaps"].put({"metadata": {"name": "gpu-map", "namespace": "fma"}, "data": gpu_map})
    caches["inferenceserverconfigs"].put(
        {
            "apiVersion": crds.kinds.API_VERSION,
            "kind": "InferenceServerConfig",
            "metadata": {"name": "isc", "namespace": "team-a", "resourceVersion": "1"},
            "spec": {"modelServerConfig": CONFIG.to_raw(), "launcherConfigName": "lc"},
        }
    )
    caches["launcherconfigs"].put(
        {
            "apiVersion": crds.kinds.API_VERSION,
            "kind": "LauncherConfig",
            "metadata": {"name": "lc", "namespace": "team-a", "resourceVersion": "1"},
            "spec": {
                "maxInstances": 2,
                "podTemplate": {
                    "spec": {"containers": [{"name": "inference-server"}], "nodeSelector": {"pool": "gpu"}}
                },
            },
        }
    )
    caches["pods"].put(_launcher("l-hot", "n-hot", _inventory("n-hot-G0")))
    caches["pods"].put(_launcher("l-warm", "n-warm", _inventory("n-warm-G1")))
    caches["pods"].put(_launcher("l-bad", "n-bad", '{"v": 1, "instances": "not a list"'))
    return hints, caches, counted


def test_hints_rank_as_the_extender_and_ignore_a_malformed_inventory(source, pod_raw, agent_spec, apply_patch) -> None:
    hints, caches, counted = source
    pod = pod_raw({ISC: "isc"}, gpus="1")
    view = pod_view.parse(pod)
    assert hints.hints("team-a", view) is None, "no hint before the cache has synced"
    for cache in caches.values():
        cache.start()
    got = hints.hints("team-a", view)
    # n-hot: the lowest-index free GPU is the sleeper's; n-warm: the sleeper sits on G1 but the device
    # plugin would give G0, so a free instance slot only; n-bad's inventory does not parse: it is a
    # launcher with nothing in it, warm like n-warm.
    assert got == placement_hints.Hints(
        preferred=(("n-hot", 10), ("n-bad", 5), ("n-warm", 5)), required={"pool": "gpu"}, nominee="n-hot"
    )
    assert counted == [1]
    decision = mutation.mutate(
        pod, mutation.Options(agent=agent_spec, placement="hints"), cluster_facts.Facts(hints=got)
    )
    assert decision.allowed
    affinity = apply_patch(pod, list(decision.patch))["spec"]["affinity"]["nodeAffinity"]
    assert affinity[PREFERRED] == [_term(10, "n-hot"), _term(5, "n-bad"), _term(5, "n-warm")]


def test_hints_for_non_requesters_and_unknown_iscs(source, pod_raw) -> None:
    hints, caches, _ = source
    for cache in caches.values():
        cache.start()
    assert hints.hints("team-a", pod_view.parse(pod_raw(None))) is None
    unknown = hints.hints("team-a", pod_view.parse(pod_raw({ISC: "nope"})))
    assert unknown == placement_hints.Hints()


def test_a_failing_hint_source_never_fails_the_admission(source, pod_raw, caplog) -> None:
    hints, caches, _ = source
    for cache in caches.values():
        cache.start()
    caches["nodes"].objects["n-hot"] = {"metadata": {"name": "n-hot"}, "status": "broken"}
    caches["pods"].put(_launcher("l-hot2", "n-hot", _inventory("n-hot-G1")))  # invalidates n-hot's view
    assert hints.hints("team-a", pod_view.parse(pod_raw({ISC: "isc"}, gpus="1"))) is None
    assert "placement hint failed" in caplog.text


def test_placement_settings() -> None:
    assert settings.Settings().placement == "extender"
    assert not settings.Settings().hints
    chosen = settings.Settings(placement="hints", gpu_allocation="unknown", placement_namespace="fma")
    assert chosen.hints
    assert server.mutation_options(chosen).placement == "hints"
    with pytest.raises(pydantic.ValidationError, match="needs lookups"):
        settings.Settings(placement="hints", lookups=False)
    with pytest.raises(pydantic.ValidationError, match="placement"):
        settings.Settings(placement="nearest")


# --- nominate: the gate and the annotation --------------------------------------------------------------

GATE = {"name": keys.NOMINATE_GATE}
NOMINATED = placement_hints.Hints(preferred=(("n-hot", 10), ("n-warm", 5)), nominee="n-hot")


def test_the_nominee_is_the_best_node_only_when_it_is_certain_hot(source, pod_raw) -> None:
    hints, caches, _ = source
    for cache in caches.values():
        cache.start()
    view = pod_view.parse(pod_raw({ISC: "isc"}, gpus="1"))
    hinted = hints.hints("team-a", view)
    assert hinted is not None
    assert hinted.nominee == "n-hot"
    # With an unknown allocation policy, n-hot's two free GPUs are not exactly the sleeper's: likely-hot, first
    # in the hints, but no node to nominate.
    unsure = cluster_facts.SleeperHints(
        hints.cache, sleeper_scoring.Policy(allocation=sleeper_scoring.Allocation.UNKNOWN), limit=8
    ).hints("team-a", view)
    assert unsure is not None
    assert unsure.preferred[0][0] == "n-hot"
    assert 0 < unsure.preferred[0][1] < sleeper_scoring.CERTAIN_HOT_SCORE
    assert unsure.nominee is None
    # Two GPUs cannot be the one-GPU sleeper's: no certain-hot node.
    assert hints.hints("team-a", pod_view.parse(pod_raw({ISC: "isc"}, gpus="2"))).nominee is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("gates", "expected"),
    [
        pytest.param(None, [GATE], id="no-gates"),
        pytest.param([], [GATE], id="empty"),
        pytest.param([{"name": "example.com/quota"}], [{"name": "example.com/quota"}, GATE], id="users-gate-kept"),
    ],
)
def test_the_gate_is_appended_to_the_users_gates(pod_raw, agent_spec, apply_patch, gates, expected) -> None:
    pod = pod_raw({ISC: "isc"})
    if gates is not None:
        pod["spec"]["schedulingGates"] = gates
    options = mutation.Options(agent=agent_spec, placement="hints", nominate="gate")
    decision = mutation.mutate(pod, options, cluster_facts.Facts(hints=NOMINATED))
    assert decision.allowed
    assert decision.nominated_node == "n-hot"
    patched = apply_patch(pod, list(decision.patch))
    assert patched["spec"]["schedulingGates"] == expected
    assert patched["metadata"]["annotations"][keys.NOMINATED_NODE_ANNOTATION] == "n-hot"
    assert patched["spec"]["affinity"]["nodeAffinity"][PREFERRED][0] == _term(10, "n-hot"), "the hints stay"
    assert mutation.mutate(patched, options, cluster_facts.Facts(hints=NOMINATED)).patch == (), "second pass"


@pytest.mark.parametrize(
    ("placement", "nominate", "hints"),
    [
        pytest.param("hints", "off", NOMINATED, id="nominate-off"),
        pytest.param("hints", "gate", placement_hints.Hints(preferred=(("n-likely", 8),)), id="no-certain-hot-node"),
        pytest.param("hints", "plugin", placement_hints.Hints(preferred=(("n-likely", 8),)), id="plugin-no-node"),
        pytest.param("hints", "gate", None, id="cache-not-synced"),
        pytest.param("extender", "gate", NOMINATED, id="placement-extender"),
        pytest.param("extender", "plugin", NOMINATED, id="plugin-placement-extender"),
    ],
)
def test_no_gate_without_a_node_to_nominate(pod_raw, agent_spec, apply_patch, placement, nominate, hints) -> None:
    pod = pod_raw({ISC: "isc"})
    options = mutation.Options(agent=agent_spec, placement=placement, nominate=nominate)
    decision = mutation.mutate(pod, options, cluster_facts.Facts(hints=hints))
    assert decision.allowed
    assert decision.nominated_node is None
    patched = apply_patch(pod, list(decision.patch))
    assert "schedulingGates" not in patched["spec"]
    assert keys.NOMINATED_NODE_ANNOTATION not in patched["metadata"]["annotations"]


@pytest.mark.parametrize(
    "gates",
    [
        pytest.param("not a list", id="not-a-list"),
        pytest.param(["bare string"], id="item-not-an-object"),
        pytest.param([{"name": keys.NOMINATE_GATE}], id="already-gated"),
    ],
)
def test_gates_of_another_shape_get_no_nomination(pod_raw, agent_spec, apply_patch, gates) -> None:
    pod = pod_raw({ISC: "isc"})
    pod["spec"]["schedulingGates"] = gates
    assert placement_hints.gate_operations(pod) == []
    options = mutation.Options(agent=agent_spec, placement="hints", nominate="gate")
    decision = mutation.mutate(pod, options, cluster_facts.Facts(hints=NOMINATED))
    assert decision.nominated_node is None
    assert all(op["path"] != "/spec/schedulingGates" for op in decision.patch)


@pytest.mark.parametrize("gates", [None, [{"name": "example.com/quota"}]], ids=["no-gates", "users-gate"])
def test_plugin_mode_records_the_node_without_a_gate(pod_raw, agent_spec, apply_patch, gates) -> None:
    pod = pod_raw({ISC: "isc"})
    if gates is not None:
        pod["spec"]["schedulingGates"] = gates
    options = mutation.Options(agent=agent_spec, placement="hints", nominate="plugin")
    decision = mutation.mutate(pod, options, cluster_facts.Facts(hints=NOMINATED))
    assert decision.allowed
    assert decision.nominated_node == "n-hot"
    patched = apply_patch(pod, list(decision.patch))
    assert patched["metadata"]["annotations"][keys.NOMINATED_NODE_ANNOTATION] == "n-hot"
    assert patched["spec"].get("schedulingGates") == gates, "no gate of ours; the user's stay as they were"
    assert patched["spec"]["affinity"]["nodeAffinity"][PREFERRED][0] == _term(10, "n-hot"), "the hints stay"
    assert mutation.mutate(patched, options, cluster_facts.Facts(hints=NOMINATED)).patch == (), "second pass"


def test_nominate_settings_and_flag(capsys) -> None:
    chosen = settings.Settings(placement="hints", nominate="gate")
    assert server.mutation_options(chosen).nominate == "gate"
    assert settings.Settings(placement="hints+extender", nominate="plugin").nominate == "plugin"
    assert settings.Settings().nominate == "off"
    # The setting was a switch before "plugin" existed: booleans still mean gate and off.
    assert settings.Settings(placement="hints", nominate=True).nominate == "gate"
    assert settings.Settings(placement="hints", nominate=False).nominate == "off"
    for mode in ("gate", "plugin"):
        with pytest.raises(pydantic.ValidationError, match="nominate needs placement 'hints' or 'hints\\+extender'"):
            settings.Settings(nominate=mode)
    with pytest.raises(pydantic.ValidationError, match="nominate"):
        settings.Settings(placement="hints", nominate="always")
    from webhook import __main__ as cli  # noqa: PLC0415 - the CLI module is only needed here

    assert cli.main(["--nominate"]) == 2, "the bare flag means gate, which needs hints"
    assert "nominate needs placement" in capsys.readouterr().err
    assert cli.main(["--nominate", "plugin"]) == 2
    assert "got placement 'extender'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--placement", "hints", "--nominate", "sometimes"])
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


class _FixedFacts:
    """A fact source (the app's own seam) that always answers the same facts."""

    def __init__(self, facts: cluster_facts.Facts) -> None:
        self.facts = facts

    def blocks(self, pod: pod_view.PodView) -> bool:
        return False

    def gather(self, namespace: str, pod: pod_view.PodView) -> cluster_facts.Facts:
        return self.facts


def test_the_metric_counts_nominated_requesters(pod_raw, agent_spec) -> None:
    import anyio  # noqa: PLC0415 - only this test drives the app
    import httpx  # noqa: PLC0415

    from webhook import app as app_mod  # noqa: PLC0415
    from webhook import metrics  # noqa: PLC0415

    counters = metrics.Metrics()
    state = app_mod.AppState(
        options=mutation.Options(agent=agent_spec, placement="hints", nominate="gate"),
        facts=_FixedFacts(cluster_facts.Facts(hints=NOMINATED)),
        metrics=counters,
        max_body_bytes=1 << 20,
    )
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team-a",
            "operation": "CREATE",
            "object": pod_raw({ISC: "isc"}),
        },
    }

    async def post() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app_mod.create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://webhook") as client:
            response = await client.post("/mutate", json=review)
        result: dict[str, Any] = response.json()
        return result

    answer = anyio.run(post)
    assert answer["response"]["allowed"]
    text = counters.exposition().decode()
    assert 'fma_webhook_placement_hints_total{outcome="nominated"} 1.0' in text
