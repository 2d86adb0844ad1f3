"""HTTP calls from the dual-pods controller to the node agents.

Three peers, one client: the requester agent's SPI (GPU UUIDs, readiness
relay, memory usage), the launcher API (instances) and the engine's admin
API (sleep, wake, is_sleeping); docs/protocol.md, "Requester SPI",
"Launcher API" and "Engine calls".  Every call has a 30 s timeout, sends
JSON headers, is observed in ``fma_http_latency_seconds`` by purpose (status
``"0"`` when there was no response), and turns any non-2xx answer into
``EngineHTTPError`` carrying the body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from controllers import errors
from crds import names

__all__ = ["NodeAgents", "Observe"]

Observe = Callable[[str, str, str, float], None]
"""Record one call: (purpose, method, status_code, seconds)."""


class NodeAgents:
    """Typed calls to requesters, launchers and engines."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        observe: Observe | None = None,
        launcher_token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._http = http
        self._observe = observe or (lambda purpose, method, code, seconds: None)
        self._launcher_headers = {"Authorization": f"Bearer {launcher_token}"} if launcher_token else {}
        self._timeout = timeout

    def _call(
        self,
        purpose: str,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> httpx.Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        started = time.monotonic()
        try:
            response = self._http.request(method, url, json=json_body, headers=all_headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            self._observe(purpose, method, "0", time.monotonic() - started)
            raise errors.EngineHTTPError(f'{method} "{url}" fails: {exc}') from exc
        self._observe(purpose, method, str(response.status_code), time.monotonic() - started)
        if response.is_success or response.status_code in ok_statuses:
            return response
        raise errors.EngineHTTPError(
            f'{method} "{url}" fails: status {response.status_code}: {response.text.strip()[:500]}',
            response.status_code,
        )

    # --- requester SPI ------------------------------------------------------------------

    def gpu_uuids(self, requester_ip: str, admin_port: int) -> list[str]:
        """``GET /v1/dual-pods/accelerators``: the requester's GPU UUIDs in SPI order."""
        url = f"http://{requester_ip}:{admin_port}/v1/dual-pods/accelerators"
        response = self._call("get_gpu_uuids", "GET", url)
        try:
            value = response.json()
        except ValueError as exc:
            raise errors.EngineHTTPError(f'GET "{url}" fails: the body is not JSON') from exc
        if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
            raise errors.EngineHTTPError(f'GET "{url}" fails: expected a JSON array of strings, got {value!r}')
        return list(value)

    def accelerator_memory(self, requester_ip: str, admin_port: int) -> dict[str, int]:
        """``GET /v1/dual-pods/accelerator-memory-usage``: MiB in use per GPU UUID."""
        url = f"http://{requester_ip}:{admin_port}/v1/dual-pods/accelerator-memory-usage"
        value = self._call("get_accel_memory_usage", "GET", url).json()
        return {str(k): int(v) for k, v in dict(value).items()}

    def relay_ready(self, requester_ip: str, admin_port: int, ready: bool) -> None:
        """``POST /v1/become-ready`` or ``/v1/become-unready``."""
        verb = "become-ready" if ready else "become-unready"
        self._call("relay_ready" if ready else "relay_unready", "POST", f"http://{requester_ip}:{admin_port}/v1/{verb}")

    # --- launcher -----------------------------------------------------------------------

    def _launcher(self, launcher_ip: str) -> str:
        return f"http://{launcher_ip}:{names.LAUNCHER_PORT}/v2/vllm/instances"

    def list_instances(self, launcher_ip: str) -> dict[str, Any]:
        """``GET /v2/vllm/instances``: the list view."""
        result: dict[str, Any] = self._call(
            "list_instances", "GET", self._launcher(launcher_ip), headers=self._launcher_headers
        ).json()
        return result

    def get_instance(self, launcher_ip: str, instance_id: str) -> dict[str, Any] | None:
        """``GET /v2/vllm/instances/{id}``; None on 404."""
        response = self._call(
            "get_instance_state",
            "GET",
            f"{self._launcher(launcher_ip)}/{instance_id}",
            headers=self._launcher_headers,
            ok_statuses=(404,),
        )
        if response.status_code == 404:
            return None
        result: dict[str, Any] = response.json()
        return result

    def create_instance(self, launcher_ip: str, instance_id: str, vllm_config: dict[str, Any]) -> bool:
        """``PUT /v2/vllm/instances/{id}``; False when it already exists (409)."""
        response = self._call(
            "create_instance",
            "PUT",
            f"{self._launcher(launcher_ip)}/{instance_id}",
            json_body=vllm_config,
            headers={"Content-Type": "application/json", **self._launcher_headers},
            ok_statuses=(409,),
        )
        return response.status_code != 409

    def delete_instance(self, launcher_ip: str, instance_id: str) -> None:
        """``DELETE /v2/vllm/instances/{id}``; 404 counts as success."""
        self._call(
            "delete_instance",
            "DELETE",
            f"{self._launcher(launcher_ip)}/{instance_id}",
            headers=self._launcher_headers,
            ok_statuses=(404,),
        )

    def instance_log_tail(self, launcher_ip: str, instance_id: str, max_bytes: int = 2048) -> str:
        """The last bytes of an instance's log ('' when unavailable); never raises.

        The launcher accepts only ``bytes=START-`` ranges (docs/protocol.md, "Launcher API"), so a
        one-byte range first learns the size from ``Content-Range``.
        """
        url = f"{self._launcher(launcher_ip)}/{instance_id}/log"
        try:
            probe = self._call("get_instance_log", "GET", url, headers={**self._launcher_headers, "Range": "bytes=0-0"})
            total = probe.headers.get("Content-Range", "").rsplit("/", 1)[-1]
            size = int(total) if total.isdigit() else 0
            if size == 0:
                return ""
            start = max(0, size - max_bytes)
            tail = self._call(
                "get_instance_log", "GET", url, headers={**self._launcher_headers, "Range": f"bytes={start}-"}
            )
            return tail.text
        except errors.EngineHTTPError:
            return ""

    # --- engine admin API ---------------------------------------------------------------

    def is_sleeping(self, engine_ip: str, port: int) -> bool:
        """``GET /is_sleeping``; raises ``EngineHTTPError`` while the engine is loading."""
        value = self._call("query_sleeping", "GET", f"http://{engine_ip}:{port}/is_sleeping").json()
        return bool(dict(value).get("is_sleeping"))

    def sleep(self, engine_ip: str, port: int) -> None:
        """``POST /sleep?level=1``."""
        self._call("sleep", "POST", f"http://{engine_ip}:{port}/sleep?level=1")

    def wake(self, engine_ip: str, port: int) -> None:
        """``POST /wake_up``."""
        self._call("wake", "POST", f"http://{engine_ip}:{port}/wake_up")
