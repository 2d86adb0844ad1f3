"""filter and prioritize as pure functions: wire shapes, neutral answers, class of the best node."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from crds import keys, sleeper_config, sleeper_scoring, sleeper_view
from extender import decision, errors, protocol

KEY = "Cmodel-c"


@dataclasses.dataclass
class FakeWorld:
    """A hand-made cluster model."""

    nodes: dict[str, sleeper_view.NodeView]
    iscs: dict[str, sleeper_config.ServerConfigSummary]
    lcs: dict[str, sleeper_config.LauncherConfigSummary]
    node_reads: int = 0
    relevant: frozenset[str] | None = None

    def node(self, name: str) -> sleeper_view.NodeView | None:
        self.node_reads += 1
        return self.nodes.get(name)

    def server_config(self, namespace: str, name: str) -> sleeper_config.ServerConfigSummary | None:
        return self.iscs.get(f"{namespace}/{name}")

    def launcher_config(self, namespace: str, name: str) -> sleeper_config.LauncherConfigSummary | None:
        return self.lcs.get(f"{namespace}/{name}")

    def relevant_nodes(self, want: sleeper_scoring.Demand) -> frozenset[str] | None:
        return self.relevant


def _view(
    name: str,
    *,
    gpus: int = 2,
    sleeper_on: str | None = None,
    held: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
) -> sleeper_view.NodeView:
    launchers: tuple[sleeper_view.Launcher, ...] = ()
    if sleeper_on is not None:
        instance = sleeper_view.Instance(id="I1i", config_key=KEY, gpus=(sleeper_on,), port=8005, running=True)
        launchers = (
            sleeper_view.Launcher(namespace="team", name=f"l-{name}", config_name="lc", instances=(instance,)),
        )
    return sleeper_view.NodeView(
        name=name,
        labels=labels or {},
        gpu_capacity=gpus,
        gpus=tuple(f"{name}-G{i}" for i in range(gpus)),
        held=frozenset(held),
        unknown_held=0,
        launchers=launchers,
    )


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld(
        nodes={
            "a": _view("a"),
            "b": _view("b", sleeper_on="b-G1", held=("b-G0",)),
            "other-pool": _view("other-pool", labels={"pool": "b"}),
        },
        iscs={
            "team/isc": sleeper_config.ServerConfigSummary(config_key=KEY, launcher_config_name="lc", port=8005),
            "team/pool-a": sleeper_config.ServerConfigSummary(
                config_key="Cpool-c", launcher_config_name="lc-pool-a", port=8005
            ),
        },
        lcs={
            "team/lc": sleeper_config.LauncherConfigSummary(max_instances=2, node_selector={}),
            "team/lc-pool-a": sleeper_config.LauncherConfigSummary(max_instances=2, node_selector={"pool": "a"}),
        },
    )


def _pod(annotations: dict[str, str] | None = None, gpus: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": "r", "namespace": "team", "annotations": annotations or {}},
        "spec": {"containers": [{"name": "inference-server", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
    }


REQUESTER = _pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc"})


def _args(pod: dict[str, Any], names: list[str]) -> protocol.ExtenderArgs:
    return protocol.parse_args(json.dumps({"Pod": pod, "NodeNames": names}).encode())


def test_prioritize_prefers_the_hot_node(world: FakeWorld) -> None:
    answer, outcome = decision.prioritize(_args(REQUESTER, ["a", "b", "ghost"]), world)
    assert answer == [("a", 3), ("b", 10), ("ghost", sleeper_scoring.NEUTRAL_SCORE)]
    assert outcome.best is sleeper_scoring.Placement.CERTAIN_HOT
    assert outcome.fma


def test_non_fma_pod_is_neutral_without_reading_nodes(world: FakeWorld) -> None:
    answer, outcome = decision.prioritize(_args(_pod(), ["a", "b"]), world)
    assert {score for _, score in answer} == {sleeper_scoring.NEUTRAL_SCORE}
    assert not outcome.fma
    result, _ = decision.filter_nodes(_args(_pod(gpus=8), ["a", "b"]), world)
    assert result.node_names == ["a", "b"]
    assert world.node_reads == 0


def test_prioritize_reads_only_relevant_nodes(world: FakeWorld) -> None:
    world.relevant = frozenset({"b"})
    answer, outcome = decision.prioritize(_args(REQUESTER, ["a", "b", "ghost"]), world)
    assert answer == [("a", 3), ("b", 10), ("ghost", 3)]
    assert world.node_reads == 1
    assert outcome.best is sleeper_scoring.Placement.CERTAIN_HOT
    world.relevant = frozenset()
    _, outcome = decision.prioritize(_args(REQUESTER, ["a", "b"]), world)
    assert outcome.best is sleeper_scoring.Placement.COLD


def test_filter_reads_nodes_only_for_a_launcher_config_with_a_node_selector(world: FakeWorld) -> None:
    result, _ = decision.filter_nodes(_args(REQUESTER, ["a", "other-pool"]), world)
    assert result.node_names == ["a", "other-pool"]
    assert world.node_reads == 0


def test_filter_in_node_cache_mode_answers_names(world: FakeWorld) -> None:
    pooled = _pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "pool-a"})
    world.nodes["a"] = _view("a", labels={"pool": "a"})
    result, outcome = decision.filter_nodes(_args(pooled, ["a", "other-pool", "ghost"]), world)
    wire = json.loads(result.model_dump_json(by_alias=True))
    assert wire["NodeNames"] == ["a", "ghost"]
    assert wire["Nodes"] is None
    assert set(wire["FailedAndUnresolvableNodes"]) == {"other-pool"}
    assert wire["FailedNodes"] == {}
    assert wire["Error"] == ""
    assert outcome.nodes == 3


def test_filter_with_full_nodes_echoes_the_passing_objects(world: FakeWorld) -> None:
    items = [{"metadata": {"name": "a"}, "extra": 1}, {"metadata": {"name": "other-pool"}}]
    world.nodes["a"] = _view("a", labels={"pool": "a"})
    pooled = _pod({keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "pool-a"})
    args = protocol.parse_args(json.dumps({"Pod": pooled, "Nodes": {"items": items}}).encode())
    assert not args.cache_capable
    result, _ = decision.filter_nodes(args, world)
    wire = json.loads(result.model_dump_json(by_alias=True))
    assert wire["Nodes"]["items"] == [items[0]]
    assert wire["NodeNames"] is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b"{", "malformed ExtenderArgs", id="not JSON"),
        pytest.param(b"[]", "malformed ExtenderArgs", id="not an object"),
        pytest.param(b'{"NodeNames": ["a"]}', "Pod", id="no Pod"),
        pytest.param(b'{"Pod": {"metadata": {}}}', "NodeNames", id="no candidates"),
        pytest.param(b'{"Pod": {"metadata": {}}, "NodeNames": "a"}', "NodeNames", id="names not a list"),
        pytest.param(b'{"Pod": {"metadata": {}}, "Nodes": {"items": [{}]}}', "metadata.name", id="nameless node"),
        pytest.param(b'{"Pod": {"metadata": {"annotations": {"a": 1}}}, "NodeNames": []}', "annotations", id="bad pod"),
    ],
)
def test_malformed_args_name_the_problem(body: bytes, fragment: str) -> None:
    with pytest.raises(errors.BadExtenderArgs, match=fragment):
        protocol.parse_args(body)


def test_host_priority_wire_names() -> None:
    assert protocol.HostPriority(host="a", score=10).model_dump(by_alias=True) == {"Host": "a", "Score": 10}
    encoded = json.loads(protocol.encode_priorities([("a", 10), ("b", 0)]))
    assert [protocol.HostPriority.model_validate(item).host for item in encoded] == ["a", "b"]
    assert encoded == [{"Host": "a", "Score": 10}, {"Host": "b", "Score": 0}]
    assert json.loads(protocol.encode_priorities([('odd"name', 1)])) == [{"Host": 'odd"name', "Score": 1}]
    with pytest.raises(ValueError, match="outside"):
        protocol.encode_priorities([("a", 11)])
