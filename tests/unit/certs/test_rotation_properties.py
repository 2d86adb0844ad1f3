"""Property test of rotation: across any sequence of runs, the served certificate is always trusted.

A random sequence of steps (time passing, forced CA or serving renewals, a
target whose caBundle gets reverted by someone) drives ``renewal.run``
against an in-memory store and a fake API.  After every run:

* the serving certificate is signed by the current CA;
* the caBundle in the store and in the target contains the current CA (and a
  staged next CA);
* whatever certificate a server could still be presenting — the new one or
  the one before the run (servers reload with a delay) — is signed by a CA in
  the target's caBundle, except after the overlap has passed for the old one.
"""

from __future__ import annotations

import base64
import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs import ca_bundle, credential, injection, issuer, renewal, rotation_plan
from kube import resources

TARGET = injection.Target("mutatingwebhookconfiguration", "w")
POLICY = rotation_plan.Policy(
    identity=issuer.ServingIdentity("w", ip_addresses=("127.0.0.1",)),
    ca_validity=datetime.timedelta(days=90),
    serving_validity=datetime.timedelta(days=30),
    overlap=datetime.timedelta(hours=6),
)
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

_steps = st.lists(
    st.one_of(
        st.tuples(st.just("wait"), st.sampled_from([1, 6, 24, 24 * 7, 24 * 25])),
        st.tuples(st.just("force_ca"), st.just(0)),
        st.tuples(st.just("force_serving"), st.just(0)),
        st.tuples(st.just("revert_target"), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


class MemoryStore:
    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def describe(self) -> str:
        return "memory"

    def load(self) -> dict[str, bytes]:
        return dict(self.items)

    def save(self, changes: dict[str, bytes | None]) -> None:
        for key, value in changes.items():
            if value is None:
                self.items.pop(key, None)
            else:
                self.items[key] = value


def _target_bundle(fake_api) -> set[str]:
    obj = fake_api.get(resources.MUTATING_WEBHOOK_CONFIGURATIONS, "w")
    return ca_bundle.fingerprints(base64.b64decode(obj["webhooks"][0]["clientConfig"].get("caBundle", "")))


def _signer(serving: credential.Credential, cas: list) -> str | None:
    for ca in cas:
        if credential.signed_by(serving.certificate, ca):
            return credential.fingerprint(ca)
    return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps)
def test_served_certificate_is_always_trusted(steps, fake_api) -> None:
    fake_api.objects.clear()
    fake_api.put("mutatingwebhookconfigurations", None, {"metadata": {"name": "w"}, "webhooks": [{"clientConfig": {}}]})
    memory = MemoryStore()
    now = START
    renewal.run(memory, POLICY, now, api=fake_api, targets=[TARGET])
    every_ca: list = []
    replaced: list[tuple[credential.Credential, datetime.datetime]] = []
    for action, hours in steps:
        before = renewal.read_state(memory.load())
        if action == "wait":
            now += datetime.timedelta(hours=hours)
        elif action == "revert_target":
            obj = fake_api.get(resources.MUTATING_WEBHOOK_CONFIGURATIONS, "w")
            obj["webhooks"][0]["clientConfig"]["caBundle"] = base64.b64encode(before.ca.cert_pem).decode()
            fake_api.put("mutatingwebhookconfigurations", None, obj)
            continue
        outcome = renewal.run(
            memory,
            POLICY,
            now,
            api=fake_api,
            targets=[TARGET],
            force_ca=action == "force_ca",
            force_serving=action == "force_serving",
        )
        after = renewal.read_state(memory.load())
        every_ca += [c.certificate for c in (after.ca, after.next_ca, before.ca, before.next_ca) if c is not None]
        assert after.ca is not None
        assert after.serving is not None
        assert credential.signed_by(after.serving.certificate, after.ca.certificate)
        stored_bundle = {credential.fingerprint(c) for c in after.bundle}
        injected = _target_bundle(fake_api)
        assert stored_bundle == injected
        assert after.ca.fingerprint in injected
        if after.next_ca is not None:
            assert after.next_ca.fingerprint in injected
        assert _signer(after.serving, every_ca) in injected
        old = before.serving
        if outcome.plan.action is rotation_plan.Action.CREATE:
            replaced.clear()  # nothing was trusted before: there is no server to keep working
        elif old is not None and old.fingerprint != after.serving.fingerprint:
            replaced.append((old, now))
        for certificate, at in replaced:
            reloading = now < at + POLICY.overlap - issuer.CLOCK_SKEW and now < certificate.not_after
            if reloading:
                assert _signer(certificate, every_ca) in injected, "a server that has not reloaded must stay trusted"
