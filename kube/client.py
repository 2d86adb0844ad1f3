"""The API client every FMA process uses: raw JSON over the official client's transport.

The official ``kubernetes`` package is used for what it does well — loading
kubeconfig or in-cluster credentials (with token refresh and exec plugins),
TLS and connection pooling — while requests and responses stay plain JSON
dicts.  Raw dicts keep unknown fields intact (patches are computed against
what the server sent, never against a re-dumped model) and let each package
parse only the fields it needs with its own pydantic models.

Every failure is mapped to ``kube.errors``; the library's exception is
chained as the cause.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Literal
from urllib.parse import urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client import exceptions as k8s_exceptions

from kube import errors, resources

__all__ = ["PATCH_CONTENT_TYPES", "Client", "PatchType", "WatchEvent", "connect"]

logger = logging.getLogger(__name__)

PatchType = Literal["merge", "strategic", "json", "apply"]

PATCH_CONTENT_TYPES: Final[Mapping[PatchType, str]] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}

WatchEvent = tuple[str, dict[str, Any]]
"""A watch event: its type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR) and object."""


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    field_manager: str = "fma",
    pool_size: int | None = None,
) -> Client:
    """Build a client from ``kubeconfig`` or, inside a Pod, from in-cluster credentials.

    With no ``kubeconfig`` argument: ``$KUBECONFIG`` or ``~/.kube/config`` when
    present, else the Pod's service-account credentials.  ``pool_size`` bounds
    the connections kept open (the client library's default when None; simnode
    renews thousands of Leases a minute through one client).  Raises
    ``ConfigError`` naming what was tried.
    """
    configuration = k8s_client.Configuration()
    if pool_size is not None:
        configuration.connection_pool_maxsize = pool_size
    path = kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if path or (
            not os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(os.path.expanduser("~/.kube/config"))
        ):
            k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
        else:
            k8s_config.load_incluster_config(client_configuration=configuration)
    except (k8s_config.ConfigException, OSError) as exc:
        raise errors.ConfigError(
            f"no usable Kubernetes credentials (kubeconfig {path!r}, or in-cluster service account): {exc}"
        ) from exc
    return Client(k8s_client.ApiClient(configuration), field_manager=field_manager)


class Client:
    """Raw-JSON access to the Kubernetes API.  Thread-safe (one connection pool)."""

    def __init__(self, api_client: k8s_client.ApiClient, *, field_manager: str = "fma") -> None:
        self._api = api_client
        self.field_manager = field_manager

    @property
    def server(self) -> str:
        """The apiserver's base URL."""
        return str(self._api.configuration.host)

    def close(self) -> None:
        """Release the connection pool."""
        self._api.close()

    # --- transport ---------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = 30.0,
    ) -> Any:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        for key, value in params.items():
            if isinstance(value, bool):
                params[key] = "true" if value else "false"
        full_path = path + (f"?{urlencode(params)}" if params else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # The transport serialises JSON (and structured YAML) bodies itself.
        payload = body
        try:
            _, url, headers, _, _ = self._api.param_serialize(
                method=method, resource_path=full_path, header_params=headers, auth_settings=["BearerToken"]
            )
            response = self._api.call_api(method, url, header_params=headers, body=payload, _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError, k8s_exceptions.ApiException) as exc:
            raise errors.TransportError(f"{method} {path} failed: {exc}") from exc
        return response.response

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = 30.0,
    ) -> Any:
        """Send one request and return the parsed JSON body; raise ``APIError`` on failure."""
        raw = self._send(method, path, query=query, body=body, content_type=content_type, timeout=timeout)
        try:
            data = raw.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.TransportError(f"{method} {path}: reading the response failed: {exc}") from exc
        finally:
            raw.release_conn()
        if raw.status >= 400:
            raise errors.from_status(raw.status, data)
        if not data:
            return None
        return json.loads(data)

    # --- typed verbs over resources --------------------------------------------------

    def get(self, resource: resources.Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        """Read one object."""
        result: dict[str, Any] = self.request("GET", resource.path(namespace, name))
        return result

    def get_or_none(
        self, resource: resources.Resource, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """Read one object, or None when it does not exist."""
        try:
            return self.get(resource, name, namespace)
        except errors.NotFound:
            return None

    def list_page(
        self,
        resource: resources.Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> dict[str, Any]:
        """List one page of objects; returns the List object (``items``, ``metadata.resourceVersion``, ``continue``)."""
        result: dict[str, Any] = self.request(
            "GET",
            resource.path(namespace),
            query={
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
                "resourceVersion": resource_version,
                "limit": limit,
                "continue": continue_token,
            },
        )
        return result

    def list_all(
        self,
        resource: resources.Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> tuple[list[dict[str, Any]], str]:
        """List every object, following ``continue`` pages; returns items and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.list_page(
                resource,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_token=token,
            )
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if not token:
                return items, str(meta.get("resourceVersion", ""))

    def create(
        self, resource: resources.Resource, body: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Create an object."""
        result: dict[str, Any] = self.request(
            "POST", resource.path(namespace), query={"fieldManager": self.field_manager}, body=dict(body)
        )
        return result

    def replace(
        self,
        resource: resources.Resource,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PUT an object; its ``metadata.resourceVersion`` makes this an optimistic update (409 on change)."""
        meta = body.get("metadata") or {}
        result: dict[str, Any] = self.request(
            "PUT",
            resource.path(meta.get("namespace") if resource.namespaced else None, meta["name"], subresource),
            query={"fieldManager": self.field_manager},
            body=dict(body),
        )
        return result

    def patch(
        self,
        resource: resources.Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        force: bool | None = None,
    ) -> dict[str, Any]:
        """PATCH an object (merge, strategic merge, JSON patch or server-side apply)."""
        result: dict[str, Any] = self.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            query={"fieldManager": self.field_manager, "force": force},
            body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )
        return result

    def delete(
        self,
        resource: resources.Resource,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
    ) -> dict[str, Any] | None:
        """Delete an object, optionally only if it still has ``uid`` and ``resource_version`` (409 otherwise)."""
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            options["preconditions"] = preconditions
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        result: dict[str, Any] | None = self.request("DELETE", resource.path(namespace, name), body=options)
        return result

    def watch(
        self,
        resource: resources.Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
        on_open: Callable[[Callable[[], None]], None] | None = None,
    ) -> Iterator[WatchEvent]:
        """Stream watch events until the server ends the watch.

        ``on_open`` receives a function that aborts the stream from another
        thread (the iterator then ends with ``TransportError``), so a cache can
        stop without waiting for the server's timeout.

        An ``ERROR`` event with code 410 is raised as ``errors.Gone`` so that
        callers relist; other ``ERROR`` events are raised as their ``APIError``.
        """
        raw = self._send(
            "GET",
            resource.path(namespace),
            query={
                "watch": True,
                "resourceVersion": resource_version,
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
                "timeoutSeconds": timeout_seconds,
                "allowWatchBookmarks": allow_bookmarks,
            },
            timeout=(10.0, timeout_seconds + 30.0),
        )
        if on_open is not None:
            on_open(raw.shutdown)
        try:
            if raw.status >= 400:
                raise errors.from_status(raw.status, raw.read())
            buffer = b""
            try:
                for chunk in raw.stream(65536, decode_content=True):
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            yield _decode_event(line, resource.plural)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise errors.TransportError(f"watch of {resource.plural} broke: {exc}") from exc
            if buffer.strip():
                # The apiserver ends every event with a newline: the stream was cut inside one.
                raise errors.TransportError(f"watch of {resource.plural} ended inside an event")
        finally:
            raw.release_conn()


def _decode_event(line: bytes, plural: str) -> WatchEvent:
    try:
        event = json.loads(line)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError: a damaged stream, not a bad object
        raise errors.TransportError(f"watch of {plural} sent an undecodable event: {exc}") from exc
    if not isinstance(event, dict):
        raise errors.TransportError(f"watch of {plural} sent a non-object event")
    kind = str(event.get("type", ""))
    obj = event.get("object") or {}
    if kind == "ERROR":
        raise errors.from_status(int(obj.get("code") or 500), obj)
    return kind, obj
