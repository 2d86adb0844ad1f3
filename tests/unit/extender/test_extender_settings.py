"""Settings and the command line of fma-extender (the paths that end before any I/O)."""

from __future__ import annotations

import pathlib

import pytest

from extender import __main__ as entry
from extender import settings


def test_defaults_serve_loopback_without_tls() -> None:
    defaults = settings.Settings()
    assert (defaults.host, defaults.port, defaults.tls) == ("127.0.0.1", 8890, False)
    assert defaults.effective_gpu_map_namespace is None
    assert settings.Settings(namespace="fma").effective_gpu_map_namespace == "fma"
    assert settings.Settings(namespace="fma", gpu_map_namespace="gpus").effective_gpu_map_namespace == "gpus"


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMA_EXTENDER_PORT", "9999")
    monkeypatch.setenv("FMA_EXTENDER_SLEEPER_LIMIT", "3")
    loaded = settings.Settings()
    assert (loaded.port, loaded.sleeper_limit) == (9999, 3)


def test_tls_files_come_in_pairs(tmp_path: pathlib.Path) -> None:
    both = settings.Settings(tls_cert_file=tmp_path / "c.pem", tls_key_file=tmp_path / "k.pem")
    assert both.tls
    with pytest.raises(ValueError, match="together"):
        settings.Settings(tls_cert_file=tmp_path / "c.pem")


def test_main_rejects_bad_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert entry.main(["--tls-cert-file", "/c.pem"]) == 2
    assert "invalid configuration" in capsys.readouterr().err
    assert entry.main(["--port", "0"]) == 2
