"""The Service proxy's pure routing rules: listeners, backends by selector and targetPort, hosts text."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from devcluster import service_proxy
from devcluster.service_proxy import proxy, routes
from devcluster.simnode import container_process, node_agent


def _service(name: str = "web", ns: str = "a", ip: str = "127.200.1.2", **spec: Any) -> dict[str, Any]:
    base = {"clusterIP": ip, "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
    return {"metadata": {"namespace": ns, "name": name, "uid": name}, "spec": base | spec}


def _pod(name: str, ip: str, *, ns: str = "a", app: str = "web", ready: bool = True, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name, "uid": name, "labels": {"app": app}, **meta},
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 9000}]}]},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def _backends(service: dict[str, Any], *pods: dict[str, Any]) -> list[routes.Address]:
    parsed = routes.parse_service(service)
    assert parsed is not None
    backends = [b for b in (routes.parse_pod(p) for p in pods) if b is not None]
    return routes.backends(parsed, parsed.ports[0], backends, apiserver=("127.0.0.1", 6443))


def test_ready_matching_pods_of_the_namespace_are_backends() -> None:
    pods = [
        _pod("one", "127.5.0.3"),
        _pod("two", "127.5.0.2"),
        _pod("not-ready", "127.5.0.4", ready=False),
        _pod("other-app", "127.5.0.5", app="db"),
        _pod("other-ns", "127.5.0.6", ns="b"),
        _pod("going", "127.5.0.7", deletionTimestamp="2026-01-01T00:00:00Z"),
    ]
    assert _backends(_service(), *pods) == [("127.5.0.2", 8080), ("127.5.0.3", 8080)]


def test_named_target_port_is_looked_up_per_pod() -> None:
    service = _service(ports=[{"port": 443, "targetPort": "http"}])
    without = _pod("plain", "127.5.0.9")
    without["spec"]["containers"][0]["ports"] = []
    assert _backends(service, _pod("one", "127.5.0.3"), without) == [("127.5.0.3", 9000)]


def test_publish_not_ready_addresses_includes_unready_pods() -> None:
    service = _service(publishNotReadyAddresses=True)
    assert _backends(service, _pod("starting", "127.5.0.3", ready=False)) == [("127.5.0.3", 8080)]


def test_kubernetes_service_routes_to_the_apiserver_and_selectorless_ones_nowhere() -> None:
    kubernetes = _service("kubernetes", "default", "127.200.0.1", selector=None)
    assert _backends(kubernetes) == [("127.0.0.1", 6443)]
    assert _backends(_service("manual", selector=None), _pod("x", "127.5.0.3", app="manual")) == []


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"clusterIP": "None"}, id="headless"),
        pytest.param({"clusterIP": "10.96.0.5"}, id="not-loopback"),
        pytest.param({"clusterIP": ""}, id="no-ip"),
    ],
)
def test_services_without_a_loopback_cluster_ip_are_not_routed(spec: dict[str, Any]) -> None:
    assert routes.parse_service(_service(**spec)) is None


def test_listeners_cover_every_tcp_port_and_default_target_port() -> None:
    service = routes.parse_service(
        _service(ports=[{"port": 80}, {"port": 53, "protocol": "UDP"}, {"port": 443, "targetPort": "https"}])
    )
    assert service is not None
    found = routes.listeners([service])
    assert sorted(found) == [("127.200.1.2", 80), ("127.200.1.2", 443)]
    assert found[("127.200.1.2", 80)].port.target_port == 80


def test_hosts_text_names_each_service_in_three_forms() -> None:
    service = routes.parse_service(_service("hook", "fma-system", "127.200.3.4"))
    assert service is not None
    text = routes.hosts_text("127.0.0.1\tlocalhost\n", [service])
    assert text.startswith("127.0.0.1\tlocalhost\n")
    line = text.splitlines()[-1].split()
    assert line == ["127.200.3.4", "hook.fma-system.svc.cluster.local", "hook.fma-system.svc", "hook.fma-system"]


def test_hosts_file_is_rewritten_in_place(tmp_path: Any) -> None:
    path = tmp_path / "hosts"
    proxy.write_in_place(path, "a long first version\n")
    inode = path.stat().st_ino
    proxy.write_in_place(path, "short\n")
    assert path.read_text() == "short\n"
    assert path.stat().st_ino == inode


def test_kubernetes_service_address_prefers_a_loopback_cluster_ip() -> None:
    service = {"spec": {"clusterIP": "127.200.0.1", "ports": [{"name": "https", "port": 443}]}}
    assert node_agent.kubernetes_service_address(service, "https://127.0.0.1:6443") == "https://127.200.0.1:443"
    other = {"spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}}
    assert node_agent.kubernetes_service_address(other, "https://127.0.0.1:6443") == "https://127.0.0.1:6443"
    assert node_agent.kubernetes_service_address(None, "https://127.0.0.1:6443") == "https://127.0.0.1:6443"


def test_tool_dirs_follow_the_virtualenv_on_path() -> None:
    env = node_agent.base_env("/venv", "/usr/bin", None, ["/cache/k8s"])
    assert env["PATH"] == "/venv/bin:/cache/k8s:/usr/bin"


def test_a_file_mount_is_not_made_a_directory() -> None:
    argv = container_process.launch_argv(
        ["true"], [container_process.Mount("/state/hosts", "/etc/hosts", read_only=True, is_file=True)]
    )
    script = argv[argv.index("-c") + 1]
    assert "mkdir -p /etc/hosts" not in script
    assert "[ -e /etc/hosts ] || touch /etc/hosts" in script
    assert "mount -o remount,bind,ro /etc/hosts" in script


def test_service_range_is_loopback_and_skips_one_already_served() -> None:
    first = service_proxy.choose_range("/state/a")
    assert service_proxy.FIRST_BLOCK <= first.block <= service_proxy.LAST_BLOCK
    assert first.cidr == f"127.{first.block}.0.0/16"
    assert first.kubernetes_ip == f"127.{first.block}.0.1"
    # Another cluster on this machine already serves that range's kubernetes address.
    with socket.socket() as taken:
        taken.bind((first.kubernetes_ip, 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert service_proxy.choose_range("/state/a", https_port=port) != first
    assert service_proxy.choose_range("/state/a", https_port=port) == first
