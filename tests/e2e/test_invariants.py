"""The common checks' pure parts find what they are meant to find (no cluster needed).

If these pass, an empty list from ``invariants.violations`` in a scenario
means the state really was consistent, not that the checks cannot fail.
"""

from __future__ import annotations

from typing import Any

from . import invariants
from .system import P


def _pod(
    name: str,
    *,
    uid: str = "",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    ready: bool = False,
) -> dict[str, Any]:
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    meta = {"name": name, "uid": uid or f"uid-{name}", "labels": labels or {}, "annotations": annotations or {}}
    return {"metadata": meta, "status": status}


def _pair(requester: str = "r1", launcher: str = "l1", gpus: str = "GPU-a") -> list[dict[str, Any]]:
    return [
        _pod(
            requester,
            labels={P + "dual": launcher},
            annotations={P + "inference-server-config": "isc1", P + "accelerators": gpus},
            ready=True,
        ),
        _pod(
            launcher,
            labels={P + "dual": requester, P + "launcher-config-name": "lc"},
            annotations={P + "requester": f"uid-{requester} {requester}", P + "instance-id": "I1"},
        ),
    ]


def test_a_consistent_pair_has_no_violation() -> None:
    pods = _pair()
    assert invariants.binding_violations(pods) == []
    assert invariants.gpu_violations(pods, [("l1", "I1", ["GPU-a"])], []) == []


def test_a_binding_to_a_gone_requester_is_lost() -> None:
    pods = _pair()[1:]
    assert any("which is gone" in v for v in invariants.binding_violations(pods))


def test_a_requester_recorded_by_two_providers_is_duplicated() -> None:
    pods = _pair()
    second = _pod(
        "l2",
        labels={P + "dual": "r1", P + "launcher-config-name": "lc"},
        annotations={P + "requester": "uid-r1 r1"},
    )
    found = invariants.binding_violations([*pods, second])
    assert any("several providers" in v for v in found), found


def test_a_dual_label_without_a_record_and_a_ready_unbound_requester_are_found() -> None:
    requester, launcher = _pair()
    launcher["metadata"]["annotations"].pop(P + "requester")
    found = invariants.binding_violations([requester, launcher])
    assert any("does not record it" in v for v in found), found
    requester["metadata"]["labels"].pop(P + "dual")
    found = invariants.binding_violations([requester, launcher])
    assert any("Ready but bound to no provider" in v for v in found), found


def test_two_awake_engines_on_one_gpu_are_found() -> None:
    pods = _pair() + _pair("r2", "l2", "GPU-b")
    found = invariants.gpu_violations(pods, [("l1", "I1", ["GPU-a"]), ("l2", "I1", ["GPU-a"])], [])
    assert any("GPU GPU-a is used by 2 awake engines" in v for v in found), found
    assert any("its requester r2 holds ['GPU-b']" in v for v in found), found


def test_an_awake_engine_without_a_requester_or_not_the_bound_one_is_found() -> None:
    pods = _pair()
    idle = _pod("l3", labels={P + "launcher-config-name": "lc"})
    found = invariants.gpu_violations([*pods, idle], [("l3", "I9", ["GPU-c"]), ("l1", "I2", ["GPU-a"])], [])
    assert any("l3/I9 is awake" in v and "bound to no requester" in v for v in found), found
    assert any("l1/I2 is awake but is not the launcher's bound instance" in v for v in found), found


def test_two_live_requesters_on_one_gpu_are_found() -> None:
    pods = _pair() + _pair("r2", "l2", "GPU-a")
    found = invariants.gpu_violations(pods, [], [])
    assert any("held by several live requesters" in v for v in found), found
