"""The MutatingWebhookConfiguration template and its rendering."""

from __future__ import annotations

import base64
import re

import pytest

from crds import keys
from webhook import configuration


def test_template_matches_only_fma_pods_and_has_safe_settings() -> None:
    (webhook,) = configuration.template()["webhooks"]
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["sideEffects"] == "None"
    assert webhook["timeoutSeconds"] == 5
    assert webhook["reinvocationPolicy"] == "IfNeeded"
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system"]


def test_cel_conditions_use_exactly_the_contract_keys() -> None:
    (webhook,) = configuration.template()["webhooks"]
    text = " ".join(c["expression"] for c in webhook["matchConditions"])
    quoted = set(re.findall(r"'([^']+)'", text))
    assert quoted == set(configuration.MATCH_KEYS)
    assert set(configuration.MATCH_KEYS) == {
        keys.INFERENCE_SERVER_CONFIG_ANNOTATION,
        keys.ACTUATION_ANNOTATION,
        keys.SERVER_PATCH_ANNOTATION,
        keys.CONVERTED_ANNOTATION,
    }


def test_render_for_a_url() -> None:
    document = configuration.render(b"PEM", url="https://127.0.0.1:9443/mutate", name="t", fma_namespace="fma")
    assert document["metadata"]["name"] == "t"
    (webhook,) = document["webhooks"]
    assert webhook["clientConfig"] == {
        "url": "https://127.0.0.1:9443/mutate",
        "caBundle": base64.b64encode(b"PEM").decode(),
    }
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", "fma"]


def test_render_for_a_service_and_a_custom_selector() -> None:
    selector = {"matchLabels": {"kubernetes.io/metadata.name": "t1"}}
    document = configuration.render(
        b"PEM", service=configuration.ServiceRef("fma", "fma-webhook", 8443), namespace_selector=selector
    )
    (webhook,) = document["webhooks"]
    assert webhook["clientConfig"]["service"] == {
        "namespace": "fma",
        "name": "fma-webhook",
        "port": 8443,
        "path": "/mutate",
    }
    assert webhook["namespaceSelector"] == selector
    assert configuration.template()["webhooks"][0]["namespaceSelector"] != selector, "the template is not mutated"


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="neither"),
        pytest.param({"url": "https://a", "service": configuration.ServiceRef("a", "b")}, id="both"),
        pytest.param({"url": "http://127.0.0.1/mutate"}, id="plain-http"),
    ],
)
def test_render_rejects(kwargs) -> None:
    with pytest.raises(ValueError, match=r"url|https"):
        configuration.render(b"PEM", **kwargs)
