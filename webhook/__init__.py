"""The mutating admission webhook that turns annotated Pods into server-requesting Pods.

Modules, one concept each: ``mutation`` (the pure decision), ``pod_view``
(what is read from the raw Pod), ``requester_agent`` (the agent container),
``server_patch`` (validating and deriving the direct-mode patch),
``json_patch`` (RFC 6902 operations), ``placement_hints`` (node affinity
toward sleepers), ``gpu_claim`` (DRA mode: a ResourceClaim per
requester), ``cluster_facts`` (lookups done before the decision),
``admission_review`` (the wire format), ``app`` (the ASGI app), ``metrics``,
``server`` (the process), ``configuration`` (the MutatingWebhookConfiguration
template) and ``settings``; logs go through ``crds.log_output``.
"""

from webhook import (
    admission_review,
    app,
    cluster_facts,
    configuration,
    errors,
    gpu_claim,
    json_patch,
    metrics,
    mutation,
    placement_hints,
    pod_view,
    requester_agent,
    server,
    server_patch,
    settings,
)
from webhook.errors import Denial, MalformedReview, WebhookError
from webhook.settings import Settings

__all__ = [
    "Denial",
    "MalformedReview",
    "Settings",
    "WebhookError",
    "admission_review",
    "app",
    "cluster_facts",
    "configuration",
    "errors",
    "gpu_claim",
    "json_patch",
    "metrics",
    "mutation",
    "placement_hints",
    "pod_view",
    "requester_agent",
    "server",
    "server_patch",
    "settings",
]
