"""``fma-certs`` against the real apiserver: a Secret store and caBundle injection through a CA rotation."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest

from certs import __main__ as cli
from certs import ca_bundle, store
from devcluster import control_plane, waiting
from kube import client as kube_client
from kube import resources
from webhook import configuration

pytestmark = pytest.mark.cluster


@pytest.fixture
def api(devcluster: control_plane.ClusterState) -> Iterator[kube_client.Client]:
    client = kube_client.connect(str(devcluster.kubeconfig))
    yield client
    client.close()


@pytest.fixture
def namespace(api: kube_client.Client) -> Iterator[str]:
    name = f"certs-{uuid.uuid4().hex[:8]}"
    api.create(resources.NAMESPACES, {"metadata": {"name": name}})
    yield name
    api.delete(resources.NAMESPACES, name)


@pytest.fixture
def mwc(api: kube_client.Client) -> Iterator[str]:
    """A configuration that matches no namespace, only to carry a caBundle."""
    name = f"fma-certs-test-{uuid.uuid4().hex[:8]}"
    document = configuration.render(
        b"",
        url="https://127.0.0.1:1/mutate",
        name=name,
        namespace_selector={"matchLabels": {"fma.test/never": "true"}},
    )
    api.create(resources.MUTATING_WEBHOOK_CONFIGURATIONS, document)
    yield name
    api.delete(resources.MUTATING_WEBHOOK_CONFIGURATIONS, name)


def _injected(api: kube_client.Client, name: str) -> set[str]:
    obj = api.get(resources.MUTATING_WEBHOOK_CONFIGURATIONS, name)
    pem = base64.b64decode(obj["webhooks"][0]["clientConfig"].get("caBundle", ""))
    return ca_bundle.fingerprints(pem)


def _secret_bundle(api: kube_client.Client, namespace: str) -> set[str]:
    secret = api.get(resources.SECRETS, "webhook-certs", namespace)
    return ca_bundle.fingerprints(base64.b64decode(secret["data"][store.BUNDLE]))


def test_secret_store_and_injection_through_a_ca_rotation(
    api: kube_client.Client, namespace: str, mwc: str, devcluster: control_plane.ClusterState, capsys
) -> None:
    common = ["--secret", f"{namespace}/webhook-certs", "--kubeconfig", str(devcluster.kubeconfig)]
    sans = ["--ip", "127.0.0.1", "--dns-name", f"fma-webhook.{namespace}.svc"]
    assert cli.main(["init", *common, *sans, "--inject", mwc]) == 0
    assert json.loads(capsys.readouterr().out)["injected"] == [f"mutatingwebhookconfiguration/{mwc}"]
    secret = api.get(resources.SECRETS, "webhook-certs", namespace)
    assert set(secret["data"]) == {store.CA_CERT, store.CA_KEY, store.BUNDLE, store.TLS_CERT, store.TLS_KEY}
    first = _secret_bundle(api, namespace)
    assert _injected(api, mwc) == first
    assert len(first) == 1

    assert cli.main(["rotate", *common, *sans, "--inject", mwc, "--force-ca"]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "stage"
    both = _secret_bundle(api, namespace)
    assert len(both) == 2
    assert _injected(api, mwc) == both

    assert cli.main(["rotate", *common, *sans, "--inject", mwc, "--overlap-hours", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "promote"
    assert cli.main(["rotate", *common, *sans, "--inject", mwc, "--overlap-hours", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["dropped_from_bundle"] == sorted(first)
    final = _secret_bundle(api, namespace)
    assert final == both - first
    waiting.wait_for(lambda: _injected(api, mwc) == final, timeout=10, what="the pruned bundle in the configuration")

    assert cli.main(["show", *common, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["store"] == f"secret/{namespace}/webhook-certs"
    assert shown["next_ca"] is None
    assert {c["fingerprint_sha256"] for c in shown["ca_bundle"]} == final


def test_inject_writes_the_stored_bundle(
    api: kube_client.Client, namespace: str, mwc: str, devcluster: control_plane.ClusterState, capsys
) -> None:
    common = ["--secret", f"{namespace}/webhook-certs", "--kubeconfig", str(devcluster.kubeconfig)]
    assert cli.main(["init", *common, "--ip", "127.0.0.1"]) == 0
    capsys.readouterr()
    assert _injected(api, mwc) == set()
    assert cli.main(["inject", *common, "--inject", f"MutatingWebhookConfiguration/{mwc}"]) == 0
    assert _injected(api, mwc) == _secret_bundle(api, namespace)
    assert cli.main(["inject", *common, "--inject", "mutatingwebhookconfiguration/does-not-exist"]) == 1
    assert "does-not-exist" in capsys.readouterr().err
