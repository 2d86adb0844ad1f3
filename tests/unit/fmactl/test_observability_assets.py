"""The chart's dashboard and alert rules: well-formed, rendered only when enabled, and using only
metric names that FMA's components declare (the cluster test checks them against a live scrape)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
from typing import Any

import prometheus_client
import pytest
import yaml

from controllers import dpc_metrics, launcher_pod_count
from devcluster import binaries
from extender import metrics as extender_metrics
from webhook import metrics as webhook_metrics

CHART = pathlib.Path(__file__).resolve().parents[3] / "charts" / "fma"
DASHBOARD = CHART / "dashboards" / "fma-overview.json"
RULES = CHART / "rules" / "fma-alerts.yaml"
METRIC = re.compile(r"\b(fma_[a-zA-Z0-9_]+)\b")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "summary": ("_count", "_sum", "_created", ""),
}


def dashboard_exprs() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in document["panels"] for target in panel["targets"]]


def rule_exprs() -> list[str]:
    document = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


def metric_names(exprs: list[str]) -> set[str]:
    """Every ``fma_*`` name the expressions use."""
    return {name for expr in exprs for name in METRIC.findall(expr)}


def _declared() -> set[str]:
    """The sample names of every metric family the components register."""
    registry = prometheus_client.CollectorRegistry()
    dpc_metrics.DPCMetrics(registry)
    launcher_pod_count.LauncherPodCount(registry)
    registries = [
        registry,
        webhook_metrics.Metrics().registry,
        extender_metrics.ExtenderMetrics().registry,
    ]
    names: set[str] = set()
    for each in registries:
        for family in each.collect():
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def test_dashboard_is_well_formed() -> None:
    document = json.loads(DASHBOARD.read_text())
    assert document["uid"] == "fma-overview"
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(panel["title"] for panel in document["panels"])
    for wanted in ("Actuation time", "Hot / warm / cold", "per InferenceServerConfig", "Launcher phases"):
        assert wanted in titles
    for wanted in ("Work-queue depth", "Webhook latency", "extender latency"):
        assert wanted in titles
    for panel in document["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert METRIC.search(target["expr"]), f"{panel['title']}: no FMA metric in {target['expr']!r}"


@pytest.mark.parametrize(("what", "exprs"), [("dashboard", dashboard_exprs()), ("rules", rule_exprs())])
def test_every_metric_name_is_declared_by_a_component(what: str, exprs: list[str]) -> None:
    assert metric_names(exprs) - _declared() == set(), what


def test_rules_cover_the_four_concerns_and_carry_severity_and_summary() -> None:
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"FMARequestersStuckUnbound", "FMAEngineStartFailuresRepeating", "FMALaunchersStuck"} <= names
    assert "FMAWebhookErrors" in names
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


def _promtool() -> str:
    """promtool on PATH or where ``scripts/test-tools.sh`` (run by ``make test``) puts it.

    Under ``make test`` (``FMA_REQUIRE_TEST_TOOLS=1``) a missing promtool fails the test; a developer running
    pytest by hand without it gets a skip that says how to install it."""
    found = shutil.which("promtool")
    cached = binaries.cache_root() / "tools" / "promtool"
    if found is None and cached.is_file():
        found = str(cached)
    if found is None:
        message = "promtool is not installed: run scripts/test-tools.sh (make test does)"
        if os.environ.get("FMA_REQUIRE_TEST_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_promtool_accepts_the_rules() -> None:
    promtool = _promtool()
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_the_start_failure_alert_counts_failed_starts_and_failed_calls_per_isc(tmp_path: pathlib.Path) -> None:
    """Two starts that failed plus one failed create call in 15 minutes fire it for that ISC; two alone do not."""
    promtool = _promtool()
    document = yaml.safe_load(RULES.read_text())
    rule = next(r for g in document["groups"] for r in g["rules"] if r["alert"] == "FMAEngineStartFailuresRepeating")
    assert "fma_start_failures_total" in rule["expr"]

    def rendered(text: str) -> str:
        return text.replace("{{ $labels.isc_name }}", "broken").replace("{{ $value }}", "3")

    failures = "0 0 1 1 1 2 2 2 2 2 2 2 2 2 2 2 2"
    http_labels = 'purpose="create_instance",method="PUT",exported_namespace="ns",isc_name="broken",status_code="500"'
    case = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'fma_start_failures_total{exported_namespace="ns",isc_name="broken",reason="exited"}',
                        "values": failures,
                    },
                    {
                        "series": 'fma_start_failures_total{exported_namespace="ns",isc_name="fine",reason="deadline"}',
                        "values": failures,
                    },
                    {
                        "series": f"fma_http_latency_seconds_count{{{http_labels}}}",
                        "values": "0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "15m",
                        "alertname": "FMAEngineStartFailuresRepeating",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "isc_name": "broken"},
                                "exp_annotations": {k: rendered(v) for k, v in rule["annotations"].items()},
                            }
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "start-failures.yaml"
    path.write_text(yaml.safe_dump(case))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _render(*sets: str) -> list[dict[str, Any]]:
    helm = binaries.locate().helm
    if not helm.exists():
        pytest.fail(f"helm is missing at {helm}; run 'make binaries'")
    argv = [str(helm), "template", "fma", str(CHART), "--namespace", "fma-system"]
    argv += ["--kube-version", binaries.KUBERNETES_VERSION]
    for value in sets:
        argv += ["--set", value]
    argv += [
        "--show-only",
        "templates/prometheusrule.yaml",
        "--show-only",
        "templates/grafana-dashboard-configmap.yaml",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0 and "could not find template" in result.stderr:
        return []
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_chart_renders_neither_by_default() -> None:
    assert _render() == []


def test_the_chart_embeds_the_dashboard_and_the_rules_when_enabled() -> None:
    objects = {doc["kind"]: doc for doc in _render("grafanaDashboard.enabled=true", "prometheusRule.enabled=true")}
    config_map = objects["ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["fma-overview.json"]) == json.loads(DASHBOARD.read_text())
    rule = objects["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
