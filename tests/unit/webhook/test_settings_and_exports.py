"""Webhook settings, and every module's ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil

import pydantic
import pytest

import webhook
from webhook import server, settings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMA_WEBHOOK_REQUESTER_IMAGE", "r/img:2")
    monkeypatch.setenv("FMA_WEBHOOK_REQUESTER_COMMAND", '["fma-requester", "--log-level", "debug"]')
    monkeypatch.setenv("FMA_WEBHOOK_SCHEDULER_NAME", "")
    built = settings.Settings(spi_port=9001)
    options = server.mutation_options(built)
    assert options.agent.image == "r/img:2"
    assert options.agent.command == ("fma-requester", "--log-level", "debug")
    assert options.scheduler_name == ""
    assert options.spi_port == 9001


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"probes_port": 9000, "spi_port": 9000}, id="same-ports"),
        pytest.param({"requester_command": []}, id="empty-command"),
        pytest.param({"unknown": 1}, id="unknown-field"),
        pytest.param({"max_body_bytes": 10}, id="tiny-body-cap"),
    ],
)
def test_settings_reject(kwargs) -> None:
    with pytest.raises(pydantic.ValidationError):
        settings.Settings(**kwargs)


_MODULES = sorted(m.name for m in pkgutil.iter_modules(webhook.__path__, "webhook."))


@pytest.mark.parametrize("name", [*_MODULES, "webhook"])
def test_all_is_declared_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list)
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ names missing {exported!r}"
