"""The reloading TLS context: new files are picked up, a mismatched pair is skipped."""

from __future__ import annotations

import datetime

import pytest

from certs import errors, issuer, reloading_context
from devcluster import waiting


@pytest.fixture
def ca():
    return issuer.create_ca("ca", datetime.datetime.now(datetime.UTC), datetime.timedelta(days=30))


def _issue(ca, days: int):
    now = datetime.datetime.now(datetime.UTC)
    return issuer.issue_serving(
        ca, issuer.ServingIdentity("w", ip_addresses=("127.0.0.1",)), now, datetime.timedelta(days=days)
    )


def test_reload_on_change_and_keep_old_pair_on_mismatch(ca, tmp_path) -> None:
    first, second = _issue(ca, 1), _issue(ca, 2)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(first.cert_pem)
    key.write_bytes(first.key_pem)
    seen = []
    context = reloading_context.ReloadingContext(cert, key, on_reload=seen.append)
    assert context.not_after == first.not_after
    assert context.check()
    assert context.reloads == 0
    cert.write_bytes(second.cert_pem)  # the key is not renewed yet
    assert context.check()
    assert context.not_after == first.not_after
    key.write_bytes(second.key_pem)
    assert context.check()
    assert context.not_after == second.not_after
    assert context.reloads == 1
    assert seen == [first.not_after, second.not_after]


def test_watcher_thread_reloads(ca, tmp_path) -> None:
    first, second = _issue(ca, 1), _issue(ca, 2)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(first.cert_pem)
    key.write_bytes(first.key_pem)
    context = reloading_context.ReloadingContext(cert, key)
    context.start(0.02)
    try:
        key.write_bytes(second.key_pem)
        cert.write_bytes(second.cert_pem)
        waiting.wait_for(lambda: context.reloads == 1, timeout=5, what="the watcher to reload")
        assert context.not_after == second.not_after
    finally:
        context.stop()


def test_unusable_files_fail_at_start(tmp_path) -> None:
    (tmp_path / "c").write_bytes(b"x")
    (tmp_path / "k").write_bytes(b"y")
    with pytest.raises(errors.InvalidMaterial):
        reloading_context.ReloadingContext(tmp_path / "c", tmp_path / "k")
    with pytest.raises(errors.InvalidMaterial):
        reloading_context.ReloadingContext(tmp_path / "missing", tmp_path / "k")
