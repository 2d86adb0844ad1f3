"""values.schema.json: bad values stop ``helm template``/``install`` at once, with the field named."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
import yaml

from tests.unit.chart.conftest import CHART, NAMESPACE, HelmFailed, run_helm


def template(helm: pathlib.Path, values: dict[str, Any]) -> str:
    return run_helm(
        helm, "template", "fma", str(CHART), "--namespace", NAMESPACE, "--kube-version", "v1.35.4", values=values
    )


@pytest.mark.parametrize(
    ("values", "field", "why"),
    [
        pytest.param({"controllers": {"replicas": "two"}}, "/controllers/replicas", "want integer", id="wrong-type"),
        pytest.param({"webhook": {"timeoutSeconds": 99}}, "/webhook/timeoutSeconds", "maximum", id="out-of-range"),
        pytest.param({"certs": {"mode": "vault"}}, "/certs/mode", "'self', 'cert-manager'", id="not-in-enum"),
        pytest.param({"controllers": {"replica": 2}}, "/controllers", "'replica' not allowed", id="unknown-key"),
        pytest.param({"image": {"repository": "Not An Image"}}, "/image/repository", "pattern", id="bad-pattern"),
        pytest.param(
            {"controllers": {"leaderElection": {"enabled": False}}},
            "/controllers/leaderElection/enabled",
            "must be true",
            id="replicas-need-leader-election",
        ),
        pytest.param(
            {"webhook": {"failurePolicy": "Maybe"}}, "/webhook/failurePolicy", "'Fail', 'Ignore'", id="enum-2"
        ),
        pytest.param({"scheduler": {"command": []}}, "/scheduler/command", "minItems", id="empty-command"),
        pytest.param({"placementNominate": "yes"}, "/placementNominate", "'off', 'gate', 'plugin'", id="nominate-mode"),
        pytest.param(
            {"scheduler": {"plugin": {"image": {"repo": "x"}}}},
            "/scheduler/plugin/image",
            "'repo' not allowed",
            id="plugin-image-unknown-key",
        ),
        pytest.param(
            {"scheduler": {"plugin": {"command": []}}}, "/scheduler/plugin/command", "minItems", id="plugin-command"
        ),
        pytest.param(
            {"controllers": {"extraArgs": ["start-deadline"]}},
            "/controllers/extraArgs/0",
            "pattern",
            id="extra-arg-not-a-flag",
        ),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(
    helm: pathlib.Path, values: dict[str, Any], field: str, why: str
) -> None:
    with pytest.raises(HelmFailed) as failed:
        template(helm, values)
    message = str(failed.value)
    assert "values don't meet the specifications of the schema" in message
    assert f"at '{field}'" in message
    assert why in message


def test_one_replica_may_run_without_leader_election(helm: pathlib.Path) -> None:
    assert "kind: Deployment" in template(helm, {"controllers": {"replicas": 1, "leaderElection": {"enabled": False}}})


def test_values_yaml_mentions_every_schema_key_and_no_other() -> None:
    """The defaults and the schema describe the same tree (the schema forbids unknown keys)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        props = node.get("properties")
        if props is None or node.get("additionalProperties") is not False or value == {}:
            return  # a free-form map, or an optional object left empty
        assert isinstance(value, dict), path
        assert set(value) == set(props), f"{path}: values.yaml {sorted(value)} vs schema {sorted(props)}"
        for key, sub in props.items():
            walk(sub, value[key], f"{path}/{key}")

    walk(schema, defaults, "")
