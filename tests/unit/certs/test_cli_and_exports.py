"""``fma-certs`` end to end on a directory, its usage errors, and every module's ``__all__``."""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest

import certs
from certs import __main__ as cli


def test_init_rotate_show(tmp_path, capsys) -> None:
    where = ["--dir", str(tmp_path / "c")]
    sans = ["--ip", "127.0.0.1", "--dns-name", "fma-webhook.fma.svc"]
    assert cli.main(["init", *where, *sans]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "create"
    assert cli.main(["rotate", *where, *sans, "--force-ca"]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "stage"
    assert cli.main(["show", *where, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["next_ca"] is not None
    assert len(shown["ca_bundle"]) == 2
    assert shown["serving"]["ip_addresses"] == ["127.0.0.1"]
    assert shown["serving"]["dns_names"] == ["fma-webhook.fma.svc"]
    assert cli.main(["rotate", *where, *sans]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "promote"
    assert cli.main(["show", *where]) == 0
    assert "next ca: none" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["init", "--ip", "127.0.0.1"], "exactly one of dir and secret", id="no-store"),
        pytest.param(["init", "--dir", "x"], "at least one DNS name", id="no-san"),
        pytest.param(["init", "--dir", "x", "--ip", "localhost"], "IPv4", id="bad-ip"),
        pytest.param(["init", "--secret", "nonamespace", "--ip", "127.0.0.1"], "namespace", id="bad-secret"),
        pytest.param(
            ["init", "--dir", "x", "--ip", "127.0.0.1", "--renew-fraction", "2"], "renew_fraction", id="fraction"
        ),
        pytest.param(["inject", "--dir", "x", "--inject", "pod/x"], "unknown target kind", id="bad-target"),
    ],
)
def test_usage_errors(argv, message, capsys) -> None:
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_inject_without_bundle_fails(tmp_path, capsys) -> None:
    assert cli.main(["inject", "--dir", str(tmp_path), "--kubeconfig", str(tmp_path / "none")]) == 2
    assert "--inject" in capsys.readouterr().err


_MODULES = sorted(m.name for m in pkgutil.iter_modules(certs.__path__, "certs."))


@pytest.mark.parametrize("name", [*_MODULES, "certs"])
def test_all_is_declared_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list)
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ names missing {exported!r}"
