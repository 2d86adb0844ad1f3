"""Every launcher module declares ``__all__`` and exports exactly names it defines."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import launcher

_MODULES = sorted(
    m.name for m in pkgutil.iter_modules(launcher.__path__, "launcher.") if m.name != "launcher.vllm_engine"
)


@pytest.mark.parametrize("name", [*_MODULES, "launcher"])
def test_all_is_declared_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list)
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ names missing {exported!r}"


def test_vllm_engine_imports_without_vllm() -> None:
    module = importlib.import_module("launcher.vllm_engine")
    assert module.ENGINE.name == "vllm"
    with pytest.raises(ImportError):
        module.ENGINE.preload()
