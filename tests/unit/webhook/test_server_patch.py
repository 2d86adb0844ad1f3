"""Validating written server patches and the helpers that derive one."""

from __future__ import annotations

import pytest

from webhook import errors, server_patch


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param('{"spec":{"nodeName":"{{.NodeName}}"}}', {"spec": {"nodeName": "placeholder-node"}}, id="json"),
        pytest.param("spec:\n  volumes: [{{ .LocalVolume }}]\n", {"spec": {"volumes": []}}, id="yaml-local-volume"),
        pytest.param("metadata: {}", {"metadata": {}}, id="plain"),
    ],
)
def test_validate_accepts(template: str, expected: dict) -> None:
    assert server_patch.validate(template) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param("{{ if .X }}a{{ end }}", "unsupported template action", id="if"),
        pytest.param("a: [", "not valid YAML or JSON", id="yaml-error"),
        pytest.param("just text", "must be a mapping", id="scalar"),
        pytest.param("spec: [1]", "spec must be a mapping", id="spec-list"),
    ],
)
def test_validate_denies(template: str, message: str) -> None:
    with pytest.raises(errors.Denial, match=message):
        server_patch.validate(template)


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        pytest.param(["vllm", "serve"], ["m"], ["m", "--enable-sleep-mode"], id="append"),
        pytest.param(None, None, ["--enable-sleep-mode"], id="image-entrypoint"),
        pytest.param(["vllm", "serve", "--enable-sleep-mode"], ["m"], None, id="in-command"),
        pytest.param(["sh", "-c"], ["vllm serve m --enable-sleep-mode"], None, id="in-script"),
        pytest.param(["/bin/bash", "-c"], ["vllm serve m"], ["vllm serve m --enable-sleep-mode"], id="script"),
    ],
)
def test_ensure_sleep_mode(command, args, expected) -> None:
    assert server_patch.ensure_sleep_mode(command, args) == expected


def test_ensure_dev_mode_replaces_in_place_or_appends() -> None:
    assert server_patch.ensure_dev_mode(
        [{"name": "A", "value": "1"}, {"name": "VLLM_SERVER_DEV_MODE", "value": "0"}]
    ) == [
        {"name": "A", "value": "1"},
        {"name": "VLLM_SERVER_DEV_MODE", "value": "1"},
    ]
    assert server_patch.ensure_dev_mode(None) == [{"name": "VLLM_SERVER_DEV_MODE", "value": "1"}]


def test_encode_is_compact_and_sorted() -> None:
    assert server_patch.encode({"spec": {"b": 1, "a": None}}) == '{"spec":{"a":null,"b":1}}'
