"""``fma-webhook``'s command line: configuration errors and ``render-config``."""

from __future__ import annotations

import base64

import yaml

from webhook import __main__ as cli


def test_invalid_configuration_exits_2(capsys) -> None:
    assert cli.main(["--probes-port", "9000", "--spi-port", "9000"]) == 2
    assert "probes_port and spi_port must differ" in capsys.readouterr().err


def test_render_config_for_a_service(tmp_path, capsys) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_bytes(b"PEM")
    argv = [
        "render-config",
        "--ca-bundle-file",
        str(bundle),
        "--service",
        "fma/fma-webhook:8443",
        "--fma-namespace",
        "fma",
    ]
    assert cli.main(argv) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    (webhook,) = document["webhooks"]
    assert webhook["clientConfig"] == {
        "caBundle": base64.b64encode(b"PEM").decode(),
        "service": {"namespace": "fma", "name": "fma-webhook", "port": 8443, "path": "/mutate"},
    }
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", "fma"]
