"""The development cluster's control plane: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler on 127.0.0.1, plus the Service
proxy that routes the loopback service range (``devcluster.service_proxy``).

``up`` generates the PKI and kubeconfigs into a state directory, starts each
component as a background process on free ports, waits until the cluster can
take Pods, and writes ``state.json``; ``down`` stops exactly the recorded
processes and removes the state directory.  The state file is the only
record, so a later command (another process) can find and stop the cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import pathlib
import shutil
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import yaml

from devcluster import binaries as binaries_mod
from devcluster import errors, pki, processes, service_proxy

__all__ = [
    "ClusterOptions",
    "ClusterState",
    "default_state_dir",
    "down",
    "load",
    "merge_config",
    "up",
]

logger = logging.getLogger(__name__)

_STATE_FILE = "state.json"


def default_state_dir() -> pathlib.Path:
    """Where ``fma-dev`` keeps its cluster: ``$FMA_DEVCLUSTER_DIR`` or ``~/.local/state/fma/devcluster``."""
    configured = os.environ.get("FMA_DEVCLUSTER_DIR")
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path.home() / ".local" / "state" / "fma" / "devcluster"


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """What ``up`` should start."""

    state_dir: pathlib.Path
    apiserver_port: int | None = 6443
    scheduler_config: Mapping[str, Any] | None = None
    ready_timeout_s: float = 90.0
    binaries: binaries_mod.Binaries | None = None


@dataclasses.dataclass(frozen=True)
class ClusterState:
    """A running cluster, as recorded in ``state.json``."""

    state_dir: pathlib.Path
    server: str
    kubeconfig: pathlib.Path
    ca_cert: pathlib.Path
    admin_cert: pathlib.Path
    admin_key: pathlib.Path
    scheduler_config: pathlib.Path
    ports: dict[str, int]
    processes: list[processes.ProcessRecord]
    service_cidr: str = ""
    kubernetes_service_ip: str = ""
    hosts_file: pathlib.Path | None = None

    def alive(self) -> dict[str, bool]:
        """Map each component to whether its recorded process still runs."""
        return {p.name: processes.is_alive(p) for p in self.processes}

    def http_client(self, timeout: float = 10.0, server: str | None = None) -> httpx.Client:
        """An httpx client that talks to the apiserver (at ``server``, default its own address) as the admin."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.load_cert_chain(str(self.admin_cert), str(self.admin_key))
        return httpx.Client(base_url=server or self.server, verify=context, timeout=timeout)

    def to_json(self) -> str:
        """Serialise for ``state.json``."""
        data = dataclasses.asdict(self)
        return json.dumps(data, indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        """Parse ``state.json``."""
        data = json.loads(text)
        return cls(
            state_dir=pathlib.Path(data["state_dir"]),
            server=data["server"],
            kubeconfig=pathlib.Path(data["kubeconfig"]),
            ca_cert=pathlib.Path(data["ca_cert"]),
            admin_cert=pathlib.Path(data["admin_cert"]),
            admin_key=pathlib.Path(data["admin_key"]),
            scheduler_config=pathlib.Path(data["scheduler_config"]),
            ports={k: int(v) for k, v in data["ports"].items()},
            processes=[processes.ProcessRecord(**p) for p in data["processes"]],
            service_cidr=str(data.get("service_cidr") or ""),
            kubernetes_service_ip=str(data.get("kubernetes_service_ip") or ""),
            hosts_file=pathlib.Path(data["hosts_file"]) if data.get("hosts_file") else None,
        )


def merge_config(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overlay`` into ``base`` (pure): mappings merge, everything else replaces."""
    merged: dict[str, Any] = dict(base)
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_config(current, value)
        else:
            merged[key] = value
    return merged


def _kubeconfig(server: str, ca: pathlib.Path, cert: pathlib.Path, key: pathlib.Path, user: str) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fma-dev", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "fma-dev", "context": {"cluster": "fma-dev", "user": user}}],
        "current-context": "fma-dev",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def load(state_dir: pathlib.Path) -> ClusterState | None:
    """Return the recorded cluster of ``state_dir``, or None when there is none."""
    path = state_dir / _STATE_FILE
    if not path.is_file():
        return None
    return ClusterState.from_json(path.read_text())


def _log_tail(record: processes.ProcessRecord, lines: int = 15) -> str:
    try:
        text = pathlib.Path(record.log).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:])


def _wait(
    what: str,
    check: Callable[[], bool],
    deadline: float,
    watched: list[processes.ProcessRecord],
) -> None:
    while True:
        for record in watched:
            if not processes.is_alive(record):
                raise errors.ComponentFailed(
                    f"{record.name} exited while waiting for {what}; last lines of {record.log}:\n{_log_tail(record)}"
                )
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            names = ", ".join(r.log for r in watched)
            raise errors.ComponentFailed(f"timed out waiting for {what}; see the logs: {names}")
        time.sleep(0.2)


def _healthz_ok(port: int) -> bool:
    # kube-controller-manager and kube-scheduler serve /healthz with a
    # self-signed certificate and allow it without authentication.
    response = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2.0)  # noqa: S501
    return response.status_code == 200


def _write_kubeconfigs(state_dir: pathlib.Path, server: str, cluster_pki: pki.ClusterPKI) -> dict[str, pathlib.Path]:
    kubeconfigs = {}
    for user, cert, key in (
        ("admin", cluster_pki.admin_cert, cluster_pki.admin_key),
        ("controller-manager", cluster_pki.controller_manager_cert, cluster_pki.controller_manager_key),
        ("scheduler", cluster_pki.scheduler_cert, cluster_pki.scheduler_key),
    ):
        path = state_dir / f"{user}.kubeconfig"
        path.write_text(_kubeconfig(server, cluster_pki.ca_cert, cert, key, user))
        path.chmod(0o600)
        kubeconfigs[user] = path
    return kubeconfigs


def _wait_routed(state: ClusterState, deadline: float, watched: list[processes.ProcessRecord]) -> None:
    """Wait until the apiserver answers through the kubernetes Service's ClusterIP (the Service proxy runs)."""
    hosts_file = state.hosts_file
    assert hosts_file is not None
    with state.http_client(timeout=3.0, server=f"https://{state.kubernetes_service_ip}:443") as routed:
        _wait(
            "the apiserver through the kubernetes Service",
            lambda: routed.get("/readyz").status_code == 200 and hosts_file.is_file(),
            deadline,
            watched,
        )


def _commands(
    *,
    bins: binaries_mod.Binaries,
    state_dir: pathlib.Path,
    cluster_pki: pki.ClusterPKI,
    ports: dict[str, int],
    kubeconfigs: dict[str, pathlib.Path],
    scheduler_config_path: pathlib.Path,
    service_range: service_proxy.ServiceRange,
    hosts_file: pathlib.Path,
) -> list[tuple[str, list[str]]]:
    """Return each component's name and command line, in start order (pure)."""
    server = f"https://127.0.0.1:{ports['apiserver']}"
    etcd_url = f"http://127.0.0.1:{ports['etcd-client']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    return [
        (
            "etcd",
            [
                str(bins.etcd),
                "--name=fma-dev",
                f"--data-dir={state_dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=fma-dev={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        ),
        (
            "kube-apiserver",
            [
                str(bins.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={ports['apiserver']}",
                f"--tls-cert-file={cluster_pki.apiserver_cert}",
                f"--tls-private-key-file={cluster_pki.apiserver_key}",
                f"--client-ca-file={cluster_pki.ca_cert}",
                f"--requestheader-client-ca-file={cluster_pki.front_proxy_ca_cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={cluster_pki.front_proxy_client_cert}",
                f"--proxy-client-key-file={cluster_pki.front_proxy_client_key}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-issuer={server}",
                f"--service-account-key-file={cluster_pki.service_account_pub}",
                f"--service-account-signing-key-file={cluster_pki.service_account_key}",
                # A loopback range: the Service proxy listens on the ClusterIPs.
                f"--service-cluster-ip-range={service_range.cidr}",
                # Endpoints may not hold loopback addresses; the Service proxy
                # routes the kubernetes Service to the apiserver instead.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
        ),
        ("service-proxy", service_proxy.argv(kubeconfigs["admin"], ports["apiserver"], hosts_file)),
        (
            "kube-controller-manager",
            [
                str(bins.kube_controller_manager),
                f"--kubeconfig={kubeconfigs['controller-manager']}",
                f"--authentication-kubeconfig={kubeconfigs['controller-manager']}",
                f"--authorization-kubeconfig={kubeconfigs['controller-manager']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['controller-manager']}",
                f"--cert-dir={state_dir / 'controller-manager-certs'}",
                f"--service-account-private-key-file={cluster_pki.service_account_key}",
                f"--root-ca-file={cluster_pki.ca_cert}",
                f"--cluster-signing-cert-file={cluster_pki.ca_cert}",
                f"--cluster-signing-key-file={cluster_pki.ca_key}",
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
        ),
        (
            "kube-scheduler",
            [
                str(bins.kube_scheduler),
                f"--config={scheduler_config_path}",
                f"--authentication-kubeconfig={kubeconfigs['scheduler']}",
                f"--authorization-kubeconfig={kubeconfigs['scheduler']}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['scheduler']}",
                f"--cert-dir={state_dir / 'scheduler-certs'}",
                "--profiling=false",
                "--v=1",
            ],
        ),
    ]


def up(options: ClusterOptions) -> ClusterState:
    """Start a control plane in ``options.state_dir`` and wait until it takes Pods.

    Raises ``AlreadyRunning`` when a cluster of this state directory still
    runs, ``BinariesMissing`` when a binary is not built, and
    ``ComponentFailed`` (after stopping what it started) when a component
    fails to start.
    """
    state_dir = options.state_dir
    existing = load(state_dir)
    if existing is not None and any(existing.alive().values()):
        raise errors.AlreadyRunning(
            f"a development cluster already runs from {str(state_dir)!r} (server {existing.server}); "
            "use it, or stop it first with 'fma-dev down'"
        )
    bins = options.binaries or binaries_mod.locate()
    missing = bins.missing()
    if missing:
        raise errors.BinariesMissing(
            f"missing {', '.join(str(p) for p in missing)}; build them with 'make binaries' "
            "(or 'python -m devcluster.binaries')"
        )
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    started_at = time.monotonic()
    now = datetime.datetime.now(datetime.UTC)
    service_range = service_proxy.choose_range(str(state_dir.resolve()))
    cluster_pki = pki.write_cluster_pki(state_dir / "pki", now, service_ip=service_range.kubernetes_ip)
    hosts_file = state_dir / "hosts"

    taken: set[int] = set()

    def pick(preferred: int | None = None) -> int:
        port = processes.free_port(preferred, avoid=taken)
        taken.add(port)
        return port

    ports = {
        "apiserver": pick(options.apiserver_port),
        "etcd-client": pick(),
        "etcd-peer": pick(),
        "controller-manager": pick(),
        "scheduler": pick(),
    }
    server = f"https://127.0.0.1:{ports['apiserver']}"
    kubeconfigs = _write_kubeconfigs(state_dir, server, cluster_pki)

    scheduler_config_path = state_dir / "scheduler-config.yaml"
    scheduler_config = merge_config(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfigs["scheduler"])},
            "leaderElection": {"leaderElect": False},
        },
        options.scheduler_config or {},
    )
    scheduler_config_path.write_text(yaml.safe_dump(scheduler_config, sort_keys=False))

    logs = state_dir / "logs"
    etcd_url = f"http://127.0.0.1:{ports['etcd-client']}"
    commands = _commands(
        bins=bins,
        state_dir=state_dir,
        cluster_pki=cluster_pki,
        ports=ports,
        kubeconfigs=kubeconfigs,
        scheduler_config_path=scheduler_config_path,
        service_range=service_range,
        hosts_file=hosts_file,
    )
    started: list[processes.ProcessRecord] = []
    state = ClusterState(
        state_dir=state_dir,
        server=server,
        kubeconfig=kubeconfigs["admin"],
        ca_cert=cluster_pki.ca_cert,
        admin_cert=cluster_pki.admin_cert,
        admin_key=cluster_pki.admin_key,
        scheduler_config=scheduler_config_path,
        ports=ports,
        processes=started,
        service_cidr=service_range.cidr,
        kubernetes_service_ip=service_range.kubernetes_ip,
        hosts_file=hosts_file,
    )
    deadline = time.monotonic() + options.ready_timeout_s
    try:
        with state.http_client(timeout=3.0) as api:
            for name, argv in commands:
                started.append(processes.spawn(name, argv, logs / f"{name}.log"))
                (state_dir / _STATE_FILE).write_text(state.to_json())
                if name == "etcd":
                    _wait(
                        "etcd /health",
                        lambda: httpx.get(f"{etcd_url}/health", timeout=2.0).status_code == 200,
                        deadline,
                        started,
                    )
                elif name == "kube-apiserver":
                    _wait("kube-apiserver /readyz", lambda: api.get("/readyz").status_code == 200, deadline, started)
            _wait(
                "kube-controller-manager /healthz", lambda: _healthz_ok(ports["controller-manager"]), deadline, started
            )
            _wait("kube-scheduler /healthz", lambda: _healthz_ok(ports["scheduler"]), deadline, started)
            _wait_routed(state, deadline, started)
            # Pods can only be created once the default ServiceAccount exists.
            _wait(
                "the default ServiceAccount",
                lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200,
                deadline,
                started,
            )
    except BaseException:
        for record in reversed(started):
            processes.stop(record, grace_seconds=3.0)
        raise
    logger.info("control plane ready", extra={"server": server, "seconds": round(time.monotonic() - started_at, 1)})
    return state


def down(state_dir: pathlib.Path, grace_seconds: float = 10.0) -> bool:
    """Stop the recorded cluster of ``state_dir`` and remove its state.

    Returns False when there was nothing recorded there.  Components stop in
    reverse start order so that etcd outlives the apiserver.
    """
    state = load(state_dir)
    if state is None:
        return False
    for record in reversed(state.processes):
        processes.stop(record, grace_seconds=grace_seconds)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(state_dir)
    return True
