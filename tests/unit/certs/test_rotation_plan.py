"""The pure rotation decisions, walked through a CA rotation and serving renewals."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from certs import credential, errors, issuer, rotation_plan
from certs.rotation_plan import Action

DAY = datetime.timedelta(days=1)


def _fresh(policy: rotation_plan.Policy, now: datetime.datetime) -> rotation_plan.State:
    ca = issuer.create_ca("fma-ca", now, policy.ca_validity)
    serving = issuer.issue_serving(ca, policy.identity, now, policy.serving_validity)
    return rotation_plan.State(ca=ca, serving=serving, bundle=(ca.certificate,))


def _plan(state, policy, now, published=True, **kwargs) -> rotation_plan.Plan:
    return rotation_plan.plan(state, policy, now, next_ca_published=published, **kwargs)


def test_empty_store_creates_everything(policy, now) -> None:
    plan = _plan(rotation_plan.State(), policy, now)
    assert plan.action is Action.CREATE
    assert plan.reissue_serving
    assert plan.changes_store


def test_fresh_store_needs_nothing(policy, now) -> None:
    plan = _plan(_fresh(policy, now), policy, now + DAY)
    assert plan == rotation_plan.Plan(Action.KEEP, False, frozenset(), ())
    assert not plan.changes_store


def test_serving_renewed_when_a_third_is_left(policy, now) -> None:
    state = _fresh(policy, now)
    assert not _plan(state, policy, now + 19 * DAY).reissue_serving
    plan = _plan(state, policy, now + 21 * DAY)
    assert plan.action is Action.KEEP
    assert plan.reissue_serving
    assert any("of its validity left" in r for r in plan.reasons)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"dns_names": ("other.svc",)}, id="dns"),
        pytest.param({"ip_addresses": ("10.0.0.1",)}, id="ip"),
    ],
)
def test_serving_renewed_when_sans_change(policy, now, change) -> None:
    state = _fresh(policy, now)
    changed = dataclasses.replace(policy, identity=dataclasses.replace(policy.identity, **change))
    plan = _plan(state, changed, now + DAY)
    assert plan.reissue_serving
    assert any("differ" in r for r in plan.reasons)


def test_serving_renewed_when_the_algorithm_changes(policy, now) -> None:
    plan = _plan(_fresh(policy, now), dataclasses.replace(policy, algorithm="ecdsa-p384"), now + DAY)
    assert plan.reissue_serving


def test_serving_renewed_when_forced_or_signed_by_another_ca(policy, now) -> None:
    state = _fresh(policy, now)
    assert _plan(state, policy, now, force_serving=True).reissue_serving
    stranger = issuer.create_ca("other", now, policy.ca_validity)
    foreign = issuer.issue_serving(stranger, policy.identity, now, policy.serving_validity)
    plan = _plan(dataclasses.replace(state, serving=foreign), policy, now)
    assert plan.reissue_serving
    assert any("not signed by the current CA" in r for r in plan.reasons)


def test_ca_rotation_goes_stage_publish_promote_prune(policy, now) -> None:
    state = _fresh(policy, now)
    t = now + 201 * DAY  # less than a third of 300 days left
    serving = issuer.issue_serving(state.ca, policy.identity, t - DAY, policy.serving_validity)
    state = dataclasses.replace(state, serving=serving)
    plan = _plan(state, policy, t)
    assert plan.action is Action.STAGE
    assert not plan.reissue_serving, "the serving certificate must not change before the new CA is trusted"
    next_ca = issuer.create_ca("fma-ca", t, policy.ca_validity)
    staged = dataclasses.replace(state, next_ca=next_ca, bundle=(state.ca.certificate, next_ca.certificate))
    waiting = _plan(staged, policy, t, published=False)
    assert waiting.action is Action.PUBLISH
    assert not waiting.reissue_serving
    assert waiting.drop_from_bundle == frozenset()
    promote = _plan(staged, policy, t, published=True)
    assert promote.action is Action.PROMOTE
    assert promote.reissue_serving
    assert promote.drop_from_bundle == frozenset()
    new_serving = issuer.issue_serving(next_ca, policy.identity, t, policy.serving_validity)
    promoted = rotation_plan.State(ca=next_ca, serving=new_serving, bundle=staged.bundle)
    assert _plan(promoted, policy, t + datetime.timedelta(minutes=30)).drop_from_bundle == frozenset()
    prune = _plan(promoted, policy, t + datetime.timedelta(hours=2))
    assert prune.action is Action.KEEP
    assert prune.drop_from_bundle == {credential.fingerprint(state.ca.certificate)}


def test_forced_ca_rotation_stages(policy, now) -> None:
    assert _plan(_fresh(policy, now), policy, now, force_ca=True).action is Action.STAGE


def test_expired_ca_is_recreated_and_expired_bundle_entries_dropped(policy, now) -> None:
    state = _fresh(policy, now)
    assert _plan(state, policy, now + 301 * DAY).action is Action.CREATE
    old = issuer.create_ca("old", now - 10 * DAY, 5 * DAY)
    plan = _plan(dataclasses.replace(state, bundle=(old.certificate, state.ca.certificate)), policy, now)
    assert plan.drop_from_bundle == {old.fingerprint}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"renew_fraction": 0.0}, id="fraction-zero"),
        pytest.param({"renew_fraction": 1.0}, id="fraction-one"),
        pytest.param({"serving_validity": datetime.timedelta(days=400)}, id="serving-beyond-ca"),
        pytest.param({"overlap": datetime.timedelta(hours=-1)}, id="negative-overlap"),
        pytest.param({"ca_validity": datetime.timedelta(0)}, id="zero-validity"),
    ],
)
def test_policy_rejects(policy, change) -> None:
    with pytest.raises(errors.InvalidPolicy):
        dataclasses.replace(policy, **change)
