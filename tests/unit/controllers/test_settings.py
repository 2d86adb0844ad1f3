"""controllers.settings: one BaseSettings; flags over FMA_* variables over the defaults written on the fields."""

from __future__ import annotations

import pytest

from controllers import populator, settings


@pytest.fixture(autouse=True)
def _no_fma_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FMA_NAMESPACE", "FMA_NUM_WORKERS", "FMA_LEADER_ELECT", "FMA_LAUNCHER_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_come_from_the_fields() -> None:
    parsed = settings.parse_args(["-n", "fma"])
    assert parsed == settings.Settings(namespace="fma", identity=parsed.identity)
    assert (parsed.sleeper_limit, parsed.num_workers, parsed.metrics_port, parsed.leader_elect) == (1, 2, 8002, True)
    assert parsed.expectation_timeout == settings.EXPECTATION_TIMEOUT_DEFAULT
    assert parsed.identity, "a default identity is made up"


def test_every_field_has_a_flag_with_its_help_and_default() -> None:
    text = settings.parser().format_help()
    for name, field in settings.Settings.model_fields.items():
        assert f"--{name.replace('_', '-')}" in text
        assert field.description, f"{name} has no help"
    assert "(default 8002)" in text
    assert "{json,text}" in text


def test_flags_win_over_environment_which_wins_over_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMA_NAMESPACE", "from-env")
    monkeypatch.setenv("FMA_NUM_WORKERS", "5")
    monkeypatch.setenv("FMA_LEADER_ELECT", "false")
    from_env = settings.parse_args([])
    assert (from_env.namespace, from_env.num_workers, from_env.leader_elect) == ("from-env", 5, False)
    flagged = settings.parse_args(["--namespace", "from-flag", "--num-workers", "7", "--leader-elect", "yes"])
    assert (flagged.namespace, flagged.num_workers, flagged.leader_elect) == ("from-flag", 7, True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param([], "--namespace: Field required", id="namespace-required"),
        pytest.param(["-n", "x", "--num-workers", "0"], "--num-workers: Input should be greater than", id="range"),
        pytest.param(["-n", "x", "--retry-period", "20"], "need --retry-period < --renew-deadline", id="lease-order"),
        pytest.param(["-n", "x", "--leader-elect", "maybe"], "expected true or false", id="bool"),
        pytest.param(["-n", "x", "--log-format", "xml"], "invalid choice", id="choice"),
    ],
)
def test_bad_input_exits_with_a_message_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        settings.parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_populator_defaults_are_the_flag_defaults() -> None:
    built = populator.PopulatorSettings()
    parsed = settings.parse_args(["-n", "x"])
    assert built.expectation_timeout == parsed.expectation_timeout
    assert built.stuck_starting_threshold == parsed.stuck_starting_threshold
    assert built.stuck_scheduling_threshold == parsed.stuck_scheduling_threshold
