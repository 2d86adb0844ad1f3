"""Acting as a ServiceAccount against the chart's cluster: real tokens from the TokenRequest API.

The chart's RBAC and admission-policy tests act with the very identities the
chart creates.  ``token`` asks the apiserver (as the admin) for a short-lived
token of a ServiceAccount, optionally bound to a Pod (then the apiserver adds
``authentication.kubernetes.io/pod-name`` to the user's extra, which
``fma-launcher-self-publish`` reads); ``client`` talks to the apiserver with
it.  Nothing is impersonated: the apiserver authenticates the token itself.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from devcluster import control_plane

MERGE_PATCH = "application/merge-patch+json"


def token(cluster: control_plane.ClusterState, namespace: str, account: str, pod: dict[str, Any] | None = None) -> str:
    """A 10-minute token of ``namespace/account``, bound to ``pod`` when given."""
    spec: dict[str, Any] = {"expirationSeconds": 600}
    if pod is not None:
        spec["boundObjectRef"] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"],
        }
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    with cluster.http_client() as admin:
        response = admin.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", json=body)
    response.raise_for_status()
    return str(response.json()["status"]["token"])


def client(cluster: control_plane.ClusterState, bearer: str) -> httpx.Client:
    """An httpx client of the apiserver that authenticates with ``bearer`` only."""
    context = ssl.create_default_context(cafile=str(cluster.ca_cert))
    return httpx.Client(
        base_url=cluster.server, verify=context, timeout=10.0, headers={"Authorization": f"Bearer {bearer}"}
    )


def patch_pod(http: httpx.Client, namespace: str, name: str, patch: dict[str, Any]) -> httpx.Response:
    """A JSON merge patch of one Pod; the response as it came."""
    return http.patch(f"/api/v1/namespaces/{namespace}/pods/{name}", json=patch, headers={"Content-Type": MERGE_PATCH})


def whoami(http: httpx.Client) -> dict[str, Any]:
    """The apiserver's view of the client's identity (SelfSubjectReview)."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    response = http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=body)
    response.raise_for_status()
    return dict(response.json()["status"]["userInfo"])
