"""Secret store concurrency, and caBundle injection into each kind of target."""

from __future__ import annotations

import base64

import pytest

from certs import errors, injection, store
from kube import resources


def test_secret_store_creates_then_updates_with_its_version(fake_api) -> None:
    secret = store.SecretStore(fake_api, "fma", "certs")
    assert secret.load() == {}
    secret.save({store.TLS_CERT: b"a", store.TLS_KEY: b"b"})
    assert fake_api.writes == ["create secrets/certs"]
    assert secret.load() == {store.TLS_CERT: b"a", store.TLS_KEY: b"b"}
    secret.save({store.TLS_CERT: b"c", store.TLS_KEY: None})
    assert secret.load() == {store.TLS_CERT: b"c"}
    stored = fake_api.get(resources.SECRETS, "certs", "fma")
    assert stored["type"] == "Opaque"
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "fma-certs"}


def test_secret_store_refuses_to_overwrite_a_concurrent_change(fake_api) -> None:
    ours = store.SecretStore(fake_api, "fma", "certs")
    theirs = store.SecretStore(fake_api, "fma", "certs")
    ours.save({store.BUNDLE: b"1"})
    ours.load()
    theirs.load()
    theirs.save({store.BUNDLE: b"2"})
    with pytest.raises(errors.ConcurrentUpdate):
        ours.save({store.BUNDLE: b"3"})
    assert theirs.load() == {store.BUNDLE: b"2"}


def test_secret_store_refuses_to_overwrite_a_secret_created_since_its_read(fake_api) -> None:
    ours = store.SecretStore(fake_api, "fma", "certs")
    assert ours.load() == {}
    store.SecretStore(fake_api, "fma", "certs").save({store.BUNDLE: b"theirs"})
    with pytest.raises(errors.ConcurrentUpdate, match="created"):
        ours.save({store.BUNDLE: b"ours"})


def test_file_store_rejects_unknown_items_and_deletes(tmp_path) -> None:
    files = store.FileStore(tmp_path)
    files.save({store.BUNDLE: b"x"})
    files.save({store.BUNDLE: None, store.NEXT_CA_CERT: None})
    assert files.load() == {}
    with pytest.raises(ValueError, match="unknown store item"):
        files.save({"../escape": b"x"})


@pytest.mark.parametrize(
    ("text", "target"),
    [
        pytest.param("fma-webhook", injection.Target("mutatingwebhookconfiguration", "fma-webhook"), id="bare"),
        pytest.param(
            "ValidatingWebhookConfiguration/v", injection.Target("validatingwebhookconfiguration", "v"), id="vwc"
        ),
        pytest.param("apiservice/v1.x", injection.Target("apiservice", "v1.x"), id="apiservice"),
    ],
)
def test_target_parse(text, target) -> None:
    assert injection.Target.parse(text) == target


@pytest.mark.parametrize("text", ["deployment/x", "mutatingwebhookconfiguration/"])
def test_target_parse_rejects(text) -> None:
    with pytest.raises(ValueError, match="target"):
        injection.Target.parse(text)


@pytest.mark.parametrize(
    ("kind", "obj", "paths"),
    [
        pytest.param(
            "mutatingwebhookconfiguration",
            {"webhooks": [{"clientConfig": {"url": "u"}}, {"clientConfig": {"service": {}}}]},
            [("webhooks", 0, "clientConfig"), ("webhooks", 1, "clientConfig")],
            id="mwc",
        ),
        pytest.param(
            "customresourcedefinition",
            {"spec": {"conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {}}}}},
            [("spec", "conversion", "webhook", "clientConfig")],
            id="crd",
        ),
        pytest.param("apiservice", {"spec": {"service": {}}}, [("spec",)], id="apiservice"),
    ],
)
def test_with_ca_bundle_sets_every_place(kind, obj, paths) -> None:
    updated, changed = injection.with_ca_bundle(kind, obj, b"PEM")
    assert changed
    for path in paths:
        node = updated
        for part in path:
            node = node[part]
        assert base64.b64decode(node["caBundle"]) == b"PEM"
    assert "caBundle" not in str(obj), "the input is not changed"
    assert injection.with_ca_bundle(kind, updated, b"PEM") == (updated, False)


def test_inject_retries_conflicts_and_reports_missing_targets(fake_api) -> None:
    fake_api.put("mutatingwebhookconfigurations", None, {"metadata": {"name": "w"}, "webhooks": [{"clientConfig": {}}]})
    fake_api.conflicts_to_inject = 2
    target = injection.Target("mutatingwebhookconfiguration", "w")
    assert injection.inject(fake_api, [target], b"PEM") == [target]
    assert injection.inject(fake_api, [target], b"PEM") == []
    with pytest.raises(errors.InjectionFailed, match="missing"):
        injection.inject(fake_api, [injection.Target("mutatingwebhookconfiguration", "missing")], b"PEM")
    fake_api.put("mutatingwebhookconfigurations", None, {"metadata": {"name": "empty"}, "webhooks": []})
    with pytest.raises(errors.InjectionFailed, match="no webhook clientConfig"):
        injection.inject(fake_api, [injection.Target("mutatingwebhookconfiguration", "empty")], b"PEM")
