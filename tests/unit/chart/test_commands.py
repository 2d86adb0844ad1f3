"""The chart runs the real CLIs: every command is a console script and its flags parse into settings."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from typing import Any

import pytest

from certs import __main__ as certs_main
from controllers import settings as controllers_settings
from devcluster import binaries
from extender import __main__ as extender_main
from extender import settings as extender_settings
from tests.unit.chart.conftest import CHART, VALUE_SETS, Rendered
from webhook import __main__ as webhook_main
from webhook import settings as webhook_settings

Render = Callable[..., Rendered]
ENV = {"POD_IP": "127.10.0.7", "POD_NAME": "fma-fma-controllers-abc", "POD_NAMESPACE": "fma-system"}


def console_scripts() -> set[str]:
    pyproject = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())
    return set(pyproject["project"]["scripts"])


def expand(args: list[str]) -> list[str]:
    """Kubernetes' $(VAR) expansion with the Pod's field values."""
    return [re.sub(r"\$\((\w+)\)", lambda m: ENV[m.group(1)], arg) for arg in args]


def pod_specs(rendered: Rendered) -> list[dict[str, Any]]:
    specs = [d["spec"]["template"]["spec"] for d in rendered.of("Deployment") + rendered.of("Job")]
    specs += [c["spec"]["jobTemplate"]["spec"]["template"]["spec"] for c in rendered.of("CronJob")]
    specs += [p["spec"] for p in rendered.of("Pod")]
    return specs


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_every_command_is_a_console_script(render: Render, value_set: str) -> None:
    allowed = console_scripts() | {"kube-scheduler", binaries.FMA_SCHEDULER_COMMAND, "python3"}
    for spec in pod_specs(render(VALUE_SETS[value_set])):
        for box in spec["containers"]:
            assert box["command"][0] in allowed, box["command"]


def container_args(rendered: Rendered, kind: str, name: str) -> list[str]:
    obj = rendered.get(kind, name)
    spec = (
        obj["spec"]["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else obj["spec"]["template"]["spec"]
    )
    return expand(list(spec["containers"][0]["args"]))


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_controllers_flags_parse(render: Render, value_set: str) -> None:
    args = container_args(render(VALUE_SETS[value_set]), "Deployment", "fma-fma-controllers")
    settings = controllers_settings.parse_args(args)
    assert settings.namespace == "fma-system"
    assert settings.metrics_host == "127.10.0.7"
    assert settings.metrics_port == 8002
    assert settings.leader_elect is True
    assert settings.identity == "fma-fma-controllers-abc"
    if value_set == "auth-off":
        assert settings.launcher_token_secret is None
    else:
        assert settings.launcher_token_secret == "fma-fma-launcher-token"
        assert settings.launcher_token_file == "/etc/fma-launcher-token/token"


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_webhook_flags_parse(render: Render, value_set: str) -> None:
    args = container_args(render(VALUE_SETS[value_set]), "Deployment", "fma-fma-webhook")
    given = {k: v for k, v in vars(webhook_main._serve_parser().parse_args(args)).items() if v is not None}
    settings = webhook_settings.Settings(**given)
    assert settings.host == "127.10.0.7"
    assert str(settings.tls_cert_file) == "/etc/fma-webhook/tls/tls.crt"
    assert settings.scheduler_name == "fma-scheduler"
    assert settings.requester_image == "ghcr.io/llm-d/fma:0.1.0"


def test_extender_flags_parse(render: Render) -> None:
    args = container_args(render(), "Deployment", "fma-fma-extender")
    given = {k: v for k, v in vars(extender_main._parser().parse_args(args)).items() if v is not None}
    settings = extender_settings.Settings(**given)
    assert (settings.host, settings.port, settings.namespace) == ("127.10.0.7", 8890, "fma-system")
    assert settings.effective_gpu_map_namespace == "fma-system"


@pytest.mark.parametrize(("kind", "name"), [("Job", "fma-fma-certs-init-1"), ("CronJob", "fma-fma-certs-rotate")])
def test_certs_flags_parse(render: Render, kind: str, name: str) -> None:
    args = container_args(render(), kind, name)
    parsed = certs_main._parser().parse_args(args)
    settings = certs_main._settings(parsed)
    assert settings.secret == "fma-system/fma-fma-webhook-tls"
    assert "fma-fma-webhook.fma-system.svc" in settings.dns_names
    assert [str(t) for t in settings.targets()] == ["mutatingwebhookconfiguration/fma-fma-webhook"]
    settings.policy()  # raises without a SAN


def test_extra_args_reach_the_process(render: Render) -> None:
    rendered = render(
        {"controllers": {"extraArgs": ["--start-deadline=900"]}, "webhook": {"extraArgs": ["--requester-cpu=100m"]}}
    )
    settings = controllers_settings.parse_args(container_args(rendered, "Deployment", "fma-fma-controllers"))
    assert settings.start_deadline == 900.0
    args = container_args(rendered, "Deployment", "fma-fma-webhook")
    given = {k: v for k, v in vars(webhook_main._serve_parser().parse_args(args)).items() if v is not None}
    assert webhook_settings.Settings(**given).requester_cpu == "100m"
