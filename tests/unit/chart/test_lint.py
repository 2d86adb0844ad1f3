"""``helm lint`` is clean (no warning, no error) with every value set."""

from __future__ import annotations

import pathlib
import tomllib

import pytest
import yaml

from tests.unit.chart.conftest import CHART, VALUE_SETS, run_helm


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_lint_is_clean(helm: pathlib.Path, name: str) -> None:
    out = run_helm(helm, "lint", str(CHART), "--strict", "--kube-version", "v1.35.4", values=VALUE_SETS[name])
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out
    assert "[ERROR]" not in out


def test_app_version_is_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]
