"""The placement stack of the cluster tests, wired once on the session's development cluster.

``StackOpener.open`` (through the ``stack_opener`` fixture) starts, in a
test's fresh namespace: the real webhook (in-process, its own certificates, a
MutatingWebhookConfiguration scoped to the namespace, hints read from a real
sleeper cache), optionally a kube-scheduler with the ``hints`` profile
under its own scheduler name (the stock binary, or FMA's build with the
NominatedNode plugin), the real ``fma-controllers`` process, and the
samples (LauncherConfig ``lc``, InferenceServerConfig ``isc1`` of the engine
simulator).  The tests differ
only in the webhook's settings (placement, nominate, GPU claims), the
scheduler, and whether the controllers start at once.

``spawn_scheduler`` is the one way the cluster tests start a second
kube-scheduler from a rendered configuration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import pathlib
import sys
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import httpx
import pytest
import yaml

import kube
from certs import issuer, reloading_context, renewal, rotation_plan, store
from crds import keys
from devcluster import binaries, control_plane, processes, samples, waiting
from extender import scheduler_config
from kube import resources
from kube.cache import ChangeHandler
from webhook import app as app_mod
from webhook import cluster_facts, configuration, metrics, server, settings

P = "dual-pods.llm-d.ai/"
DEPLOYMENTS = resources.Resource("apps", "v1", "deployments", "Deployment")
POLICY = rotation_plan.Policy(
    identity=issuer.ServingIdentity("fma-webhook", ip_addresses=("127.0.0.1",)), overlap=datetime.timedelta(0)
)


def ready(pod: Mapping[str, Any]) -> bool:
    """Whether ``pod`` has the condition Ready=True."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def user_deployment(name: str) -> dict[str, Any]:
    """What a user writes: an ``inference-server`` container and the ISC annotation; the webhook does the rest."""
    container = {
        "name": "inference-server",
        "image": "vllm/vllm-openai",
        "command": ["vllm", "serve", "tiny"],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    template = {
        "metadata": {"labels": {"app": name}, "annotations": {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "isc1"}},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]},
    }
    return samples.deployment(name, template)


def spawn_scheduler(
    devcluster: control_plane.ClusterState,
    workdir: pathlib.Path,
    name: str,
    config: Mapping[str, Any],
    binary: pathlib.Path | None = None,
    *,
    wait_healthy: bool = True,
) -> processes.ProcessRecord:
    """Start a second kube-scheduler with ``config`` (as the cluster's scheduler user) and, unless
    ``wait_healthy`` is False, wait until healthy; its log is ``workdir/<name>.log``.  ``binary`` defaults to
    the stock kube-scheduler (FMA's build: ``binaries.ensure_fma_scheduler()``)."""
    kubeconfig = devcluster.state_dir / "scheduler.kubeconfig"
    config_path = workdir / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    port = processes.free_port()
    record = processes.spawn(
        name,
        [
            str(binary or binaries.locate().kube_scheduler),
            f"--config={config_path}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={workdir / (name + '-certs')}",
            "--v=2",
        ],
        workdir / f"{name}.log",
    )
    if not wait_healthy:
        return record
    try:
        waiting.wait_for(
            lambda: httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2).status_code == 200,
            timeout=60,
            what=f"{name} /healthz",
            ignore=(httpx.HTTPError,),
        )
    except BaseException:
        processes.stop(record, grace_seconds=5)
        raise
    return record


def hints_scheduler_config(
    devcluster: control_plane.ClusterState,
    name: str,
    nominated_node_plugin: bool = False,
    max_binds_in_flight: int | None = scheduler_config.DEFAULT_MAX_BINDS_IN_FLIGHT,
) -> dict[str, Any]:
    """The ``hints`` configuration (no extender) under the profile name ``name``; with
    ``nominated_node_plugin`` also FMA's plugins, its PacedBinder with ``max_binds_in_flight`` (FMA's
    kube-scheduler build only)."""
    kubeconfig = devcluster.state_dir / "scheduler.kubeconfig"
    config = scheduler_config.render(
        None,
        placement="hints",
        kubeconfig=str(kubeconfig),
        leader_election=False,
        nominated_node_plugin=nominated_node_plugin,
        max_binds_in_flight=max_binds_in_flight,
    )
    assert "extenders" not in config
    config["profiles"][0]["schedulerName"] = name
    return config


def launcher_rbac(api: kube.Client, namespace: str) -> None:
    """Let the namespace's default service account (the launchers') get and patch Pods."""
    rbac = "rbac.authorization.k8s.io"
    api.create(
        resources.Resource(rbac, "v1", "roles", "Role"),
        {
            "metadata": {"name": "launcher"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}],
        },
        namespace,
    )
    api.create(
        resources.Resource(rbac, "v1", "rolebindings", "RoleBinding"),
        {
            "metadata": {"name": "launcher"},
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "launcher"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
        },
        namespace,
    )


def strip_finalizers(api: kube.Client, namespace: str) -> None:
    """Remove every Pod finalizer in ``namespace`` (once the controllers are gone), so its deletion goes through."""
    for pod in api.list_all(resources.PODS, namespace)[0]:
        if pod["metadata"].get("finalizers"):
            with contextlib.suppress(kube.errors.NotFound):
                api.patch(resources.PODS, pod["metadata"]["name"], {"metadata": {"finalizers": None}}, namespace)


def gpu_map_file(api: kube.Client, namespace: str, path: pathlib.Path) -> pathlib.Path:
    """The ``gpu-map`` ConfigMap of ``namespace`` merged into one JSON file at ``path`` (for the launchers)."""
    config_map = api.get(resources.CONFIG_MAPS, "gpu-map", namespace)
    table: dict[str, int] = {}
    for value in (config_map.get("data") or {}).values():
        table.update({k: int(v) for k, v in json.loads(value).items()})
    path.write_text(json.dumps(table))
    return path


@dataclasses.dataclass
class Stack:
    """The webhook's view and metrics, the controllers' command line and port, helpers over the namespace."""

    api: kube.Client
    namespace: str
    workdir: pathlib.Path
    webhook_metrics: metrics.Metrics
    hints: cluster_facts.SleeperHints
    controller_argv: list[str]
    controller_port: int
    controller: processes.ProcessRecord | None = dataclasses.field(default=None, init=False)
    starts: int = dataclasses.field(default=0, init=False)

    @property
    def controller_log(self) -> pathlib.Path:
        """The log of the latest controllers process."""
        return self.workdir / f"controller-{self.starts}.log"

    def start_controllers(self) -> None:
        self.starts += 1
        self.controller = processes.spawn("fma-controllers", self.controller_argv, self.controller_log)
        waiting.wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{self.controller_port}/readyz", timeout=2).status_code == 200,
            timeout=60,
            what="fma-controllers /readyz",
            ignore=(httpx.HTTPError,),
        )

    def stop_controllers(self) -> None:
        if self.controller is not None:
            processes.stop(self.controller, 10)
            self.controller = None

    def controller_metric(self, name: str, label: str) -> float:
        """The sum of the controllers' samples of ``name`` whose labels contain ``label``."""
        text = httpx.get(f"http://127.0.0.1:{self.controller_port}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{") and label in line
        )

    def actuations(self, path: str) -> float:
        """How many actuations the controllers made along ``path`` (hot, warm, cold)."""
        return self.controller_metric("fma_actuation_seconds_count", f'path="{path}"')

    def pods(self, selector: str) -> list[dict[str, Any]]:
        """The Pods of ``selector`` not being deleted."""
        items, _ = self.api.list_all(resources.PODS, self.namespace, label_selector=selector)
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def one_pod(self, app: str) -> dict[str, Any] | None:
        items = self.pods(f"app={app}")
        return items[0] if len(items) == 1 else None

    def scale(self, name: str, replicas: int) -> None:
        self.api.patch(DEPLOYMENTS, name, {"spec": {"replicas": replicas}}, self.namespace)

    def ready_requester(self, app: str, timeout: float = 120) -> dict[str, Any]:
        """The one requester of ``app``, once it is Ready (prints the controllers' log tail on a timeout)."""

        def one_ready() -> dict[str, Any] | None:
            pod = self.one_pod(app)
            return pod if pod is not None and ready(pod) else None

        try:
            found: dict[str, Any] = waiting.wait_for(one_ready, timeout=timeout, what=f"a Ready requester of {app}")
        except waiting.WaitTimeout:
            print(self.controller_log.read_text(errors="replace")[-6000:])
            raise
        return found

    def wait_sleeping(self, launcher_name: str, node: str) -> None:
        """Wait until the launcher sleeps with a running instance and the webhook's cache sees its GPU free."""

        def asleep() -> bool:
            meta = self.api.get(resources.PODS, launcher_name, self.namespace)["metadata"]
            inventory = json.loads(meta.get("annotations", {}).get(keys.INSTANCES_ANNOTATION) or "{}")
            running = [i for i in inventory.get("instances") or [] if i.get("status") == "running"]
            return meta["labels"].get(P + "sleeping") == "true" and bool(running)

        waiting.wait_for(asleep, timeout=60, what="the launcher asleep with its instance in the inventory")

        def seen_free() -> bool:
            view = self.hints.cache.node(node)
            return view is not None and not view.held and bool(view.sleepers())

        waiting.wait_for(seen_free, timeout=30, what="the webhook's cache to see the sleeper's GPU free")


S = TypeVar("S", bound=Stack)


@dataclasses.dataclass
class StackOpener:
    """Opens the stack in a test's fresh namespace; what it starts stops with the ``stack_opener`` fixture."""

    cleanup: contextlib.ExitStack
    devcluster: control_plane.ClusterState
    namespace: str
    workdir: pathlib.Path

    def watch_pods(self, stack: Stack, handler: ChangeHandler) -> None:
        """Call ``handler`` on every change of a Pod in the stack's namespace, from now until the stack stops."""
        watch = kube.WatchCache(stack.api, resources.PODS, namespace=stack.namespace)
        watch.add_handler(handler)
        watch.start()
        self.cleanup.callback(watch.stop)
        watch.wait_synced(30)

    def open(
        self,
        stack_type: type[S],
        *,
        name: str,
        gpu_map_namespace: str,
        webhook_settings: Mapping[str, Any],
        scheduler: str | None = None,
        scheduler_plugin: bool = False,
        start_controllers: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> S:
        """Start the stack as a ``stack_type`` (a ``Stack``, plus the ``extra`` fields of a subclass).

        ``name``: the MutatingWebhookConfiguration's name (before the namespace).  ``webhook_settings``: the
        webhook's settings besides the kubeconfig and the namespaces; with ``gpu_claims: dra`` the webhook's
        lookups get the claim options and the controllers the claim keeper.  ``scheduler``: a stock
        kube-scheduler with the ``hints`` profile under that name (none when ``None``); with
        ``scheduler_plugin`` FMA's kube-scheduler build instead, the NominatedNode plugin enabled.
        """
        cleanup, devcluster, namespace, workdir = self.cleanup, self.devcluster, self.namespace, self.workdir
        api = kube.connect(str(devcluster.kubeconfig), field_manager="fma-test")
        launcher_rbac(api, namespace)
        cleanup.callback(api.close)
        # Runs last, after the controllers have stopped: let the namespace deletion go through.
        cleanup.callback(strip_finalizers, api, namespace)
        # The webhook, in-process, with hints read from a real sleeper cache.
        cert_dir = workdir / "certs"
        cert_dir.mkdir()
        renewal.run(store.FileStore(cert_dir), POLICY, datetime.datetime.now(datetime.UTC))
        webhook_metrics = metrics.Metrics()
        context = reloading_context.ReloadingContext(cert_dir / store.TLS_CERT, cert_dir / store.TLS_KEY)
        context.start(1.0)
        cleanup.callback(context.stop)
        configured = settings.Settings(
            kubeconfig=str(devcluster.kubeconfig),
            placement_namespace=namespace,
            gpu_map_namespace=gpu_map_namespace,
            **webhook_settings,
        )
        lookups_api = kube.connect(str(devcluster.kubeconfig), field_manager="fma-webhook")
        hints = server.sleeper_hints(configured, lookups_api, webhook_metrics)
        lookups = cluster_facts.ClusterLookups(
            lookups_api,
            timeout=1.0,
            hints=hints,
            gpu_claims=server.gpu_claims_options(configured) if configured.dra else None,
        )
        lookups.start()
        cleanup.callback(lookups.stop)
        waiting.wait_for(lambda: lookups.synced and hints.cache.synced, timeout=60, what="the webhook's caches")
        threaded = server.ThreadedServer.start(
            app_mod.create_app(server.build_state(configured, lookups, webhook_metrics)), context.context
        )
        cleanup.callback(threaded.stop)
        mwc_name = f"{name}-{namespace}"
        api.create(
            resources.MUTATING_WEBHOOK_CONFIGURATIONS,
            configuration.render(
                (cert_dir / store.BUNDLE).read_bytes(),
                url=f"https://127.0.0.1:{threaded.port}/mutate",
                name=mwc_name,
                namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            ),
        )
        cleanup.callback(api.delete, resources.MUTATING_WEBHOOK_CONFIGURATIONS, mwc_name)
        if scheduler is not None:
            record = spawn_scheduler(
                devcluster,
                workdir,
                scheduler,
                hints_scheduler_config(devcluster, scheduler, nominated_node_plugin=scheduler_plugin),
                binary=binaries.ensure_fma_scheduler() if scheduler_plugin else None,
            )
            cleanup.callback(processes.stop, record, 5)
        # The dual-pods controllers.
        port = processes.free_port()
        argv = [
            sys.executable,
            "-m",
            "controllers",
            f"--namespace={namespace}",
            f"--kubeconfig={devcluster.kubeconfig}",
            f"--gpu-map-namespace={gpu_map_namespace}",
            "--leader-elect=false",
            "--enable-populator=false",
            *(["--enable-gpu-claims=true"] if configured.dra else []),
            "--debug-accelerator-memory=false",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={port}",
            "--log-format=text",
        ]
        stack = stack_type(api, namespace, workdir, webhook_metrics, hints, argv, port, **(extra or {}))
        cleanup.callback(stack.stop_controllers)
        if start_controllers:
            stack.start_controllers()
        gpu_map = gpu_map_file(api, gpu_map_namespace, workdir / "gpu-map.json")
        api.create(
            resources.LAUNCHER_CONFIGS,
            samples.launcher_config("lc", gpu_map_file=gpu_map, log_dir=workdir, max_instances=2),
            namespace,
        )
        api.create(
            resources.INFERENCE_SERVER_CONFIGS,
            samples.inference_server_config(
                "isc1", launcher_config_name="lc", options=samples.engine_sim_options(), port=8005
            ),
            namespace,
        )
        return stack


@pytest.fixture
def stack_opener(
    devcluster: control_plane.ClusterState, fresh_namespace: str, fma_crds: list[str], tmp_path: pathlib.Path
) -> Iterator[StackOpener]:
    """A ``StackOpener`` for the test's fresh namespace (a module using it imports this fixture by name)."""
    with contextlib.ExitStack() as cleanup:
        yield StackOpener(cleanup, devcluster, fresh_namespace, tmp_path)
