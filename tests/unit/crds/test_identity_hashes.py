"""Instance ID, config key and the template hashes."""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
import re
import subprocess
import sys
from typing import Any

import pydantic
import pytest

from crds import hashes, inference_server_config, routing_metadata

_VECTORS: list[dict[str, Any]] = json.loads(
    (pathlib.Path(__file__).parent / "testdata" / "instance_id_vectors" / "vectors.json").read_text()
)
_BASE: dict[str, Any] = {
    "port": 8005,
    "options": "--model m --enable-sleep-mode",
    "env_vars": {"A": "1"},
    "labels": {"pool": "p"},
    "annotations": {"example.com/a": "b"},
}
_GPUS = ["GPU-0", "GPU-1"]


def _msc(**changes: Any) -> inference_server_config.ModelServerConfig:
    return inference_server_config.ModelServerConfig.model_validate({**_BASE, **changes})


def _valid_routing(vector: dict[str, Any]) -> bool:
    config = vector["config"]
    return not routing_metadata.problems(config.get("labels"), config.get("annotations"))


_HASHABLE = [v for v in _VECTORS if "error" not in v and _valid_routing(v)]
_UNHASHABLE = [v for v in _VECTORS if "error" in v and _valid_routing(v)]


@pytest.mark.parametrize("vector", [pytest.param(v, id=v["name"]) for v in _HASHABLE])
def test_instance_id_matches_upstream_go(vector: dict[str, Any]) -> None:
    config = inference_server_config.ModelServerConfig.model_validate(vector["config"])
    assert hashes.instance_id(config, vector["gpus"]) == vector["instance_id"]


@pytest.mark.parametrize("vector", [pytest.param(v, id=v["name"]) for v in _UNHASHABLE])
def test_configs_go_cannot_marshal_are_invalid(vector: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError, match=r"cannot encode|document marker"):
        inference_server_config.ModelServerConfig.model_validate(vector["config"])


def test_enough_vectors_are_compared() -> None:
    assert len(_HASHABLE) > 200
    assert len(_UNHASHABLE) > 20


def test_instance_id_shape() -> None:
    value = hashes.instance_id(_msc(), _GPUS)
    assert len(value) == 45
    assert re.fullmatch(r"I[A-Za-z0-9_-]{43}i", value)


def test_instance_id_is_stable_across_processes() -> None:
    program = (
        "import json, sys\n"
        "from crds import hashes, inference_server_config, routing_metadata\n"
        "config = inference_server_config.ModelServerConfig.model_validate(json.loads(sys.argv[1]))\n"
        "print(hashes.instance_id(config, sys.argv[2].split(',')), hashes.config_key(config))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, json.dumps(_BASE), ",".join(_GPUS)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
        cwd=pathlib.Path(__file__).resolve().parents[3],
    )
    assert result.stdout.split() == [hashes.instance_id(_msc(), _GPUS), hashes.config_key(_msc())]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"port": 8006}, id="port"),
        pytest.param({"options": "--model other"}, id="options"),
        pytest.param({"options": None}, id="options-removed"),
        pytest.param({"env_vars": {"A": "2"}}, id="env-value"),
        pytest.param({"env_vars": {"B": "1"}}, id="env-key"),
        pytest.param({"labels": {"pool": "q"}}, id="label"),
        pytest.param({"annotations": {"example.com/a": "c"}}, id="annotation"),
        pytest.param({"annotations": None}, id="annotations-removed"),
    ],
)
def test_every_hashed_field_changes_both_ids(changes: dict[str, Any]) -> None:
    assert hashes.instance_id(_msc(**changes), _GPUS) != hashes.instance_id(_msc(), _GPUS)
    assert hashes.config_key(_msc(**changes)) != hashes.config_key(_msc())


def test_gpu_set_and_order_matter() -> None:
    reference = hashes.instance_id(_msc(), ["GPU-0", "GPU-1"])
    assert hashes.instance_id(_msc(), ["GPU-1", "GPU-0"]) != reference
    assert hashes.instance_id(_msc(), ["GPU-0"]) != reference
    assert hashes.instance_id(_msc(), ["GPU-0", "GPU-2"]) != reference


def test_map_insertion_order_does_not_matter() -> None:
    one = _msc(env_vars={"A": "1", "B": "2"})
    two = _msc(env_vars={"B": "2", "A": "1"})
    assert hashes.instance_id(one, _GPUS) == hashes.instance_id(two, _GPUS)


def test_empty_maps_hash_like_absent_ones() -> None:
    assert hashes.instance_id(_msc(labels={}), _GPUS) == hashes.instance_id(_msc(labels=None), _GPUS)


def test_config_key_is_independent_of_gpus_and_shaped() -> None:
    gpu_sets = (["GPU-0"], ["GPU-1"], ["GPU-1", "GPU-0"], ["GPU-0", "GPU-1"])
    # the same configuration on different GPUs: distinct instances, one config key
    assert len({hashes.instance_id(_msc(), gpus) for gpus in gpu_sets}) == len(gpu_sets)
    assert len({hashes.config_key(_msc()) for _ in gpu_sets}) == 1
    key = hashes.config_key(_msc())
    assert re.fullmatch(r"C[A-Za-z0-9_-]{43}c", key)
    assert all(key[1:-1] != hashes.instance_id(_msc(), gpus)[1:-1] for gpus in [*gpu_sets, []])


def test_config_key_is_sha_of_y() -> None:
    digest = hashlib.sha256(hashes.model_server_yaml(_msc())).digest()
    assert hashes.config_key(_msc()) == "C" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "c"


def test_direct_config_key_is_canonical() -> None:
    pod_a = {"spec": {"containers": [{"name": "c", "image": "i"}]}, "metadata": {"labels": {"b": "1", "a": "2"}}}
    pod_b = {"metadata": {"labels": {"a": "2", "b": "1"}}, "spec": {"containers": [{"image": "i", "name": "c"}]}}
    assert hashes.direct_config_key(pod_a) == hashes.direct_config_key(pod_b)
    assert re.fullmatch(r"C[A-Za-z0-9_-]{43}c", hashes.direct_config_key(pod_a))
    assert hashes.canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_nominal_and_launcher_hashes() -> None:
    pod = {"spec": {"containers": [{"name": "inference-server"}]}}
    nominal = hashes.nominal_hash(pod, [1, 0], "node-a")
    assert len(nominal) == 43
    assert "=" not in nominal
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}", nominal)
    assert hashes.nominal_hash(pod, [0, 1], "node-a") != nominal
    assert hashes.nominal_hash(pod, [1, 0], "node-b") != nominal
    template = hashes.launcher_template_hash(pod)
    assert len(template) == 43
    assert hashes.launcher_config_hash(template, "n1") != hashes.launcher_config_hash(template, "n2")
