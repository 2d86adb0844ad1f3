"""``vllm_engine.translate``: instance options and environment → what vLLM's server gets.

Pure (the platform facts and the directory check are arguments), so these
run without vLLM.  They sit beside the real-vLLM tests of the same engine.
"""

from __future__ import annotations

import pytest

from launcher import vllm_engine

MODEL_DIR = "/models/tiny"


def _plan(argv: str, environ: dict[str, str] | None = None, *, cpu: bool = True) -> vllm_engine.ServerPlan:
    return vllm_engine.translate(
        argv.split(), environ or {}, cpu=cpu, sleep_mode_available=not cpu, is_dir=lambda path: path == MODEL_DIR
    )


@pytest.mark.parametrize(
    ("cpu", "flag", "kept"),
    [
        pytest.param(True, "--enable-sleep-mode", False, id="cpu-drops"),
        pytest.param(True, "--enable_sleep_mode", False, id="cpu-drops-underscore-spelling"),
        pytest.param(False, "--enable-sleep-mode", True, id="gpu-keeps"),
    ],
)
def test_sleep_mode_flag_is_dropped_only_where_the_platform_refuses_it(cpu: bool, flag: str, kept: bool) -> None:
    plan = _plan(f"--model {MODEL_DIR} {flag} --port 8005", cpu=cpu)
    assert (flag in plan.argv) is kept
    assert plan.argv[-2:] == ["--port", "8005"]
    assert any(flag in w for w in plan.warnings) is not kept


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="absent"),
        pytest.param({"VLLM_SERVER_DEV_MODE": "0"}, id="caller-disabled"),
        pytest.param({"VLLM_SERVER_DEV_MODE": "1"}, id="already-on"),
    ],
)
def test_dev_mode_is_always_on(environ: dict[str, str]) -> None:
    plan = _plan(f"--model {MODEL_DIR}", environ)
    assert {**environ, **plan.env}["VLLM_SERVER_DEV_MODE"] == "1"
    assert bool(plan.warnings) is (environ.get("VLLM_SERVER_DEV_MODE") == "0")


def test_cpu_gets_a_small_kv_cache_by_default_and_the_callers_value_wins() -> None:
    assert _plan(f"--model {MODEL_DIR}").env["VLLM_CPU_KVCACHE_SPACE"] == vllm_engine.DEFAULT_CPU_KVCACHE_GIB
    assert "VLLM_CPU_KVCACHE_SPACE" not in _plan(f"--model {MODEL_DIR}", {"VLLM_CPU_KVCACHE_SPACE": "3"}).env
    assert "VLLM_CPU_KVCACHE_SPACE" not in _plan(f"--model {MODEL_DIR}", cpu=False).env


def test_local_model_directory_serves_offline_unless_the_caller_says_otherwise() -> None:
    assert _plan(f"--model {MODEL_DIR}").env["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in _plan(f"--model {MODEL_DIR}", {"HF_HUB_OFFLINE": "0"}).env
    assert "HF_HUB_OFFLINE" not in _plan("--model org/model-on-a-hub").env


def test_leading_positional_model_becomes_the_model_flag() -> None:
    plan = _plan(f"{MODEL_DIR} --port 8005")
    assert plan.argv == ["--model", MODEL_DIR, "--port", "8005"]
    assert plan.env["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize(
    "options",
    [
        pytest.param("--model /nonexistent/model", id="absolute"),
        pytest.param("--model=./relative/model", id="equals-relative"),
        pytest.param("/nonexistent/model --port 1", id="positional"),
    ],
)
def test_model_path_that_does_not_exist_is_rejected_with_the_path(options: str) -> None:
    with pytest.raises(vllm_engine.InvalidOptions, match="does not exist"):
        _plan(options)


def test_other_options_pass_through_untouched_in_order() -> None:
    options = f"--model {MODEL_DIR} --max-model-len 256 --enforce-eager --host 127.0.0.2 --port 8005"
    assert _plan(options, cpu=False).argv == options.split()
