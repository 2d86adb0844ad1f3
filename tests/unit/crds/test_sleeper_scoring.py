"""The shared scoring's GPU-allocation policy, the demand constructor and ``rank`` (the hints' order)."""

from __future__ import annotations

import pytest

from crds import sleeper_config, sleeper_scoring, sleeper_view

KEY = "Cmodel-a-c"
NS = "team"
LOWEST = sleeper_scoring.Policy(allocation=sleeper_scoring.Allocation.LOWEST_INDEX)
UNKNOWN = sleeper_scoring.Policy(allocation=sleeper_scoring.Allocation.UNKNOWN)


def _want(gpus: int = 1, key: str | None = KEY) -> sleeper_scoring.Demand:
    return sleeper_scoring.Demand(
        namespace=NS,
        pod="req",
        mode=sleeper_scoring.Mode.LAUNCHER,
        gpus=gpus,
        config_key=key,
        launcher_config="lc",
        port=8005,
        launcher_config_summary=sleeper_config.LauncherConfigSummary(max_instances=2, node_selector={}),
    )


def _node(
    name: str = "n",
    *,
    gpus: int = 4,
    sleeper_on: tuple[str, ...] = (),
    held: tuple[str, ...] = (),
    unknown: int = 0,
    mapped: int | None = None,
) -> sleeper_view.NodeView:
    launchers: tuple[sleeper_view.Launcher, ...] = ()
    if sleeper_on:
        instance = sleeper_view.Instance(id="I1", config_key=KEY, gpus=sleeper_on, port=9000, running=True)
        launchers = (sleeper_view.Launcher(namespace=NS, name=f"l-{name}", config_name="lc", instances=(instance,)),)
    return sleeper_view.NodeView(
        name=name,
        labels={},
        gpu_capacity=gpus,
        gpus=tuple(f"G{i}" for i in range(gpus if mapped is None else mapped)),
        held=frozenset(held),
        unknown_held=unknown,
        launchers=launchers,
    )


@pytest.mark.parametrize(
    ("node", "want", "lowest", "unknown"),
    [
        pytest.param(_node(sleeper_on=("G0",)), _want(), 1.0, 0.25, id="sleeper on the lowest free GPU"),
        pytest.param(_node(sleeper_on=("G2",)), _want(), 0.0, 0.25, id="sleeper above a free lower GPU"),
        pytest.param(
            _node(sleeper_on=("G2",), held=("G0", "G1")), _want(), 1.0, 0.5, id="lower GPUs held: the pick is it"
        ),
        pytest.param(_node(sleeper_on=("G0", "G1")), _want(2), 1.0, 1 / 6, id="two GPUs, the lowest pair"),
        pytest.param(_node(sleeper_on=("G1", "G2")), _want(2), 0.0, 1 / 6, id="two GPUs, not the lowest pair"),
        pytest.param(
            _node(sleeper_on=("G1",), unknown=1),
            _want(),
            pytest.approx(0.75 / 3),
            pytest.approx(0.75 / 3),
            id="unknown holders: lowest-index falls back to the uniform model",
        ),
        pytest.param(
            _node(sleeper_on=("G0",), mapped=3),
            _want(),
            pytest.approx(1 / 3),
            pytest.approx(1 / 3),
            id="gpu-map shorter than allocatable: falls back",
        ),
        pytest.param(_node(gpus=1, sleeper_on=("G0",)), _want(), 1.0, 1.0, id="only one free GPU: certain under both"),
    ],
)
def test_hot_chance_by_allocation(
    node: sleeper_view.NodeView, want: sleeper_scoring.Demand, lowest: float, unknown: float
) -> None:
    assert sleeper_scoring.hot_chance(want, node, sleeper_scoring.Allocation.LOWEST_INDEX) == lowest
    assert sleeper_scoring.hot_chance(want, node, sleeper_scoring.Allocation.UNKNOWN) == unknown


def test_certain_hot_only_when_the_policy_hands_over_the_sleepers_gpus() -> None:
    on_lowest = _node(sleeper_on=("G0",))
    above = _node(sleeper_on=("G3",))
    assert sleeper_scoring.assess(_want(), on_lowest, LOWEST).placement is sleeper_scoring.Placement.CERTAIN_HOT
    assert sleeper_scoring.assess(_want(), on_lowest, UNKNOWN).placement is sleeper_scoring.Placement.LIKELY_HOT
    # Under lowest-index the device plugin gives G0, not the sleeper's G3: the node is only warm
    # (the launcher has a free slot), never hot.
    assert sleeper_scoring.assess(_want(), above, LOWEST).placement is sleeper_scoring.Placement.WARM
    assert sleeper_scoring.assess(_want(), above, UNKNOWN).placement is sleeper_scoring.Placement.LIKELY_HOT


def test_lowest_index_pick() -> None:
    assert sleeper_scoring.lowest_index_pick(_node(held=("G0", "G2")), 2) == frozenset({"G1", "G3"})
    assert sleeper_scoring.lowest_index_pick(_node(held=("G0", "G2")), 3) is None
    assert sleeper_scoring.lowest_index_pick(_node(unknown=1), 1) is None
    assert sleeper_scoring.lowest_index_pick(_node(), 0) is None


def test_the_default_policy_assumes_nothing() -> None:
    assert sleeper_scoring.Policy().allocation is sleeper_scoring.Allocation.UNKNOWN
    assert sleeper_scoring.ALLOCATIONS == ("lowest-index", "unknown")


def test_rank_orders_as_assess_scores_and_drops_the_baseline() -> None:
    nodes = [
        _node("cold"),
        _node("warm-b", sleeper_on=("G3",)),
        _node("hot", sleeper_on=("G0",)),
        _node("warm-a", sleeper_on=("G2",)),
    ]
    ranked = sleeper_scoring.rank(_want(), nodes, LOWEST)
    assert [(name, item.score) for name, item in ranked] == [("hot", 10), ("warm-a", 5), ("warm-b", 5)]
    for name, item in ranked:
        node = next(n for n in nodes if n.name == name)
        assert item == sleeper_scoring.assess(_want(), node, LOWEST)
    assert [name for name, _ in sleeper_scoring.rank(_want(), nodes, LOWEST, limit=1)] == ["hot"]
    assert sleeper_scoring.rank(_want(key=None), nodes, LOWEST) == []


def _isc(namespace: str, name: str) -> sleeper_config.ServerConfigSummary | None:
    if name != "isc":
        return None
    return sleeper_config.ServerConfigSummary(config_key=KEY, launcher_config_name="lc", port=8005)


def _lc(namespace: str, name: str) -> sleeper_config.LauncherConfigSummary | None:
    return sleeper_config.LauncherConfigSummary(max_instances=3, node_selector={"gpu": "yes"})


@pytest.mark.parametrize(
    ("isc_name", "direct", "config_key", "expected"),
    [
        pytest.param(
            "isc",
            False,
            None,
            sleeper_scoring.Demand(
                namespace=NS,
                pod="p",
                mode=sleeper_scoring.Mode.LAUNCHER,
                gpus=2,
                config_key=KEY,
                launcher_config="lc",
                port=8005,
                launcher_config_summary=sleeper_config.LauncherConfigSummary(
                    max_instances=3, node_selector={"gpu": "yes"}
                ),
            ),
            id="launcher mode, known ISC",
        ),
        pytest.param(
            "missing",
            False,
            None,
            sleeper_scoring.Demand(namespace=NS, pod="p", mode=sleeper_scoring.Mode.LAUNCHER, gpus=2, config_key=None),
            id="launcher mode, unknown ISC",
        ),
        pytest.param(
            None,
            True,
            "Ck",
            sleeper_scoring.Demand(namespace=NS, pod="p", mode=sleeper_scoring.Mode.DIRECT, gpus=2, config_key="Ck"),
            id="direct mode",
        ),
        pytest.param(None, False, None, None, id="not a requester"),
    ],
)
def test_demand(
    isc_name: str | None, direct: bool, config_key: str | None, expected: sleeper_scoring.Demand | None
) -> None:
    got = sleeper_scoring.demand(
        namespace=NS, pod="p", gpus=2, isc_name=isc_name, direct=direct, config_key=config_key, isc=_isc, lc=_lc
    )
    assert got == expected
