"""The command line: kubectl's flags and namespace rule, and clear errors with exit status 1."""

from __future__ import annotations

import io
import pathlib
import socket

import pytest
import yaml

from fmactl import cli


def _kubeconfig(path: pathlib.Path, server: str, namespace: str | None = None) -> pathlib.Path:
    context: dict[str, str] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "main", "context": context},
                    {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "ns2"}},
                ],
                "current-context": "main",
            }
        )
    )
    return path


def test_namespace_comes_from_the_context_as_kubectl_does(tmp_path: pathlib.Path) -> None:
    path = _kubeconfig(tmp_path / "config", "https://127.0.0.1:1", namespace="fma")
    assert cli.default_namespace(str(path), None) == "fma"
    assert cli.default_namespace(str(path), "other") == "ns2"
    plain = _kubeconfig(tmp_path / "plain", "https://127.0.0.1:1")
    assert cli.default_namespace(str(plain), None) == "default"
    assert cli.default_namespace(str(tmp_path / "missing"), None) == "default"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["-n", "x", "-o", "json", "status"], id="flags-before"),
        pytest.param(["status", "-n", "x", "-o", "json"], id="flags-after"),
    ],
)
def test_flags_work_before_and_after_the_subcommand(argv: list[str]) -> None:
    args = cli.parser().parse_args(argv)
    assert (args.command, args.namespace, args.output) == ("status", "x", "json")


def test_a_bad_output_format_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parser().parse_args(["status", "-o", "wide"])
    assert exited.value.code == 2


def test_no_cluster_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = _kubeconfig(tmp_path / "config", f"http://127.0.0.1:{port}")
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["--kubeconfig", str(path), "status"], out=out, err=err) == 1
    assert err.getvalue().startswith(f"error: cannot reach the cluster at http://127.0.0.1:{port}")
    assert out.getvalue() == ""


def test_an_unreadable_kubeconfig_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "config"
    bad.write_text("not: [a kubeconfig")
    err = io.StringIO()
    assert cli.main(["--kubeconfig", str(bad), "explain", "p"], out=io.StringIO(), err=err) == 1
    assert err.getvalue().startswith("error: no cluster to talk to")


def test_interval_must_be_positive() -> None:
    err = io.StringIO()
    assert cli.main(["status", "--watch", "--interval", "0"], out=io.StringIO(), err=err) == 2
    assert "--interval" in err.getvalue()
