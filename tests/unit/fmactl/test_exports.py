"""Every fmactl module declares a resolvable ``__all__``, its public surface."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import fmactl


@pytest.mark.parametrize(
    "name", sorted(["fmactl"] + [i.name for i in pkgutil.walk_packages(fmactl.__path__, "fmactl.")])
)
def test_module_declares_a_resolvable_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert [n for n in exported if not hasattr(module, n)] == []
