"""The vllm-config annotation: compact, upstream field order, empty fields omitted."""

from __future__ import annotations

import pytest

from crds import errors, vllm_config_annotation


def test_format_is_compact_in_upstream_order() -> None:
    config = vllm_config_annotation.VllmConfig(
        options="--model m --port 8005",
        gpu_uuids=["GPU-1", "GPU-0"],
        env_vars={"B": "2", "A": "1"},
        annotations={"isc-name": "s", "inference-port": "8005"},
    )
    assert config.format() == (
        '{"options":"--model m --port 8005","gpu_uuids":["GPU-1","GPU-0"],"env_vars":{"A":"1","B":"2"},'
        '"annotations":{"inference-port":"8005","isc-name":"s"}}'
    )
    assert vllm_config_annotation.parse(config.format()) == config


def test_empty_optional_fields_are_omitted_and_nulls_accepted() -> None:
    assert vllm_config_annotation.VllmConfig(options=" --port 1", env_vars={}).format() == '{"options":" --port 1"}'
    parsed = vllm_config_annotation.parse('{"options":"x","gpu_uuids":null,"env_vars":null}')
    assert parsed.gpu_uuids is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("{}", id="options-missing"),
        pytest.param('{"options":"x","bogus":1}', id="unknown"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_rejects_malformed(value: str) -> None:
    with pytest.raises(errors.InvalidAnnotation, match="vllm-config"):
        vllm_config_annotation.parse(value)
