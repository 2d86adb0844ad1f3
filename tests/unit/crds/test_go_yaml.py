"""``go_yaml`` reproduces Go's ``sigs.k8s.io/yaml.Marshal`` byte for byte.

``testdata/instance_id_vectors`` holds a tiny Go program and its output for
many inputs (long options, numeric-looking values, keys with digits and
underscores, quoting edge cases); see its main.go for how to regenerate it.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from crds import go_yaml

_VECTORS: list[dict[str, Any]] = json.loads(
    (pathlib.Path(__file__).parent / "testdata" / "instance_id_vectors" / "vectors.json").read_text()
)


@pytest.mark.parametrize("vector", [pytest.param(v, id=v["name"]) for v in _VECTORS])
def test_matches_go_output(vector: dict[str, Any]) -> None:
    if "error" in vector:
        # Go refuses these (raw control characters, line breaks in keys); so must we
        with pytest.raises(ValueError, match=r"cannot encode|document marker"):
            go_yaml.marshal(vector["config"])
    else:
        assert go_yaml.marshal(vector["config"]) == vector["yaml"]


def test_vectors_cover_the_cases_the_contract_names() -> None:
    names = {vector["name"] for vector in _VECTORS}
    assert {"long-options", "numeric-looking-values", "keys-with-digits-and-underscores"} <= names
    assert sum("error" not in vector for vector in _VECTORS) > 250
    assert sum("error" in vector for vector in _VECTORS) > 20


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        pytest.param("a\x85b", "a b", id="nel-folds-to-space"),
        pytest.param("a \x85  b", "a b", id="nel-eats-surrounding-blanks"),
        pytest.param("a\x85\x85b", "|-\n    a\n    b", id="two-nels-make-a-newline"),
        pytest.param("\ufeffab", '"\\uFEFF\\x61\\x62"', id="leading-bom-escapes-everything"),
        pytest.param("a\ufeffb", '"a\\uFEFFb"', id="inner-bom-escaped-alone"),
    ],
)
def test_go_quirks(value: str, rendered: str) -> None:
    assert go_yaml.marshal({"m": {"k": value}}) == f"m:\n  k: {rendered}\n"


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"k": "a\x7fb"}, id="del"),
        pytest.param({"k": "\x80"}, id="c1-control"),
        pytest.param({"k\x85": "v"}, id="nel-in-key"),
        pytest.param({"k": "a\x85--- b"}, id="document-marker"),
    ],
)
def test_refuses_what_go_refuses(document: dict[str, go_yaml.Value]) -> None:
    with pytest.raises(ValueError, match=r"cannot encode|document marker"):
        go_yaml.marshal(document)


def test_contract_example() -> None:
    document: dict[str, go_yaml.Value] = {
        "port": 8005,
        "options": "--model X",
        "env_vars": {"VLLM_SERVER_DEV_MODE": "1"},
    }
    assert go_yaml.marshal(document) == 'env_vars:\n  VLLM_SERVER_DEV_MODE: "1"\noptions: --model X\nport: 8005\n'


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        pytest.param("a", "b", id="letters"),
        pytest.param("A2", "A10", id="digit-runs-numeric"),
        pytest.param("_Z", "A", id="non-letter-before-letter"),
        pytest.param("a", "ab", id="prefix"),
        pytest.param("B", "a", id="code-point-between-letters"),
    ],
)
def test_natural_order(smaller: str, larger: str) -> None:
    assert go_yaml.natural_less(smaller, larger)
    assert not go_yaml.natural_less(larger, smaller)


def test_output_does_not_depend_on_input_order() -> None:
    keys = ["9", "10", "1A", "b", "a", "A_1", "A1"]
    forward = go_yaml.marshal({"m": {key: "x" for key in keys}})
    backward = go_yaml.marshal({"m": {key: "x" for key in reversed(keys)}})
    assert forward == backward


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        pytest.param("1", '"1"', id="int-looking"),
        pytest.param("yes", '"yes"', id="bool-looking"),
        pytest.param("", '""', id="empty"),
        pytest.param("a: b", "'a: b'", id="colon-space"),
        pytest.param("it's: x", "'it''s: x'", id="single-quote-doubled"),
        pytest.param("a\tb", '"a\\tb"', id="tab-escaped"),
        pytest.param("plain text", "plain text", id="plain"),
    ],
)
def test_scalar_styles(value: str, rendered: str) -> None:
    assert go_yaml.marshal({"k": value}) == f"k: {rendered}\n"


def test_rejects_values_it_cannot_render() -> None:
    with pytest.raises(TypeError):
        go_yaml.marshal({"k": 1.5})  # type: ignore[dict-item]
