"""Fixtures of the chart tests: the helm binary and ``helm template`` with value sets.

``helm`` is the pinned binary built by ``make binaries`` (devcluster.binaries);
rendering needs no cluster.  A missing binary fails the tests with what to run.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from devcluster import binaries

CHART = pathlib.Path(__file__).resolve().parents[3] / "charts" / "fma"
RELEASE = "fma"
NAMESPACE = "fma-system"
KUBE_VERSION = binaries.KUBERNETES_VERSION

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "policies-off": {"policies": {"enabled": False}},
    "cert-manager": {"certs": {"mode": "cert-manager"}},
    "auth-off": {"launcherAuth": {"enabled": False}},
    "dra": {"gpuClaims": "dra", "dra": {"deviceClass": {"create": True}}},
    "hints-nominate": {"placement": "hints", "placementNominate": True},
    "hints-plugin": {"placement": "hints", "placementNominate": "plugin"},
}
"""The value sets every structural test runs with."""


@dataclasses.dataclass(frozen=True)
class Rendered:
    """The objects ``helm template`` printed, with lookups by kind and name."""

    objects: list[dict[str, Any]]

    def kinds(self) -> dict[str, list[str]]:
        """Kind -> sorted names."""
        found: dict[str, list[str]] = {}
        for obj in self.objects:
            found.setdefault(obj["kind"], []).append(obj["metadata"]["name"])
        return {kind: sorted(names) for kind, names in found.items()}

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Every object of ``kind``."""
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The one object of ``kind`` named ``name``; fails the test when absent."""
        for obj in self.of(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise AssertionError(f"no {kind} {name!r}; have {self.kinds().get(kind, [])}")

    def has(self, kind: str, name: str) -> bool:
        """Whether an object of ``kind`` named ``name`` is there."""
        return any(obj["metadata"]["name"] == name for obj in self.of(kind))


@pytest.fixture(scope="session")
def helm() -> pathlib.Path:
    """The pinned helm binary."""
    path = binaries.locate().helm
    if not path.is_file():
        pytest.fail(f"helm is not built at {path}: run `make binaries`")
    return path


class HelmFailed(AssertionError):
    """helm exited non-zero; the message is its output."""


def run_helm(helm: pathlib.Path, *args: str, values: dict[str, Any] | None = None) -> str:
    """Run helm on the chart with ``values`` (as a JSON values file); raise ``HelmFailed`` with its output."""
    command = [str(helm), *args]
    text = json.dumps(values or {})
    result = subprocess.run(
        [*command, "--values", "-"], input=text, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise HelmFailed(result.stderr + result.stdout)
    return result.stdout


@pytest.fixture(scope="session")
def render(helm: pathlib.Path) -> Callable[..., Rendered]:
    """``render(values)``: the chart's objects for ``values`` (cached per value set)."""
    cache: dict[str, Rendered] = {}

    def _render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> Rendered:
        key = json.dumps([values, namespace], sort_keys=True)
        if key not in cache:
            out = run_helm(
                helm,
                "template",
                RELEASE,
                str(CHART),
                "--namespace",
                namespace,
                "--kube-version",
                KUBE_VERSION,
                values=values,
            )
            cache[key] = Rendered([doc for doc in yaml.safe_load_all(out) if doc])
        return cache[key]

    return _render
