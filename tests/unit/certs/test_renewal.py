"""Rotation runs against a file store and a fake API: contents and the order of writes."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest

from certs import ca_bundle, credential, errors, injection, renewal, store
from certs.rotation_plan import Action
from kube import resources

DAY = datetime.timedelta(days=1)
TARGET = injection.Target("mutatingwebhookconfiguration", "fma-webhook")


class RecordingStore:
    """A store that remembers the order of its writes."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}
        self.saves: list[list[str]] = []

    def describe(self) -> str:
        return "memory"

    def load(self) -> dict[str, bytes]:
        return dict(self.items)

    def save(self, changes: dict[str, bytes | None]) -> None:
        self.saves.append(sorted(changes))
        for key, value in changes.items():
            if value is None:
                self.items.pop(key, None)
            else:
                self.items[key] = value


def _mwc(fake_api) -> None:
    fake_api.put(
        "mutatingwebhookconfigurations",
        None,
        {"metadata": {"name": "fma-webhook"}, "webhooks": [{"name": "a", "clientConfig": {"url": "https://x"}}]},
    )


def _injected(fake_api) -> set[str]:
    obj = fake_api.get(resources.MUTATING_WEBHOOK_CONFIGURATIONS, "fma-webhook")
    return ca_bundle.fingerprints(base64.b64decode(obj["webhooks"][0]["clientConfig"]["caBundle"]))


def test_full_ca_rotation_never_serves_an_untrusted_certificate(policy, now, fake_api) -> None:
    _mwc(fake_api)
    memory = RecordingStore()

    def step(at: datetime.datetime, **kwargs: Any) -> renewal.Outcome:
        return renewal.run(memory, policy, at, api=fake_api, targets=[TARGET], **kwargs)

    created = step(now)
    assert created.plan.action is Action.CREATE
    first_ca = created.state.ca
    assert _injected(fake_api) == {first_ca.fingerprint}
    assert step(now + DAY).plan.action is Action.KEEP

    memory.saves.clear()
    staged = step(now + DAY, force_ca=True)
    assert staged.plan.action is Action.STAGE
    assert memory.saves == [[store.BUNDLE, store.NEXT_CA_CERT, store.NEXT_CA_KEY]], "serving untouched while staging"
    next_ca = staged.state.next_ca
    assert _injected(fake_api) == {first_ca.fingerprint, next_ca.fingerprint}

    memory.saves.clear()
    promoted = step(now + DAY)
    assert promoted.plan.action is Action.PROMOTE
    assert promoted.state.ca.fingerprint == next_ca.fingerprint
    assert credential.signed_by(promoted.state.serving.certificate, next_ca.certificate)
    assert memory.saves == [
        [store.CA_CERT, store.CA_KEY, store.NEXT_CA_CERT, store.NEXT_CA_KEY, store.TLS_CERT, store.TLS_KEY]
    ]
    assert store.NEXT_CA_CERT not in memory.items
    assert _injected(fake_api) == {first_ca.fingerprint, next_ca.fingerprint}, "old CA kept during the overlap"

    pruned = step(now + DAY + 2 * policy.overlap)
    assert pruned.plan.drop_from_bundle == {first_ca.fingerprint}
    assert _injected(fake_api) == {next_ca.fingerprint}
    assert ca_bundle.fingerprints(memory.items[store.BUNDLE]) == {next_ca.fingerprint}


def test_promotion_waits_until_every_target_trusts_the_next_ca(policy, now, fake_api) -> None:
    _mwc(fake_api)
    memory = RecordingStore()
    renewal.run(memory, policy, now, api=fake_api, targets=[TARGET])
    renewal.run(memory, policy, now, api=fake_api, targets=[TARGET], force_ca=True)
    obj = fake_api.get(resources.MUTATING_WEBHOOK_CONFIGURATIONS, "fma-webhook")
    obj["webhooks"][0]["clientConfig"]["caBundle"] = base64.b64encode(memory.items[store.CA_CERT]).decode()
    fake_api.put("mutatingwebhookconfigurations", None, obj)  # someone reverted the bundle
    serving_before = memory.items[store.TLS_CERT]
    outcome = renewal.run(memory, policy, now, api=fake_api, targets=[TARGET])
    assert outcome.plan.action is Action.PUBLISH
    assert memory.items[store.TLS_CERT] == serving_before
    assert outcome.injected == (TARGET,)
    assert renewal.run(memory, policy, now, api=fake_api, targets=[TARGET]).plan.action is Action.PROMOTE


def test_file_store_round_trip_and_idempotent_init(policy, now, tmp_path) -> None:
    files = store.FileStore(tmp_path / "certs")
    renewal.run(files, policy, now)
    snapshot = files.load()
    assert set(snapshot) == {store.CA_CERT, store.CA_KEY, store.BUNDLE, store.TLS_CERT, store.TLS_KEY}
    assert (tmp_path / "certs" / store.TLS_KEY).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "certs" / store.TLS_CERT).stat().st_mode & 0o777 == 0o644
    again = renewal.run(files, policy, now + DAY)
    assert not again.plan.changes_store
    assert files.load() == snapshot


def test_broken_ca_is_an_error_but_a_broken_serving_cert_is_reissued(policy, now) -> None:
    memory = RecordingStore()
    renewal.run(memory, policy, now)
    memory.items[store.TLS_KEY] = b"garbage"
    outcome = renewal.run(memory, policy, now)
    assert outcome.plan.reissue_serving
    credential.Credential.parse("tls", memory.items[store.TLS_CERT], memory.items[store.TLS_KEY])
    memory.items[store.CA_KEY] = memory.items[store.TLS_KEY]
    with pytest.raises(errors.InvalidMaterial, match="does not match"):
        renewal.run(memory, policy, now)


def test_targets_need_an_api(policy, now) -> None:
    with pytest.raises(ValueError, match="API client"):
        renewal.run(RecordingStore(), policy, now, targets=[TARGET])
