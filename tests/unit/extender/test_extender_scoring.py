"""The documented scoring over hand-made node states: classes, device-plugin chance, eviction penalty."""

from __future__ import annotations

import math

import pytest

from crds import sleeper_config, sleeper_scoring, sleeper_view

KEY = "Cmodel-a-c"
OTHER = "Cmodel-b-c"
NS = "team"


def _want(
    gpus: int = 1,
    *,
    key: str | None = KEY,
    port: int | None = 8005,
    max_instances: int = 2,
    mode: sleeper_scoring.Mode = sleeper_scoring.Mode.LAUNCHER,
    selector: dict[str, str] | None = None,
) -> sleeper_scoring.Demand:
    return sleeper_scoring.Demand(
        namespace=NS,
        pod="req",
        mode=mode,
        gpus=gpus,
        config_key=key,
        launcher_config="lc" if mode is sleeper_scoring.Mode.LAUNCHER else None,
        port=port if mode is sleeper_scoring.Mode.LAUNCHER else None,
        launcher_config_summary=sleeper_config.LauncherConfigSummary(
            max_instances=max_instances, node_selector=selector or {}
        )
        if mode is sleeper_scoring.Mode.LAUNCHER
        else None,
    )


def _instance(key: str, gpus: tuple[str, ...], *, port: int = 8005, running: bool = True) -> sleeper_view.Instance:
    return sleeper_view.Instance(id=f"I-{key}-{'-'.join(gpus)}", config_key=key, gpus=gpus, port=port, running=running)


def _launcher(
    *instances: sleeper_view.Instance, name: str = "l1", lc: str = "lc", ns: str = NS
) -> sleeper_view.Launcher:
    return sleeper_view.Launcher(namespace=ns, name=name, config_name=lc, instances=instances)


def _node(
    gpus: int = 2,
    *,
    held: tuple[str, ...] = (),
    unknown: int = 0,
    launchers: tuple[sleeper_view.Launcher, ...] = (),
    direct: tuple[sleeper_view.Sleeper, ...] = (),
    labels: dict[str, str] | None = None,
) -> sleeper_view.NodeView:
    return sleeper_view.NodeView(
        name="n",
        labels=labels or {},
        gpu_capacity=gpus,
        gpus=tuple(f"G{i}" for i in range(gpus)),
        held=frozenset(held),
        unknown_held=unknown,
        launchers=launchers,
        direct_sleepers=direct,
    )


@pytest.mark.parametrize(
    ("node", "want", "placement", "score"),
    [
        pytest.param(
            _node(2, held=("G0",), launchers=(_launcher(_instance(KEY, ("G1",))),)),
            _want(),
            sleeper_scoring.Placement.CERTAIN_HOT,
            10,
            id="certain-hot: the only free GPU is the sleeper's",
        ),
        pytest.param(
            _node(2, launchers=(_launcher(_instance(KEY, ("G1",))),)),
            _want(),
            sleeper_scoring.Placement.LIKELY_HOT,
            8,
            id="likely-hot: 1 of 2 free GPUs (chance 1/2)",
        ),
        pytest.param(
            _node(4, launchers=(_launcher(_instance(KEY, ("G1",))),)),
            _want(),
            sleeper_scoring.Placement.LIKELY_HOT,
            7,
            id="likely-hot: 1 of 4 free GPUs (chance 1/4)",
        ),
        pytest.param(
            _node(8, launchers=(_launcher(_instance(KEY, ("G1",))),)),
            _want(),
            sleeper_scoring.Placement.LIKELY_HOT,
            6,
            id="likely-hot: 1 of 8 free GPUs (chance 1/8)",
        ),
        pytest.param(
            _node(2, launchers=(_launcher(_instance(KEY, ("G0", "G1"))),)),
            _want(gpus=2),
            sleeper_scoring.Placement.CERTAIN_HOT,
            10,
            id="certain-hot: two-GPU sleeper, both free, two wanted",
        ),
        pytest.param(
            _node(2, held=("G1",), launchers=(_launcher(_instance(KEY, ("G1",))),)),
            _want(),
            sleeper_scoring.Placement.RECLAIM,
            4,
            id="sleeper's GPU held: not hot; it holds the port, so reclaim (same model: no penalty)",
        ),
        pytest.param(
            _node(2, launchers=(_launcher(_instance(OTHER, ("G1",), port=9000)),)),
            _want(),
            sleeper_scoring.Placement.WARM,
            5,
            id="other model's sleeper on another port, room for one more: warm",
        ),
        pytest.param(
            _node(2, launchers=(_launcher(_instance(OTHER, ("G1",), port=8005)),)),
            _want(),
            sleeper_scoring.Placement.RECLAIM,
            3,
            id="port taken by another model: reclaim minus one eviction",
        ),
        pytest.param(
            _node(2, launchers=(_launcher(_instance(OTHER, ("G1",), port=8005, running=False)),)),
            _want(),
            sleeper_scoring.Placement.WARM,
            5,
            id="a stopped instance neither takes the port nor a slot",
        ),
        pytest.param(
            _node(2, launchers=(_launcher(_instance(KEY, ("G1",), port=8005)),), held=("G1",)),
            _want(max_instances=1),
            sleeper_scoring.Placement.RECLAIM,
            4,
            id="full launcher whose only victim is the same model: reclaim without penalty",
        ),
        pytest.param(
            _node(
                4,
                launchers=(
                    _launcher(
                        _instance(OTHER, ("G1",), port=9001),
                        _instance("Cthird-c", ("G2",), port=9002),
                        _instance("Cfourth-c", ("G3",), port=9003),
                    ),
                ),
            ),
            _want(max_instances=2),
            sleeper_scoring.Placement.RECLAIM,
            2,
            id="three others in a 2-slot launcher: two evictions",
        ),
        pytest.param(
            _node(2, launchers=(_launcher(_instance(OTHER, ("G1",), port=9000), lc="other-lc"),)),
            _want(),
            sleeper_scoring.Placement.COLD,
            3,
            id="only a launcher of another LauncherConfig: cold",
        ),
        pytest.param(
            _node(2, launchers=(_launcher(lc="lc", ns="elsewhere"),)),
            _want(),
            sleeper_scoring.Placement.COLD,
            3,
            id="a launcher in another namespace does not count",
        ),
        pytest.param(_node(2), _want(), sleeper_scoring.Placement.COLD, 3, id="empty node: cold"),
        pytest.param(
            _node(2, launchers=(_launcher(),)),
            _want(key=None),
            sleeper_scoring.Placement.NEUTRAL,
            sleeper_scoring.NEUTRAL_SCORE,
            id="unknown ISC: neutral",
        ),
    ],
)
def test_placement_classes(
    node: sleeper_view.NodeView, want: sleeper_scoring.Demand, placement: str, score: int
) -> None:
    judged = sleeper_scoring.assess(want, node)
    assert (judged.placement, judged.score) == (placement, score)


def test_classes_are_strictly_ordered_on_one_node_shape() -> None:
    sleeper = _launcher(_instance(KEY, ("G1",)))
    scores = [
        sleeper_scoring.assess(_want(), _node(2, held=("G0",), launchers=(sleeper,))).score,
        sleeper_scoring.assess(_want(), _node(2, launchers=(sleeper,))).score,
        sleeper_scoring.assess(_want(), _node(2, launchers=(_launcher(),))).score,
        sleeper_scoring.assess(_want(max_instances=1), _node(2, launchers=(sleeper,), held=("G1",))).score,
        sleeper_scoring.assess(_want(), _node(2)).score,
    ]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)


def test_unknown_node_scores_neutral_and_passes_filter() -> None:
    assert sleeper_scoring.assess(_want(), None).score == sleeper_scoring.NEUTRAL_SCORE
    assert sleeper_scoring.rejection(_want(), None) is None


@pytest.mark.parametrize(
    ("free", "unknown", "expected"),
    [
        pytest.param(1, 0, 1.0, id="one free, it is the sleeper's"),
        pytest.param(2, 0, 1 / 2, id="two free"),
        pytest.param(4, 0, 1 / 4, id="four free"),
        # 4 free-looking, 1 held by a Pod whose GPUs are unknown: the sleeper's GPU is still
        # free with probability C(3,1)/C(4,1) = 3/4, then picked among 3 with 1/3.
        pytest.param(4, 1, 3 / 4 * 1 / 3, id="four free-looking, one taken by an unknown holder"),
        pytest.param(2, 1, 1 / 2, id="two free-looking, one unknown holder: a coin flip"),
    ],
)
def test_device_plugin_chance_single_gpu(free: int, unknown: int, expected: float) -> None:
    node = _node(free, unknown=unknown, launchers=(_launcher(_instance(KEY, ("G0",))),))
    assert math.isclose(sleeper_scoring.hot_chance(_want(), node), expected)


def test_device_plugin_chance_counts_each_distinct_sleeper_set() -> None:
    two = _launcher(_instance(KEY, ("G0",)), _instance(KEY, ("G2",), port=8006), name="l2")
    same_set_twice = _launcher(_instance(KEY, ("G0",)), name="l3")
    node = _node(4, launchers=(two, same_set_twice))
    assert math.isclose(sleeper_scoring.hot_chance(_want(), node), 2 / 4)


def test_device_plugin_chance_for_two_gpus() -> None:
    node = _node(4, launchers=(_launcher(_instance(KEY, ("G0", "G1"))),))
    assert math.isclose(sleeper_scoring.hot_chance(_want(gpus=2), node), 1 / math.comb(4, 2))
    assert sleeper_scoring.assess(_want(gpus=2), node).placement is sleeper_scoring.Placement.LIKELY_HOT


def test_no_hot_when_fewer_free_than_wanted_or_wrong_size_or_namespace() -> None:
    sleeper = _launcher(_instance(KEY, ("G0",)))
    assert sleeper_scoring.hot_chance(_want(), _node(1, unknown=1, launchers=(sleeper,))) == 0.0
    assert sleeper_scoring.hot_chance(_want(gpus=2), _node(2, launchers=(sleeper,))) == 0.0
    elsewhere = _launcher(_instance(KEY, ("G0",)), ns="elsewhere")
    assert sleeper_scoring.hot_chance(_want(), _node(2, launchers=(elsewhere,))) == 0.0


def test_direct_mode_hot_and_sleeper_budget_penalty() -> None:
    mine = sleeper_view.Sleeper(namespace=NS, config_key=KEY, gpus=frozenset({"G0"}), provider="team/p1")
    hot = sleeper_scoring.assess(_want(mode=sleeper_scoring.Mode.DIRECT), _node(1, direct=(mine,)))
    assert hot.placement is sleeper_scoring.Placement.CERTAIN_HOT

    def crowd(gpu: str, count: int) -> tuple[sleeper_view.Sleeper, ...]:
        return tuple(
            sleeper_view.Sleeper(
                namespace=NS, config_key=f"C{gpu}{i}c", gpus=frozenset({gpu}), provider=f"team/{gpu}{i}"
            )
            for i in range(count)
        )

    policy = sleeper_scoring.Policy(sleeper_limit=2)
    unknown_key = _want(mode=sleeper_scoring.Mode.DIRECT, key=None)
    # Both GPUs carry 3 sleepers (limit 2): creating a provider evicts one.
    crowded = _node(2, direct=crowd("G0", 3) + crowd("G1", 3))
    judged = sleeper_scoring.assess(unknown_key, crowded, policy)
    assert (judged.placement, judged.score, judged.evictions) == (sleeper_scoring.Placement.COLD, 2, 1)
    # One GPU is within the limit: the best pick evicts nothing.
    relaxed = _node(2, direct=crowd("G0", 3) + crowd("G1", 2))
    assert sleeper_scoring.assess(unknown_key, relaxed, policy).score == sleeper_scoring.COLD_SCORE


def test_penalty_is_capped() -> None:
    many = _launcher(*(_instance(f"Cx{i}c", (f"G{i}",), port=9000 + i) for i in range(8)))
    judged = sleeper_scoring.assess(_want(max_instances=2), _node(8, launchers=(many,)))
    assert judged.placement is sleeper_scoring.Placement.RECLAIM
    assert judged.evictions == 7
    assert judged.score == sleeper_scoring.RECLAIM_SCORE - sleeper_scoring.PENALTY_CAP


def test_filter_rejects_only_certain_failures() -> None:
    # Capacity is the scheduler's own filter (it runs before the extender): not judged here.
    assert sleeper_scoring.rejection(_want(gpus=4), _node(2)) is None
    assert not sleeper_scoring.node_check_needed(_want())
    gated = _want(selector={"gpu": "h100"})
    assert sleeper_scoring.node_check_needed(gated)
    rejected = sleeper_scoring.rejection(gated, _node(2, labels={"gpu": "a100"}))
    assert rejected is not None
    assert rejected.unresolvable
    assert "nodeSelector" in rejected.reason
    assert sleeper_scoring.rejection(gated, _node(2, labels={"gpu": "h100"})) is None
    assert sleeper_scoring.rejection(gated, _node(2, labels={"gpu": "a100"}, launchers=(_launcher(),))) is None
    assert not sleeper_scoring.node_check_needed(_want(mode=sleeper_scoring.Mode.DIRECT))


def test_baseline_equals_the_assessment_of_an_uninteresting_node() -> None:
    for want in (
        _want(),
        _want(key=None),
        _want(mode=sleeper_scoring.Mode.DIRECT),
        _want(mode=sleeper_scoring.Mode.DIRECT, key=None),
    ):
        assert sleeper_scoring.baseline(want) == sleeper_scoring.assess(want, _node(2)), want
