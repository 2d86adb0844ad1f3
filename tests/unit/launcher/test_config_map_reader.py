"""Reading the gpu-map ConfigMap over plain HTTPS, against a fake apiserver transport."""

from __future__ import annotations

import httpx
import pytest

from launcher import config_map_reader, errors
from launcher import settings as settings_mod


def _settings() -> settings_mod.LauncherSettings:
    return settings_mod.LauncherSettings(kubernetes_service_host="10.0.0.1", kubernetes_service_port=6443)


def test_reads_the_data() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"kind": "ConfigMap", "metadata": {"name": "gpu-map"}, "data": {"n": "{}"}})

    data = config_map_reader.fetch(_settings(), "ns", "gpu-map", transport=httpx.MockTransport(handler))
    assert data == {"n": "{}"}
    assert str(requests[0].url) == "https://10.0.0.1:6443/api/v1/namespaces/ns/configmaps/gpu-map"
    assert requests[0].headers["authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("response", "needle"),
    [
        (httpx.Response(404, text="not found"), "404"),
        (httpx.Response(200, json={"data": {"n": 5}}), "malformed"),
    ],
)
def test_failures_are_config_map_unavailable(response: httpx.Response, needle: str) -> None:
    transport = httpx.MockTransport(lambda _request: response)
    with pytest.raises(errors.ConfigMapUnavailable, match=needle):
        config_map_reader.fetch(_settings(), "ns", "gpu-map", transport=transport)


def test_outside_a_pod() -> None:
    with pytest.raises(errors.ConfigMapUnavailable, match="not running in a Pod"):
        config_map_reader.fetch(settings_mod.LauncherSettings(kubernetes_service_host=None), "ns", "gpu-map")
