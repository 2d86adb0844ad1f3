"""The MutatingWebhookConfiguration that routes annotated Pods to ``fma-webhook``.

The template is package data (``mutating_webhook_configuration.yaml``, also
used by the Helm chart); ``render`` fills in where the webhook is (a URL, or
a Service for in-cluster use), the caBundle and the namespaces to exclude.
``MATCH_KEYS`` lists the annotation keys the template's CEL conditions test,
so a test can check them against ``crds.keys``.

Pure apart from reading the packaged template.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import importlib.resources
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from crds import keys

__all__ = ["MATCH_KEYS", "TEMPLATE_FILE", "ServiceRef", "render", "template"]

TEMPLATE_FILE = "mutating_webhook_configuration.yaml"
"""The template's file name inside the ``webhook`` package."""

MATCH_KEYS: tuple[str, ...] = (
    keys.INFERENCE_SERVER_CONFIG_ANNOTATION,
    keys.ACTUATION_ANNOTATION,
    keys.SERVER_PATCH_ANNOTATION,
    keys.CONVERTED_ANNOTATION,
)
"""The annotation keys the matchConditions test (the last one excludes converted Pods)."""


@dataclasses.dataclass(frozen=True)
class ServiceRef:
    """An in-cluster Service in front of the webhook."""

    namespace: str
    name: str
    port: int = 443
    path: str = "/mutate"


def template() -> dict[str, Any]:
    """The packaged template, parsed."""
    text = importlib.resources.files("webhook").joinpath(TEMPLATE_FILE).read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError(f"{TEMPLATE_FILE} is not a mapping")
    return document


def render(
    ca_bundle: bytes,
    *,
    url: str | None = None,
    service: ServiceRef | None = None,
    name: str | None = None,
    fma_namespace: str | None = None,
    excluded_namespaces: Sequence[str] = (),
    namespace_selector: Mapping[str, Any] | None = None,
    timeout_seconds: int | None = None,
) -> dict[str, Any]:
    """The configuration for a webhook at ``url`` or behind ``service``, trusting ``ca_bundle`` (PEM).

    ``fma_namespace`` and ``excluded_namespaces`` join ``kube-system`` in the
    excluded namespaces; ``namespace_selector`` replaces the selector
    altogether (tests scope the webhook to their own namespace this way).
    """
    if (url is None) == (service is None):
        raise ValueError("give exactly one of url and service")
    if url is not None and not url.startswith("https://"):
        raise ValueError(f"the webhook URL must use https, got {url!r}")
    document = template()
    if name is not None:
        document["metadata"]["name"] = name
    client_config: dict[str, Any] = {"caBundle": base64.b64encode(ca_bundle).decode("ascii")}
    if url is not None:
        client_config["url"] = url
    else:
        assert service is not None
        client_config["service"] = {
            "namespace": service.namespace,
            "name": service.name,
            "port": service.port,
            "path": service.path,
        }
    for webhook in document["webhooks"]:
        webhook["clientConfig"] = copy.deepcopy(client_config)
        if timeout_seconds is not None:
            webhook["timeoutSeconds"] = timeout_seconds
        if namespace_selector is not None:
            webhook["namespaceSelector"] = copy.deepcopy(dict(namespace_selector))
            continue
        excluded = webhook["namespaceSelector"]["matchExpressions"][0]["values"]
        for namespace in (fma_namespace, *excluded_namespaces):
            if namespace and namespace not in excluded:
                excluded.append(namespace)
    return document
