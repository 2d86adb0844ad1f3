"""The launcher's access to the Kubernetes apiserver from inside its Pod: plain HTTPS with the Pod's own credentials.

The launcher may not import the kubernetes client (only ``kube/`` does, and
``launcher`` sits beside it, not above it), and it makes three kinds of
call: at start-up, one read of the ``gpu-map`` ConfigMap (synchronous, before
any event loop exists); while serving, JSON merge patches of its own Pod's
annotations (asynchronous, from the publisher on the event loop, so they
never block it); and in the notifier sidecar (``pod_notifier``), a read of
its Pod and a patch conditional on the resourceVersion read (synchronous:
the sidecar has nothing else to do).  All go through this module, so the
URL, the headers, the TLS trust and the error mapping are written once.

The token file is re-read for every request because the kubelet rotates
projected service-account tokens.  Tests pass an ``httpx`` transport instead
of an apiserver; the CA file is then not loaded.
"""

from __future__ import annotations

import json
import logging
import pathlib
import ssl

import httpx
import pydantic

from crds import validation_paths
from launcher import errors
from launcher import settings as settings_mod

__all__ = [
    "AsyncClient",
    "Client",
    "Credentials",
    "config_map_data",
    "config_map_path",
    "in_cluster",
    "pod_path",
]

_TIMEOUT_SECONDS = 10.0
_MERGE_PATCH = "application/merge-patch+json"
_KEEPALIVE_SECONDS = 300.0

logger = logging.getLogger(__name__)


class Credentials(pydantic.BaseModel):
    """Where the apiserver is and the files that prove who this Pod is."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    base_url: str
    token_path: pathlib.Path
    ca_path: pathlib.Path

    def token(self) -> str:
        """The current bearer token (re-read each time); raises ``errors.ApiServerError``."""
        try:
            return self.token_path.read_text().strip()
        except OSError as exc:
            path = str(self.token_path)
            raise errors.ApiServerError(f"cannot read the service-account token {path!r}: {exc}") from exc


def in_cluster(settings: settings_mod.LauncherSettings) -> Credentials | None:
    """The in-cluster credentials, or None when this process does not run in a Pod.

    Running in a Pod means ``KUBERNETES_SERVICE_HOST`` is set and the
    service-account token and CA files exist (reads the file system only).
    """
    host = settings.kubernetes_service_host
    if not host:
        return None
    token_path = settings.service_account_dir / "token"
    ca_path = settings.service_account_dir / "ca.crt"
    if not (token_path.is_file() and ca_path.is_file()):
        return None
    authority = f"[{host}]" if ":" in host else host
    return Credentials(
        base_url=f"https://{authority}:{settings.kubernetes_service_port}", token_path=token_path, ca_path=ca_path
    )


def pod_path(namespace: str, name: str) -> str:
    """The API path of one Pod (pure)."""
    return f"/api/v1/namespaces/{namespace}/pods/{name}"


def config_map_path(namespace: str, name: str) -> str:
    """The API path of one ConfigMap (pure)."""
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


def _verify(credentials: Credentials, transport: object | None) -> ssl.SSLContext | bool:
    """Trust only the cluster CA; with a test transport nothing is verified, so nothing is loaded."""
    if transport is not None:
        return True
    try:
        return ssl.create_default_context(cafile=str(credentials.ca_path))
    except (OSError, ssl.SSLError) as exc:
        raise errors.ApiServerError(f"cannot load the cluster CA {str(credentials.ca_path)!r}: {exc}") from exc


def _headers(credentials: Credentials, content_type: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {credentials.token()}", "Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def _checked(method: str, path: str, response: httpx.Response) -> bytes:
    if response.status_code >= 300:
        raise errors.ApiServerError(
            f"{method} {path!r} answered {response.status_code}: {response.text[:200]!r}", status=response.status_code
        )
    return response.content


def _annotations_patch(annotations: dict[str, str], resource_version: str | None = None) -> bytes:
    metadata: dict[str, object] = {"annotations": annotations}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version  # a precondition: 409 if the object changed since
    return json.dumps({"metadata": metadata}, separators=(",", ":")).encode()


class Client:
    """Synchronous calls, for start-up (before the event loop); use as a context manager."""

    def __init__(self, credentials: Credentials, transport: httpx.BaseTransport | None = None) -> None:
        self._credentials = credentials
        self._http = httpx.Client(
            base_url=credentials.base_url,
            timeout=_TIMEOUT_SECONDS,
            verify=_verify(credentials, transport),
            transport=transport,
            trust_env=False,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def get(self, path: str) -> bytes:
        """The body of ``GET path``; raises ``errors.ApiServerError``."""
        try:
            response = self._http.get(path, headers=_headers(self._credentials))
        except httpx.HTTPError as exc:
            raise errors.ApiServerError(f"GET {path!r} failed: {exc!r}") from exc
        return _checked("GET", path, response)

    def patch_annotations(self, path: str, annotations: dict[str, str], resource_version: str | None = None) -> None:
        """JSON-merge-patch these annotations, only onto ``resource_version`` when given (409 otherwise).

        Raises ``errors.ApiServerError`` (``status`` 409 when the object changed).
        """
        body = _annotations_patch(annotations, resource_version)
        try:
            response = self._http.patch(path, content=body, headers=_headers(self._credentials, _MERGE_PATCH))
        except httpx.HTTPError as exc:
            raise errors.ApiServerError(f"PATCH {path!r} failed: {exc!r}") from exc
        _checked("PATCH", path, response)


class AsyncClient:
    """Asynchronous calls, for the event loop; ``aclose()`` when done."""

    def __init__(self, credentials: Credentials, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._credentials = credentials
        self._http = httpx.AsyncClient(
            base_url=credentials.base_url,
            timeout=_TIMEOUT_SECONDS,
            # Publications come seconds to minutes apart (an engine's start): keep the warm connection.
            limits=httpx.Limits(keepalive_expiry=_KEEPALIVE_SECONDS),
            verify=_verify(credentials, transport),
            transport=transport,
            trust_env=False,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def warm_up(self) -> None:
        """Open the connection to the apiserver (TLS, authentication) ahead of the first patch: ``GET /version``.

        Readable by every authenticated account (``system:public-info-viewer``); any failure is ignored
        (the first patch then opens the connection itself).
        """
        try:
            await self._http.get("/version", headers=_headers(self._credentials))
        except httpx.HTTPError as exc:
            logger.debug("warming the apiserver connection up failed", extra={"error": repr(exc)})

    async def patch_annotations(self, path: str, annotations: dict[str, str]) -> None:
        """JSON-merge-patch these annotations onto the object at ``path``; raises ``errors.ApiServerError``."""
        body = _annotations_patch(annotations)
        try:
            response = await self._http.patch(path, content=body, headers=_headers(self._credentials, _MERGE_PATCH))
        except httpx.HTTPError as exc:
            raise errors.ApiServerError(f"PATCH {path!r} failed: {exc!r}") from exc
        _checked("PATCH", path, response)


class _ConfigMap(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    data: dict[str, str] | None = None


def config_map_data(
    settings: settings_mod.LauncherSettings,
    namespace: str,
    name: str,
    transport: httpx.BaseTransport | None = None,
    credentials: Credentials | None = None,
) -> dict[str, str]:
    """The ``data`` of ConfigMap ``namespace/name`` (one synchronous GET); raises ``errors.ApiServerError``."""
    credentials = credentials or in_cluster(settings)
    if credentials is None:
        raise errors.NotInPod("not running in a Pod: no KUBERNETES_SERVICE_HOST or no service-account token and CA")
    path = config_map_path(namespace, name)
    with Client(credentials, transport) as client:
        body = client.get(path)
    try:
        return _ConfigMap.model_validate_json(body).data or {}
    except pydantic.ValidationError as exc:
        raise errors.ApiServerError(
            f"ConfigMap {namespace}/{name} is malformed: {validation_paths.summary(exc)}"
        ) from exc
