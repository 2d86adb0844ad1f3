"""Plain HTTPS to the apiserver from inside the Pod, against a fake apiserver transport."""

from __future__ import annotations

import asyncio
import json
import pathlib

import httpx
import pytest

from launcher import apiserver, errors
from launcher import settings as settings_mod


@pytest.fixture
def sa_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A service-account directory with a token and a (never loaded) CA file."""
    (tmp_path / "token").write_text("token-1\n")
    (tmp_path / "ca.crt").write_text("not loaded when a transport is given")
    return tmp_path


def _settings(sa_dir: pathlib.Path, host: str | None = "10.0.0.1") -> settings_mod.LauncherSettings:
    return settings_mod.LauncherSettings(
        kubernetes_service_host=host, kubernetes_service_port=6443, service_account_dir=sa_dir
    )


def test_in_cluster_needs_the_host_the_token_and_the_ca(sa_dir: pathlib.Path) -> None:
    credentials = apiserver.in_cluster(_settings(sa_dir))
    assert credentials is not None
    assert credentials.base_url == "https://10.0.0.1:6443"
    assert credentials.token() == "token-1"
    assert apiserver.in_cluster(_settings(sa_dir, host=None)) is None
    ipv6 = apiserver.in_cluster(_settings(sa_dir, host="fd00::1"))
    assert ipv6 is not None
    assert ipv6.base_url == "https://[fd00::1]:6443"
    (sa_dir / "ca.crt").unlink()
    assert apiserver.in_cluster(_settings(sa_dir)) is None


def test_config_map_data_reads_with_the_current_token(sa_dir: pathlib.Path) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"kind": "ConfigMap", "metadata": {"name": "gpu-map"}, "data": {"n": "{}"}})

    transport = httpx.MockTransport(handler)
    assert apiserver.config_map_data(_settings(sa_dir), "ns", "gpu-map", transport=transport) == {"n": "{}"}
    (sa_dir / "token").write_text("token-2")  # the kubelet rotated it
    apiserver.config_map_data(_settings(sa_dir), "ns", "gpu-map", transport=transport)
    assert str(requests[0].url) == "https://10.0.0.1:6443/api/v1/namespaces/ns/configmaps/gpu-map"
    assert [r.headers["authorization"] for r in requests] == ["Bearer token-1", "Bearer token-2"]


@pytest.mark.parametrize(
    ("response", "needle"),
    [
        pytest.param(httpx.Response(404, text="not found"), "404", id="not-found"),
        pytest.param(httpx.Response(200, json={"data": {"n": 5}}), "malformed", id="malformed"),
    ],
)
def test_config_map_failures_are_api_server_errors(sa_dir: pathlib.Path, response: httpx.Response, needle: str) -> None:
    transport = httpx.MockTransport(lambda _request: response)
    with pytest.raises(errors.ApiServerError, match=needle):
        apiserver.config_map_data(_settings(sa_dir), "ns", "gpu-map", transport=transport)


def test_config_map_outside_a_pod(sa_dir: pathlib.Path) -> None:
    with pytest.raises(errors.NotInPod, match="not running in a Pod"):
        apiserver.config_map_data(_settings(sa_dir, host=None), "ns", "gpu-map")


def test_unreachable_apiserver_is_an_api_server_error(sa_dir: pathlib.Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(errors.ApiServerError, match="failed"):
        apiserver.config_map_data(_settings(sa_dir), "ns", "gpu-map", transport=httpx.MockTransport(refuse))


def test_patch_annotations_is_a_json_merge_patch(sa_dir: pathlib.Path) -> None:
    credentials = apiserver.in_cluster(_settings(sa_dir))
    assert credentials is not None
    requests: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200 if len(requests) == 1 else 403, json={"kind": "Status"})

    async def scenario() -> None:
        client = apiserver.AsyncClient(credentials, transport=httpx.MockTransport(handler))
        try:
            await client.patch_annotations(apiserver.pod_path("ns", "launcher-1"), {"a/b": "1"})
            with pytest.raises(errors.ApiServerError) as info:
                await client.patch_annotations(apiserver.pod_path("ns", "launcher-1"), {"a/b": "2"})
            assert info.value.status == 403
        finally:
            await client.aclose()

    asyncio.run(scenario())
    first = requests[0]
    assert first.method == "PATCH"
    assert str(first.url) == "https://10.0.0.1:6443/api/v1/namespaces/ns/pods/launcher-1"
    assert first.headers["content-type"] == "application/merge-patch+json"
    assert first.headers["authorization"] == "Bearer token-1"
    assert json.loads(first.content) == {"metadata": {"annotations": {"a/b": "1"}}}


def test_warm_up_reads_the_version_and_ignores_failures(sa_dir: pathlib.Path) -> None:
    credentials = apiserver.in_cluster(_settings(sa_dir))
    assert credentials is not None
    requests: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:
            return httpx.Response(200, json={"major": "1"})
        raise httpx.ConnectError("refused", request=request)

    async def scenario() -> None:
        client = apiserver.AsyncClient(credentials, transport=httpx.MockTransport(handler))
        try:
            await client.warm_up()
            await client.warm_up()  # a refused connection is not an error: the first patch connects itself
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert [(r.method, str(r.url)) for r in requests] == [("GET", "https://10.0.0.1:6443/version")] * 2
    assert requests[0].headers["authorization"] == "Bearer token-1"


def test_the_sync_patch_carries_the_resource_version_precondition(sa_dir: pathlib.Path) -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        assert request.headers["content-type"] == "application/merge-patch+json"
        if body["metadata"].get("resourceVersion") == "7":
            return httpx.Response(409, json={"kind": "Status", "reason": "Conflict"})
        return httpx.Response(200, json={})

    credentials = apiserver.in_cluster(_settings(sa_dir))
    assert credentials is not None
    with apiserver.Client(credentials, httpx.MockTransport(handler)) as client:
        client.patch_annotations("/api/v1/namespaces/ns/pods/p", {"a": "1"}, resource_version="8")
        with pytest.raises(errors.ApiServerError) as raised:
            client.patch_annotations("/api/v1/namespaces/ns/pods/p", {"a": "2"}, resource_version="7")
        client.patch_annotations("/api/v1/namespaces/ns/pods/p", {"a": "3"})
    assert raised.value.status == 409
    assert seen == [
        {"metadata": {"annotations": {"a": "1"}, "resourceVersion": "8"}},
        {"metadata": {"annotations": {"a": "2"}, "resourceVersion": "7"}},
        {"metadata": {"annotations": {"a": "3"}}},
    ]
