"""The launcher inventory annotation and the derived sleep state."""

from __future__ import annotations

import json

import pytest

from crds import errors, keys, launcher_inventory

_DOC = {
    "v": 1,
    "revision": 7,
    "instances": [
        {"id": "Ia", "isc": "s", "configKey": "Cc", "gpus": ["GPU-0"], "port": 8005, "status": "running"},
        {"id": "Ib", "isc": "s", "configKey": "Cc", "gpus": ["GPU-1"], "port": 8006, "status": "running"},
        {"id": "Ic", "isc": "s", "configKey": "Cc", "gpus": ["GPU-2"], "port": 8007, "status": "stopped"},
    ],
}


def test_parse_and_format_round_trip() -> None:
    value = json.dumps(_DOC, separators=(",", ":"))
    inventory = launcher_inventory.parse(value)
    assert inventory is not None
    assert inventory.revision == 7
    assert inventory.instances[0].config_key == "Cc"
    assert json.loads(inventory.format()) == _DOC
    assert launcher_inventory.parse(inventory.format()) == inventory


def test_upstream_instances_without_our_annotations_parse() -> None:
    inventory = launcher_inventory.parse('{"v":1,"revision":1,"instances":[{"id":"u-1","status":"running"}]}')
    assert inventory is not None
    assert inventory.instances[0].port is None
    assert '"port"' not in inventory.format()


def test_absent_means_not_published() -> None:
    assert launcher_inventory.parse(None) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('{"v":2,"revision":1,"instances":[]}', id="future-version"),
        pytest.param('{"v":1,"revision":-1,"instances":[]}', id="negative-revision"),
        pytest.param('{"v":1,"revision":1,"instances":[{"id":"a","status":"sleeping"}]}', id="bad-status"),
        pytest.param('{"v":1,"revision":1,"instances":[{"id":"a","status":"running","port":0}]}', id="port-0"),
        pytest.param('{"v":1,"revision":1,"instances":[{"id":"","status":"running"}]}', id="empty-id"),
        pytest.param('{"v":1,"revision":1,"extra":1}', id="unknown-field"),
        pytest.param("[", id="not-json"),
    ],
)
def test_parse_rejects_malformed(value: str) -> None:
    with pytest.raises(errors.InvalidAnnotation) as caught:
        launcher_inventory.parse(value)
    assert caught.value.key == keys.INSTANCES_ANNOTATION


@pytest.mark.parametrize(
    ("bound", "sleeping", "expected"),
    [
        pytest.param("Ia", "false", ["Ib"], id="bound-awake"),
        pytest.param("Ia", "true", ["Ia", "Ib"], id="bound-asleep"),
        pytest.param(None, "true", ["Ia", "Ib"], id="unbound"),
        pytest.param(None, None, ["Ia", "Ib"], id="no-label"),
    ],
)
def test_asleep_is_derived_from_binding_and_label(bound: str | None, sleeping: str | None, expected: list[str]) -> None:
    inventory = launcher_inventory.LauncherInventory.model_validate(_DOC)
    assert launcher_inventory.asleep(inventory, bound, sleeping) == expected


def test_find() -> None:
    inventory = launcher_inventory.LauncherInventory.model_validate(_DOC)
    found = inventory.find("Ib")
    assert found is not None
    assert found.port == 8006
    assert inventory.find("nope") is None
