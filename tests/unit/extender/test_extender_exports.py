"""Each extender module declares exactly its public names in ``__all__``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import extender

MODULES = sorted(m.name for m in pkgutil.iter_modules(extender.__path__) if m.name != "__main__")


def test_package_exports_every_module() -> None:
    assert sorted(extender.__all__) == MODULES


@pytest.mark.parametrize("name", MODULES)
def test_all_matches_public_definitions(name: str) -> None:
    module = importlib.import_module(f"extender.{name}")
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", module.__name__) == module.__name__
        and attr not in {"annotations", "logger"}
    }
    assert public <= set(module.__all__), sorted(public - set(module.__all__))
    assert all(hasattr(module, attr) for attr in module.__all__)
