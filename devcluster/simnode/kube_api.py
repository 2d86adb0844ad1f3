"""simnode's seam to the apiserver: raw JSON requests and watches over the official client.

simnode talks to the API on behalf of every node, so it skips the client's
per-call argument validation and model deserialisation (the expensive parts
at thousands of Lease renewals a minute) and uses the ``ApiClient``'s
connection pool, TLS and authentication with plain JSON bodies.  Error
statuses become ``errors.ApiError`` subclasses, so no other module depends
on the client library's exceptions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.watch import watch as k8s_watch

from devcluster.simnode import errors

__all__ = ["JSON_PATCH", "MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "KubeApi", "WatchEvent"]

logger = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

WatchEvent = tuple[str, dict[str, Any]]
"""(type, object): ADDED, MODIFIED, DELETED or BOOKMARK with the raw object."""


def _error(status: int, body: bytes | str | None) -> errors.ApiError:
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    message = text
    with contextlib.suppress(ValueError, AttributeError):
        message = str(json.loads(text).get("message", text))
    kind: type[errors.ApiError] = {404: errors.NotFound, 409: errors.Conflict, 410: errors.Gone}.get(
        status, errors.ApiError
    )
    return kind(status, message)


def _lines(raw: Any) -> Iterator[str]:
    """The watch stream's lines; a broken connection becomes ``Unreachable``."""
    try:
        yield from k8s_watch.iter_resp_lines(raw)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise errors.Unreachable(0, repr(exc)) from exc


class KubeApi:
    """Raw JSON access to the apiserver as one identity (thread-safe)."""

    def __init__(self, api_client: Any) -> None:
        self._api = api_client
        self._closed = threading.Event()

    @classmethod
    def from_kubeconfig(cls, path: str, pool_size: int = 16) -> KubeApi:
        """A client for the kubeconfig's current context with a connection pool of ``pool_size``."""
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=path, client_configuration=configuration)
        configuration.connection_pool_maxsize = pool_size
        return cls(k8s_client.ApiClient(configuration))

    @property
    def server(self) -> str:
        """The apiserver URL, e.g. ``https://127.0.0.1:6443``."""
        return str(self._api.configuration.host)

    def close(self) -> None:
        """Release the connection pool."""
        self._closed.set()
        self._api.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None,
        body: Any,
        content_type: str | None,
        timeout: float | tuple[float, float] | None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        params = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            return self._api.call_api(*params, _request_timeout=timeout)
        except k8s_client.ApiException as exc:
            raise _error(int(exc.status or 0), exc.body) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise errors.Unreachable(0, repr(exc)) from exc

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON body; raises ``ApiError`` on an error status."""
        response = self._send(method, path, query=query, body=body, content_type=content_type, timeout=timeout)
        data = response.read()
        if not 200 <= response.status < 300:
            raise _error(response.status, data)
        if not data:
            return {}
        decoded = json.loads(data)
        return decoded if isinstance(decoded, dict) else {"items": decoded}

    def watch(
        self, path: str, *, query: Mapping[str, Any] | None, resource_version: str, timeout_seconds: int = 300
    ) -> Iterator[WatchEvent]:
        """Stream watch events after ``resource_version`` until the server ends the watch.

        Raises ``Gone`` when the version expired (the caller lists again).
        """
        full = dict(query or {})
        full |= {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
        }
        response = self._send(
            "GET", path, query=full, body=None, content_type=None, timeout=(10.0, timeout_seconds + 30.0)
        )
        raw = response.response
        try:
            if not 200 <= response.status < 300:
                raise _error(response.status, raw.read())
            for line in _lines(raw):
                if not line:
                    continue
                event = json.loads(line)
                kind = str(event.get("type", ""))
                obj = event.get("object") or {}
                if kind == "ERROR":
                    raise _error(int(obj.get("code", 500)), json.dumps(obj))
                yield kind, obj
        finally:
            raw.release_conn()
