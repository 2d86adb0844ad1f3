"""``env_policy``: environment names that change how an instance loads code are refused unless allowed."""

from __future__ import annotations

import pytest

from launcher import env_policy


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "LD_ANYTHING_NEW",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONINSPECT",
        "PYTHONUSERBASE",
        "PYTHONWARNINGS",
        "PYTHONBREAKPOINT",
        "GCONV_PATH",
        "GLIBC_TUNABLES",
        "BASH_ENV",
        "CUDA_INJECTION64_PATH",
        "NCCL_NET_PLUGIN",
    ],
)
def test_code_loading_names_are_refused(name: str) -> None:
    assert env_policy.first_refused(["A", name, "B"], []) == name


@pytest.mark.parametrize(
    "name", ["VLLM_SERVER_DEV_MODE", "CUDA_VISIBLE_DEVICES", "HF_HOME", "PYTHONUNBUFFERED", "MY_LD_PRELOAD", "PATH"]
)
def test_ordinary_names_pass(name: str) -> None:
    assert env_policy.first_refused([name], []) is None


def test_an_allowed_name_passes_and_only_that_one() -> None:
    assert env_policy.first_refused(["PYTHONPATH"], ["PYTHONPATH"]) is None
    assert env_policy.first_refused(["PYTHONPATH", "LD_PRELOAD"], ["PYTHONPATH"]) == "LD_PRELOAD"
