"""crds.pod_view: the one reading of what kind of Pod something is (docs/protocol.md, "Roles of Pods")."""

from __future__ import annotations

from typing import Any

import pytest

from crds import keys, pod_view

ISC = keys.INFERENCE_SERVER_CONFIG_ANNOTATION
PATCH = keys.SERVER_PATCH_ANNOTATION


def _pod(
    annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "annotations": annotations, "labels": labels},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("annotations", "mode"),
    [
        pytest.param({ISC: "llama"}, "launcher", id="isc"),
        pytest.param({ISC: ""}, "launcher", id="empty-isc-is-still-launcher-mode"),
        pytest.param({PATCH: "spec: {}"}, "direct", id="server-patch"),
        pytest.param({PATCH: ""}, None, id="empty-server-patch-is-absent"),
        pytest.param({PATCH: "  "}, "direct", id="blank-server-patch-is-non-empty"),
        pytest.param({ISC: "llama", PATCH: "spec: {}"}, "launcher", id="both-isc-wins"),
        pytest.param({ISC: "", PATCH: "spec: {}"}, "launcher", id="empty-isc-and-patch-isc-wins"),
        pytest.param({keys.ACTUATION_ANNOTATION: "direct"}, None, id="actuation-alone-is-not-yet-a-requester"),
        pytest.param({}, None, id="none"),
        pytest.param(None, None, id="null-annotations"),
    ],
)
def test_requester_mode(annotations: dict[str, str] | None, mode: str | None) -> None:
    view = pod_view.PodView(_pod(annotations))
    assert view.mode == mode
    assert view.is_requester is (mode is not None)
    assert pod_view.is_requester(view.raw) is (mode is not None)
    assert pod_view.requester_mode(annotations or {}) == mode


def test_isc_name_is_the_raw_value_even_when_empty() -> None:
    assert pod_view.PodView(_pod({ISC: "llama"})).isc_name == "llama"
    assert pod_view.PodView(_pod({ISC: ""})).isc_name == ""
    assert pod_view.PodView(_pod({PATCH: "x"})).isc_name is None


@pytest.mark.parametrize(
    ("labels", "launcher"),
    [
        pytest.param({keys.LAUNCHER_CONFIG_NAME_LABEL: "lc"}, True, id="lc-label"),
        pytest.param({keys.LAUNCHER_CONFIG_NAME_LABEL: ""}, True, id="presence-not-value"),
        pytest.param({keys.COMPONENT_LABEL: keys.COMPONENT_LAUNCHER}, False, id="component-alone"),
        pytest.param(None, False, id="no-labels"),
    ],
)
def test_is_launcher(labels: dict[str, str] | None, launcher: bool) -> None:
    assert pod_view.PodView(_pod(labels=labels)).is_launcher is launcher
    assert pod_view.is_launcher(_pod(labels=labels)) is launcher


def test_provider_node_is_the_hostname_selector_not_node_name() -> None:
    pinned = _pod(nodeSelector={"kubernetes.io/hostname": "n1"}, nodeName="n2")
    assert pod_view.provider_node(pinned) == "n1"
    assert pod_view.PodView(pinned).node_name == "n2"
    assert pod_view.provider_node(_pod(nodeName="n2")) is None
    assert pod_view.provider_node(_pod(nodeSelector={"kubernetes.io/hostname": ""})) is None
    assert pod_view.provider_node({"spec": None}) is None


def test_view_reads_the_raw_dict_without_copying() -> None:
    raw = _pod({ISC: "llama"}, {"a": "b"})
    raw["metadata"]["finalizers"] = ["f"]
    view = pod_view.PodView(raw)
    assert view.annotations is raw["metadata"]["annotations"]
    assert view.labels is raw["metadata"]["labels"]
    raw["metadata"]["annotations"].pop(ISC)
    assert not view.is_requester, "the view follows the dict it wraps"
    assert (view.name, view.namespace, view.uid, list(view.finalizers)) == ("p", "ns", "u-1", ["f"])
    assert repr(view) == "PodView(ns/p)"


def test_missing_and_malformed_fields_read_as_empty() -> None:
    view = pod_view.PodView({"metadata": "junk", "status": None})
    assert (view.name, view.uid, dict(view.annotations), dict(view.labels), tuple(view.finalizers)) == (
        "",
        "",
        {},
        {},
        (),
    )
    assert not view.deleting
    assert not view.ready
    assert view.mode is None
    assert pod_view.PodView({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}).deleting


@pytest.mark.parametrize(
    ("conditions", "ready"),
    [
        pytest.param([{"type": "Ready", "status": "True"}], True, id="ready"),
        pytest.param([{"type": "Ready", "status": "False"}], False, id="not-ready"),
        pytest.param([{"type": "PodScheduled", "status": "True"}], False, id="no-ready-condition"),
        pytest.param(["junk", {"type": "Ready", "status": "True"}], True, id="junk-entry-skipped"),
        pytest.param(None, False, id="no-conditions"),
    ],
)
def test_ready_and_condition(conditions: list[Any] | None, ready: bool) -> None:
    raw = {"status": {"conditions": conditions}}
    assert pod_view.is_ready(raw) is ready
    assert pod_view.PodView(raw).ready is ready
    scheduled = pod_view.condition(raw, "PodScheduled")
    assert (scheduled is not None) is any(
        isinstance(c, dict) and c.get("type") == "PodScheduled" for c in conditions or []
    )
