"""Validation of the launcher's create body and instance IDs.

See docs/protocol.md, "Launcher API", and docs/launcher.md, "API additions and limits".
"""

from __future__ import annotations

import pydantic
import pytest

from launcher import schemas


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("a", True),
        ("inst-1.b_c", True),
        ("I" + "x" * 43 + "i", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("", False),
        ("-a", False),
        ("a-", False),
        ("a b", False),
        ("a/b", False),
    ],
)
def test_instance_id_must_be_a_label_value(value: str, valid: bool) -> None:
    assert schemas.is_valid_instance_id(value) is valid


def test_optional_fields_may_be_absent_or_null() -> None:
    config = schemas.VllmConfig.model_validate({"options": "--x", "gpu_uuids": None, "env_vars": None})
    assert config.gpu_uuids is None
    assert config.env_vars is None


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        pytest.param({}, "options", id="missing-options"),
        pytest.param({"options": "x" * (schemas.MAX_OPTIONS_LENGTH + 1)}, "options", id="options-too-long"),
        pytest.param({"options": "a\x00b"}, "NUL", id="nul-in-options"),
        pytest.param({"options": "", "env_vars": {"A-B": "1"}}, "A-B", id="bad-env-name"),
        pytest.param({"options": "", "env_vars": {"A": "\x00"}}, "'A'", id="nul-in-env-value"),
        pytest.param({"options": "", "env_vars": {f"V{i}": "" for i in range(300)}}, "at most", id="too-many-env"),
        pytest.param({"options": "", "gpu_uuids": ["a b"]}, "gpu_uuids", id="space-in-uuid"),
        pytest.param({"options": "", "gpu_uuids": ["g"] * 65}, "gpu_uuids", id="too-many-gpus"),
        pytest.param({"options": "", "annotations": {"k": "v" * 5000}}, "too long", id="long-annotation"),
        pytest.param({"options": "", "surprise": 1}, "surprise", id="unknown-field"),
    ],
)
def test_bad_bodies_name_the_problem(body: dict[str, object], needle: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        schemas.VllmConfig.model_validate(body)
    assert needle in str(info.value)


def test_wire_omits_unset_fields() -> None:
    state = schemas.InstanceState(status="running", instance_id="x", revision=1, options="")
    assert state.wire() == {"status": "running", "instance_id": "x", "revision": 1, "options": ""}
