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
from extender import scheduler_config

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


SCHEDULER_CLIENT_DEFAULTS = {"qps": 50, "burst": 100}
"""The chart's ``scheduler.clientConnection`` defaults (kube-scheduler's own)."""


def rendered_scheduler_config(rendered: Rendered) -> dict[str, Any]:
    """The FMA scheduler's KubeSchedulerConfiguration as the chart renders it (its ConfigMap)."""
    return dict(yaml.safe_load(rendered.get("ConfigMap", f"{RELEASE}-fma-scheduler")["data"]["config.yaml"]))


def packaged_scheduler_config(
    placement: str = "extender", *, client: dict[str, Any] | None = None, **render_args: Any
) -> dict[str, Any]:
    """``extender.scheduler_config.render`` as the chart should render it: the extender's Service URL, leader
    election in the release namespace, and the chart's ``scheduler.clientConnection`` (``client``, default
    ``SCHEDULER_CLIENT_DEFAULTS``)."""
    url = None if placement == "hints" else f"http://{RELEASE}-fma-extender.{NAMESPACE}.svc:8890"
    config = scheduler_config.render(url, placement=placement, **render_args)  # type: ignore[arg-type]
    config["leaderElection"].update(resourceName=f"{RELEASE}-fma-scheduler", resourceNamespace=NAMESPACE)
    config["clientConnection"] = dict(client or SCHEDULER_CLIENT_DEFAULTS)
    return config
