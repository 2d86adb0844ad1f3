"""Every module of ``crds`` declares ``__all__`` naming exactly its public members."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
import subprocess
import sys
import types
import typing

import pytest

import crds

_REPO = pathlib.Path(__file__).resolve().parents[3]
_MODULES = sorted(info.name for info in pkgutil.iter_modules(crds.__path__) if info.name != "__main__")


def _public_members(module: types.ModuleType) -> set[str]:
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value) or getattr(typing, name, None) is value:
            continue
        defined_here = getattr(value, "__module__", module.__name__) == module.__name__
        if inspect.isclass(value) or inspect.isfunction(value):
            if defined_here:
                names.add(name)
        elif name.isupper() or name[:1].isupper():
            names.add(name)
    return names


@pytest.mark.parametrize("name", _MODULES)
def test_module_all_lists_its_public_members(name: str) -> None:
    module = importlib.import_module(f"crds.{name}")
    declared = set(module.__all__)
    assert len(module.__all__) == len(declared), "duplicates in __all__"
    assert declared == _public_members(module), f"crds.{name}.__all__ is out of date"


def test_package_reexports_every_module_and_resolves_every_name() -> None:
    assert set(_MODULES) <= set(crds.__all__)
    for name in crds.__all__:
        assert hasattr(crds, name), name


def test_package_does_not_import_kubernetes_or_our_other_packages() -> None:
    for name in _MODULES:
        module = importlib.import_module(f"crds.{name}")
        for value in vars(module).values():
            if inspect.ismodule(value):
                top = value.__name__.split(".")[0]
                assert top not in {"kubernetes", "kube", "certs", "webhook", "extender", "controllers", "launcher"}


def test_importing_crds_loads_no_client_library_and_does_no_io() -> None:
    program = (
        "import sys, socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('network use at import time')\n"
        "socket.socket.connect = refuse\n"
        "import crds, crds.__main__\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'kubernetes', 'kube', 'certs', 'webhook', 'extender', 'controllers', 'launcher', 'devcluster'})\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False, cwd=_REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
