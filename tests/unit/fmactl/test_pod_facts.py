"""pod_facts: reading FMA facts off raw Pods."""

from __future__ import annotations

import pytest

from crds import timestamps
from fmactl import pod_facts

from . import objects as o


@pytest.mark.parametrize(
    ("options", "model"),
    [
        ("--model tiny --port 8005", "tiny"),
        ("--port 1 --model=org/m-7b", "org/m-7b"),
        ("--model 'with space'", "with space"),
        ("--port 1", ""),
        ("--model", ""),
        ("--model 'unclosed", ""),
        (None, ""),
    ],
)
def test_model_of_options(options: str | None, model: str) -> None:
    assert pod_facts.model_of_options(options) == model


def test_roles() -> None:
    assert pod_facts.role(o.requester("r")) is pod_facts.Role.REQUESTER
    assert pod_facts.role(o.requester("d", isc=None)) is pod_facts.Role.REQUESTER
    assert pod_facts.role(o.launcher("l")) is pod_facts.Role.LAUNCHER
    assert pod_facts.role({"metadata": {"annotations": {o.P + "nominal": "h"}}}) is pod_facts.Role.DIRECT_PROVIDER
    assert pod_facts.role({"metadata": {}}) is pod_facts.Role.OTHER


def test_providers_are_placed_by_their_hostname_selector() -> None:
    lc = o.launcher("l", node="n2")
    lc["spec"]["nodeName"] = "elsewhere"
    assert pod_facts.node_of(lc) == "n2"
    assert pod_facts.node_of(o.requester("r", node="n1")) == "n1"
    assert pod_facts.node_of(o.requester("r", node=None)) is None


def test_dpc_last_write_is_the_controllers_latest_entry() -> None:
    lc = o.launcher("l", dpc_write_seconds_ago=40)
    lc["metadata"]["managedFields"].append(
        {"manager": "dual-pods-controller", "operation": "Update", "time": o.stamp(400)}
    )
    lc["metadata"]["managedFields"].append(
        {"manager": "dual-pods-controller", "operation": "Update", "subresource": "status", "time": o.stamp(1)}
    )
    assert pod_facts.dpc_last_write(lc) == timestamps.parse_time(o.stamp(40))
    assert pod_facts.dpc_last_write(o.launcher("m")) is None


def test_malformed_annotations_read_as_unknown() -> None:
    pod = o.requester("r", gpus=" GPU-a", status="{oops")
    assert pod_facts.gpus(pod) == []
    assert pod_facts.status_errors(pod) == ["unreadable status annotation: '{oops'"]
    assert pod_facts.status_errors(o.requester("s", status='{"Errors":null}')) == []
