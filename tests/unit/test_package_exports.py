"""Every module of every package declares its public surface.

Each module has an ``__all__`` whose names all exist, and importing any
module has no side effects that fail without a cluster (nothing happens at
import time).
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ["crds", "kube", "certs", "webhook", "extender", "controllers", "launcher", "devcluster"]
# Modules that only exist to run (``python -m pkg``) may skip ``__all__``; none today.
EXEMPT: set[str] = set()


def _modules() -> list[str]:
    found = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        found.append(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            found.append(info.name)
    return sorted(found)


@pytest.mark.parametrize("name", _modules())
def test_module_declares_a_resolvable_all(name: str) -> None:
    if name in EXEMPT:
        pytest.skip("exempt")
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
