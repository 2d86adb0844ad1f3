"""The published inventory: the instances annotation and the signature, pure.

See docs/launcher.md, "Publishing the inventory on the launcher Pod".
"""

from __future__ import annotations

import hashlib
import json

from crds import launcher_inventory
from launcher import inventory, schemas


def _state(instance_id: str, status: schemas.Status, **fields: object) -> schemas.InstanceState:
    return schemas.InstanceState(status=status, instance_id=instance_id, revision=1, options="", **fields)


def test_inventory_json_has_the_contract_shape() -> None:
    snapshot = inventory.Snapshot(
        revision=7,
        instances=[
            _state(
                "Iabc",
                "running",
                gpu_uuids=["GPU-1", "GPU-2"],
                annotations={"isc-name": "isc-a", "inference-port": "8005", "config-key": "Cxyz"},
            ),
            _state("Idef", "stopped"),
        ],
    )
    text = inventory.inventory_json(snapshot)
    assert text == (
        '{"v":1,"revision":7,"instances":['
        '{"id":"Iabc","isc":"isc-a","configKey":"Cxyz","gpus":["GPU-1","GPU-2"],"port":8005,"status":"running"},'
        '{"id":"Idef","isc":"","configKey":"","gpus":[],"status":"stopped"}]}'
    )


def test_inventory_parses_back_with_the_shared_model() -> None:
    snapshot = inventory.Snapshot(
        revision=3,
        instances=[
            _state("Ia", "running", annotations={"isc-name": "isc-a", "inference-port": "8005"}),
            _state("Ib", "running", annotations={"inference-port": "0"}),
            _state("Ic", "running", annotations={"inference-port": "70000"}),
            _state("Id", "running", annotations={"inference-port": "\u0663"}),  # an Arabic-Indic digit
        ],
    )
    parsed = launcher_inventory.parse(inventory.inventory_json(snapshot))
    assert parsed is not None
    assert parsed.revision == 3
    assert [(i.id, i.isc, i.port) for i in parsed.instances] == [
        ("Ia", "isc-a", 8005),
        ("Ib", "", None),
        ("Ic", "", None),
        ("Id", "", None),
    ]


def test_signature_is_order_independent_and_tracks_status() -> None:
    a, b = _state("a", "running"), _state("b", "running")
    assert inventory.signature([a, b]) == inventory.signature([b, a])
    assert inventory.signature([a, b]) != inventory.signature([a, _state("b", "stopped")])
    expected = hashlib.sha256(json.dumps([["a", "running"], ["b", "running"]], separators=(",", ":")).encode())
    assert inventory.signature([b, a]) == expected.hexdigest()


def test_pod_annotations_names_both_keys() -> None:
    notes = inventory.pod_annotations(inventory.Snapshot(revision=0, instances=[]))
    assert set(notes) == {"dual-pods.llm-d.ai/vllm-instance-signature", "dual-pods.llm-d.ai/instances"}
    assert json.loads(notes["dual-pods.llm-d.ai/instances"]) == {"v": 1, "revision": 0, "instances": []}


def test_null_observer_accepts_changes() -> None:
    observer: inventory.InventoryObserver = inventory.NullObserver()
    observer.inventory_changed(inventory.Snapshot(revision=1, instances=[]))
