"""Reading one ConfigMap from inside a Pod, with the Pod's own service-account credentials.

The launcher may not import the kubernetes client (only ``kube/`` does, and
``launcher`` sits beside it, not above it), and it needs exactly one read at
start-up: the node's entry of the ``gpu-map`` ConfigMap.  A plain HTTPS GET
with the mounted token and CA does that.  ``fetch`` takes an optional
``httpx`` transport so tests can answer without an apiserver.
"""

from __future__ import annotations

import httpx
import pydantic

from launcher import errors
from launcher import settings as settings_mod

__all__ = ["fetch"]


class _ConfigMap(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    data: dict[str, str] | None = None


def fetch(
    settings: settings_mod.LauncherSettings,
    namespace: str,
    name: str,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, str]:
    """The ``data`` of ConfigMap ``namespace/name``; raises ``errors.ConfigMapUnavailable``."""
    if settings.kubernetes_service_host is None and transport is None:
        raise errors.ConfigMapUnavailable("not running in a Pod: KUBERNETES_SERVICE_HOST is not set")
    sa = settings.service_account_dir
    try:
        token = (sa / "token").read_text().strip() if transport is None else "test"
    except OSError as exc:
        raise errors.ConfigMapUnavailable(f"no service-account token: {exc}") from exc
    host = settings.kubernetes_service_host or "kubernetes.default.svc"
    url = f"https://{host}:{settings.kubernetes_service_port}/api/v1/namespaces/{namespace}/configmaps/{name}"
    verify: str | bool = str(sa / "ca.crt") if transport is None else False
    try:
        with httpx.Client(transport=transport, verify=verify, timeout=10) as client:
            response = client.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    except (httpx.HTTPError, OSError) as exc:
        raise errors.ConfigMapUnavailable(f"GET {url!r} failed: {exc!r}") from exc
    if response.status_code != 200:
        raise errors.ConfigMapUnavailable(f"GET {url!r} answered {response.status_code}: {response.text[:200]!r}")
    try:
        return _ConfigMap.model_validate_json(response.content).data or {}
    except pydantic.ValidationError as exc:
        raise errors.ConfigMapUnavailable(f"ConfigMap {namespace}/{name} is malformed: {exc}") from exc
