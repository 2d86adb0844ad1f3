"""Every process names a bad field of its input the same way (``crds.validation_paths``)."""

from __future__ import annotations

import json

import pytest

from extender import errors as extender_errors
from extender import protocol
from webhook import admission_review, cluster_facts, mutation, requester_agent
from webhook import errors as webhook_errors

_OPTIONS = mutation.Options(agent=requester_agent.AgentSpec(image="img", command=("fma-requester",)))

_BAD_CONTAINER = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"resources": {}}]}}


def test_the_webhook_and_the_extender_name_a_bad_container_alike() -> None:
    decision = mutation.mutate(_BAD_CONTAINER, _OPTIONS, cluster_facts.Facts())
    assert not decision.allowed
    assert "spec.containers[1].name: " in decision.message
    body = json.dumps({"Pod": {"metadata": {}, "spec": {"containers": [{"name": 3}]}}, "NodeNames": []})
    with pytest.raises(extender_errors.BadExtenderArgs, match=r"Pod\.spec\.containers\[0\]\.name: "):
        protocol.parse_args(body.encode())
    review = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 1}})
    with pytest.raises(webhook_errors.MalformedReview, match=r"request\.uid: "):
        admission_review.parse(review.encode())
