"""Bad input to the dual-pods controller: a clear status error and a Warning Event, no retry storm."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devcluster import waiting
from kube import resources

from .conftest import ENGINE_OPTIONS, Harness

pytestmark = pytest.mark.cluster

P = "dual-pods.llm-d.ai/"


def _status(harness: Harness, app: str) -> list[str] | None:
    pods = harness.requesters(app)
    if not pods:
        return None
    value = pods[0]["metadata"].get("annotations", {}).get(P + "status")
    if value is None:
        return None
    return json.loads(value)["Errors"] or []


def _events(harness: Harness, reason: str) -> list[dict[str, Any]]:
    items, _ = harness.api.list_all(resources.EVENTS, harness.namespace)
    return [e for e in items if e.get("reason") == reason]


def _reported(harness: Harness, app: str, fragment: str) -> list[str]:
    return waiting.wait_for(
        lambda: [e for e in (_status(harness, app) or []) if fragment in e],
        timeout=60,
        what=f"{fragment!r} in the status of {app}'s requester",
    )


def test_missing_isc_unknown_lc_and_malformed_template_are_reported(harness: Harness) -> None:
    harness.launcher_config("good")
    harness.create(
        resources.LAUNCHER_CONFIGS,
        {
            "apiVersion": "fma.llm-d.ai/v1alpha1",
            "kind": "LauncherConfig",
            "metadata": {"name": "no-server"},
            "spec": {"maxInstances": 1, "podTemplate": {"spec": {"containers": [{"name": "other", "image": "x"}]}}},
        },
    )
    harness.isc("lc-missing", lc="nowhere")
    harness.isc("lc-malformed", lc="no-server")
    harness.isc("fine", lc="good")
    harness.start_controller()
    harness.deployment("missing", "does-not-exist")
    harness.deployment("unknown-lc", "lc-missing")
    harness.deployment("malformed", "lc-malformed")
    harness.deployment("fine", "fine")

    assert _reported(harness, "missing", 'failed to get InferenceServerConfig "does-not-exist"')
    assert _reported(harness, "unknown-lc", 'LauncherConfig "nowhere"')
    assert _reported(harness, "malformed", 'container "inference-server" not found')
    # Other requesters are unaffected.
    harness.ready_requester("fine")
    failures = waiting.wait_for(lambda: _events(harness, "ActuationFailed"), timeout=30, what="Warning Events")
    assert all(e["type"] == "Warning" for e in failures)
    assert {e["involvedObject"]["name"].split("-")[0] for e in failures} >= {"missing", "unknown", "malformed"}
    # No retry storm: one Event per problem, not one per retry.
    assert all(e.get("count", 1) <= 2 for e in failures)
    # The ISCs' own status names the unresolved references.
    isc = harness.api.get(resources.INFERENCE_SERVER_CONFIGS, "lc-missing", harness.namespace)
    assert isc["status"]["errors"] == ['LauncherConfig "nowhere" does not exist']
    refs = {c["type"]: c for c in isc["status"]["conditions"]}["ResolvedRefs"]
    assert (refs["status"], refs["reason"]) == ("False", "LauncherConfigNotFound")

    # Fixing the input heals the requester without touching it.
    harness.launcher_config("nowhere")
    waiting.wait_for(lambda: _status(harness, "unknown-lc") == [], timeout=60, what="the error cleared")
    harness.ready_requester("unknown-lc")


def test_bad_routing_label_keys_are_reported_on_the_isc(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("bad-routing", labels={"dual-pods.llm-d.ai/dual": "x"})
    harness.start_controller()

    def isc_errors() -> list[str]:
        isc = harness.api.get(resources.INFERENCE_SERVER_CONFIGS, "bad-routing", harness.namespace)
        return list((isc.get("status") or {}).get("errors") or [])

    errors = waiting.wait_for(isc_errors, timeout=30, what="the ISC's status errors")
    assert any("dual-pods.llm-d.ai/" in e for e in errors)
    isc = harness.api.get(resources.INFERENCE_SERVER_CONFIGS, "bad-routing", harness.namespace)
    accepted = {c["type"]: c for c in isc["status"]["conditions"]}["Accepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "InvalidSpec")


def test_a_malformed_server_patch_is_reported(harness: Harness) -> None:
    harness.start_controller()
    template = harness.direct_template("bad-patch", "m")
    template["metadata"]["annotations"][P + "server-patch"] = "spec: {containers: [unclosed"
    harness.create(
        resources.Resource("apps", "v1", "deployments", "Deployment"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "bad-patch"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "bad-patch"}}, "template": template},
        },
    )
    assert _reported(harness, "bad-patch", "failed to construct the nominal server-providing Pod")


def test_a_silent_engine_is_reported_after_the_start_deadline_and_still_awaited(harness: Harness) -> None:
    harness.launcher_config()
    harness.isc("slow", options=ENGINE_OPTIONS.replace("--sim-startup-seconds 0.3", "--sim-startup-seconds 6"))
    harness.start_controller("--start-deadline", "2")
    harness.deployment("slow", "slow")
    assert _reported(harness, "slow", "has not answered within")
    failures = waiting.wait_for(lambda: _events(harness, "ActuationFailed"), timeout=30, what="a Warning Event")
    assert any("has not answered within" in e["message"] for e in failures)
    # The controller keeps waiting: once the engine answers, the requester becomes Ready and the error clears.
    harness.ready_requester("slow")
    assert _status(harness, "slow") == []
