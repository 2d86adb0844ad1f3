"""``fma-dev demo``: the user's story with the FMA chart on the development cluster.

``helm upgrade --install`` of ``charts/fma`` (``helm_release``) into
``fma-system`` on a cluster of 2 simulated nodes x 4 GPUs, then what a user
does: one LauncherConfig (launchers run the engine simulator), three models
(InferenceServerConfigs) and a policy of three launchers per GPU node; three
ordinary vLLM-style Deployments carrying one FMA annotation each; then
scaling and switching models so that every actuation path happens:

* **cold** -- no launcher with room: the controllers create one, bound;
* **warm** -- a new instance in a launcher that already runs;
* **hot** -- a sleeping instance of the model on the requester's GPU is woken.

Each step waits on a condition and prints what it saw.  At the end it prints
a table of actuation times per path, from the controllers'
``fma_actuation_seconds`` histogram (scraped from each replica's /metrics)
and from the requesters' ``ActuatedHot/Warm/Cold`` Events, and writes a PNG
timeline of the GPUs (``demo_timeline``) under ``demo-output/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import pathlib
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

import kube
from devcluster import control_plane, demo_timeline, helm_release, samples, waiting
from kube import resources

__all__ = ["NAMESPACE", "OUTPUT_DIR", "VALUES", "Result", "run"]

NAMESPACE = helm_release.NAMESPACE
VALUES = pathlib.Path(__file__).resolve().with_name("demo-values.yaml")
OUTPUT_DIR = pathlib.Path("demo-output")
_DEPLOYMENTS = helm_release.DEPLOYMENTS
_P = "dual-pods.llm-d.ai/"
_LC = "demo-sim"
_LPP = "three-per-gpu-node"
_PER_NODE = 3
MODELS = {
    # ISC name: (port, --model)
    "llama-8b": (8005, "meta-llama/Llama-3.1-8B-Instruct"),
    "qwen-7b": (8006, "Qwen/Qwen2.5-7B-Instruct"),
    "mistral-7b": (8007, "mistralai/Mistral-7B-Instruct-v0.3"),
}
# Deployment: (ISC, replicas)
APPS = {"assistant": ("llama-8b", 2), "coder": ("qwen-7b", 2), "summarizer": ("mistral-7b", 2)}
_STEP_S = 150.0
_EVENT_SECONDS = re.compile(r"in ([0-9.]+)s")


@dataclasses.dataclass
class Result:
    """What the demo measured."""

    png: pathlib.Path
    by_path: dict[str, list[float]]
    """Actuation seconds per path, from the requesters' Events."""
    metric: dict[str, tuple[float, float]]
    """path -> (count, sum) of fma_actuation_seconds over the controllers replicas."""


def run(
    state: control_plane.ClusterState, say: Callable[[str], None], *, output_dir: pathlib.Path = OUTPUT_DIR
) -> Result:
    """Run the story against ``state``'s cluster (which must have simnode nodes)."""
    api = kube.connect(str(state.kubeconfig), field_manager="fma-demo")
    try:
        return _Story(api, state, say, output_dir).run()
    finally:
        api.close()


_PATH_OF = {"ActuatedCold": "cold", "ActuatedWarm": "warm", "ActuatedHot": "hot"}


def _notes(pod: dict[str, Any]) -> dict[str, str]:
    return dict(pod["metadata"].get("annotations") or {})


def _ready(pod: dict[str, Any]) -> bool:
    return helm_release.pod_ready(pod)


def _vllm_deployment(name: str, isc: str, replicas: int) -> dict[str, Any]:
    """An ordinary vLLM Deployment plus the one FMA annotation (the webhook makes its Pods requesters)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {_P + "inference-server-config": isc}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "inference-server",
                            "image": "vllm/vllm-openai:v0.11.0",
                            "command": ["vllm", "serve", MODELS[isc][1]],
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                },
            },
        },
    }


class _Story:
    def __init__(
        self, api: kube.Client, state: control_plane.ClusterState, say: Callable[[str], None], output: pathlib.Path
    ) -> None:
        self.api = api
        self.state = state
        self.output = output
        self.started = time.monotonic()
        self._say = say
        self.nodes: list[str] = []
        self.chart: helm_release.InstalledChart | None = None
        self.timeline = demo_timeline.Sampler(api, NAMESPACE, f"{helm_release.RELEASE}-fma-launcher-token")

    def say(self, text: str) -> None:
        self._say(f"[{time.monotonic() - self.started:6.1f}s] {text}")

    # --- setup -------------------------------------------------------------------------------------

    def _gpu_nodes(self) -> list[str]:
        nodes, _ = self.api.list_all(resources.NODES, label_selector="nvidia.com/gpu.present=true")
        return sorted(n["metadata"]["name"] for n in nodes)

    def _ensure_gpu_map(self) -> None:
        """The chart's components read ``gpu-map`` in the release namespace; copy it there if simnode
        publishes it elsewhere (a cluster started with another --gpu-map-namespace)."""
        if self.api.get_or_none(resources.CONFIG_MAPS, "gpu-map", NAMESPACE) is not None:
            return
        source = self.api.get_or_none(resources.CONFIG_MAPS, "gpu-map", "default")
        if source is None:
            raise waiting.WaitTimeout("no gpu-map ConfigMap: start the cluster with 'fma-dev demo'")
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gpu-map"}, "data": source.get("data")}
        self.api.create(resources.CONFIG_MAPS, body, NAMESPACE)

    def install(self) -> None:
        self.nodes = self._gpu_nodes()
        workdir = self.state.state_dir / "demo"
        workdir.mkdir(parents=True, exist_ok=True)
        self.chart = helm_release.InstalledChart(
            cluster=self.state,
            api=self.api,
            simnode_state_dir=self.state.kubeconfig.resolve().parent / "simnode",
            workdir=workdir,
            node_names=self.nodes,
            values=VALUES,
        )
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        if self.api.get_or_none(resources.NAMESPACES, NAMESPACE) is None:
            self.api.create(resources.NAMESPACES, namespace)
        self._ensure_gpu_map()
        self.say(f"helm upgrade --install {helm_release.RELEASE} charts/fma -n {NAMESPACE} --values {VALUES.name}")
        began = time.monotonic()
        self.chart.helm("upgrade", "--install", *self.chart.install_args(), timeout=360.0)
        waiting.wait_for(self.chart.all_available, timeout=120, what="every Deployment of the release Available")
        pods = self.chart.pods()
        self.say(
            f"chart installed in {time.monotonic() - began:.1f}s: "
            + ", ".join(sorted(p["metadata"]["name"].removeprefix("fma-fma-") for p in pods if _ready(p)))
        )

    def reset(self) -> None:
        """Remove what an earlier run of the demo left (its Deployments first, so that no requester is lost)."""
        for app in APPS:
            with contextlib.suppress(kube.errors.NotFound):
                self.api.delete(_DEPLOYMENTS, app, NAMESPACE)
        selector = f"app in ({','.join(APPS)})"
        if self.api.list_all(resources.PODS, NAMESPACE, label_selector=selector)[0]:
            self.say("removing the requesters of an earlier demo run")
            waiting.wait_for(
                lambda: not self.api.list_all(resources.PODS, NAMESPACE, label_selector=selector)[0],
                timeout=_STEP_S,
                what="the earlier run's requesters gone",
            )
        with contextlib.suppress(kube.errors.NotFound):
            self.api.delete(resources.LAUNCHER_POPULATION_POLICIES, _LPP, NAMESPACE)
        for name in MODELS:
            with contextlib.suppress(kube.errors.NotFound):
                self.api.delete(resources.INFERENCE_SERVER_CONFIGS, name, NAMESPACE)
        with contextlib.suppress(kube.errors.NotFound):
            self.api.delete(resources.LAUNCHER_CONFIGS, _LC, NAMESPACE)
        waiting.wait_for(
            lambda: (
                not self.api.list_all(resources.PODS, NAMESPACE, label_selector="app.kubernetes.io/component=launcher")[
                    0
                ]
            ),
            timeout=_STEP_S,
            what="the earlier run's launchers gone",
        )

    def create_models(self) -> None:
        self.timeline.start()
        self.timeline.mark("models created")
        self.say(f"LauncherConfig {_LC}: launchers run the engine simulator, at most 2 instances each")
        self.api.create(
            resources.LAUNCHER_CONFIGS,
            samples.launcher_config(_LC, service_account=f"{helm_release.RELEASE}-fma-launcher"),
            NAMESPACE,
        )
        for name, (port, model) in MODELS.items():
            options = samples.engine_sim_options(model, startup_s=2.0, model_gib=16.0)
            body = samples.inference_server_config(name, launcher_config_name=_LC, options=options, port=port)
            self.api.create(resources.INFERENCE_SERVER_CONFIGS, body, NAMESPACE)
            self.say(f"InferenceServerConfig {name}: {model} on port {port}")
        # The populator keeps this many launchers per GPU node, bound or not: a launcher holding sleeping
        # instances stays while the node has no more than that (docs/populator.md).
        policy = samples.launcher_population_policy(
            _LPP, launcher_config_name=_LC, count=_PER_NODE, match_labels={"nvidia.com/gpu.present": "true"}
        )
        self.api.create(resources.LAUNCHER_POPULATION_POLICIES, policy, NAMESPACE)
        self.say(f"LauncherPopulationPolicy {_LPP}: {_PER_NODE} launchers on every GPU node, waiting for models")

        def launchers_ready() -> bool:
            pods = self._pods("app.kubernetes.io/component=launcher")
            return len(pods) >= _PER_NODE * len(self.nodes) and all(_ready(p) for p in pods)

        waiting.wait_for(launchers_ready, timeout=_STEP_S, what="the populator's launchers Ready")
        self.say(f"{_PER_NODE * len(self.nodes)} launchers Ready ({_PER_NODE} per node, no model loaded yet)")

    # --- the story ---------------------------------------------------------------------------------

    def _pods(self, selector: str) -> list[dict[str, Any]]:
        items, _ = self.api.list_all(resources.PODS, NAMESPACE, label_selector=selector)
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def _settled(self, app: str, replicas: int) -> bool:
        items, _ = self.api.list_all(resources.PODS, NAMESPACE, label_selector=f"app={app}")
        if replicas == 0:
            return not items
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        wanted = (self._isc_of(app),)
        return (
            len(live) == len(items) == replicas
            and all(_ready(p) and p["metadata"]["labels"].get(_P + "dual") for p in live)
            and all(
                (p["metadata"].get("annotations") or {}).get(_P + "inference-server-config") in wanted for p in live
            )
        )

    def _isc_of(self, app: str) -> str:
        deployment = self.api.get(_DEPLOYMENTS, app, NAMESPACE)
        return str(deployment["spec"]["template"]["metadata"]["annotations"][_P + "inference-server-config"])

    def _paths(self, app: str) -> str:
        """The Actuated* reasons of the app's live requesters, e.g. '2 warm' or '1 hot, 1 cold'."""
        found: list[str] = []
        for pod in self._pods(f"app={app}"):
            events, _ = self.api.list_all(
                resources.EVENTS, NAMESPACE, field_selector=f"involvedObject.uid={pod['metadata']['uid']}"
            )
            found += [
                str(e["reason"]).removeprefix("Actuated").lower()
                for e in events
                if str(e.get("reason")).startswith("Actuated") and e.get("reason") != "ActuationFailed"
            ]
        counts = {p: found.count(p) for p in ("cold", "warm", "hot") if found.count(p)}
        return ", ".join(f"{n} {p}" for p, n in counts.items()) or "no actuation"

    def wait_apps(self, apps: list[tuple[str, int]], what: str) -> None:
        began = time.monotonic()
        for app, replicas in apps:
            waiting.wait_for(
                functools.partial(self._settled, app, replicas),
                timeout=_STEP_S,
                what=f"{app} at {replicas} Ready requesters",
            )
        detail = "; ".join(f"{app}: {self._paths(app)}" for app, replicas in apps if replicas)
        self.say(f"{what}: done in {time.monotonic() - began:.1f}s" + (f" ({detail})" if detail else ""))

    def scale(self, app: str, replicas: int) -> None:
        self.api.patch(_DEPLOYMENTS, app, {"spec": {"replicas": replicas}}, NAMESPACE)

    def switch(self, app: str, isc: str) -> None:
        patch = {"spec": {"template": {"metadata": {"annotations": {_P + "inference-server-config": isc}}}}}
        self.api.patch(_DEPLOYMENTS, app, patch, NAMESPACE)

    def story(self) -> None:
        self.timeline.mark("deploy 3 models")
        self.say("deploying assistant (llama-8b x2), coder (qwen-7b x2), summarizer (mistral-7b x2)")
        for app, (isc, replicas) in APPS.items():
            self.api.create(_DEPLOYMENTS, _vllm_deployment(app, isc, replicas), NAMESPACE)
        self.wait_apps([(a, r) for a, (_, r) in APPS.items()], "6 requesters Ready on 6 of 8 GPUs")

        self.timeline.mark("assistant -> 0")
        self.say("scaling assistant to 0: its engines go to sleep, their launchers stay")
        self.scale("assistant", 0)
        self.wait_apps([("assistant", 0)], "assistant scaled to 0")
        self.timeline.mark("assistant -> 2")
        self.say("scaling assistant back to 2: its sleeping engines are woken")
        self.scale("assistant", 2)
        self.wait_apps([("assistant", 2)], "assistant back")

        self.timeline.mark("summarizer: mistral -> llama")
        self.say("switching summarizer to llama-8b: mistral sleeps, llama starts in the same launcher")
        self.switch("summarizer", "llama-8b")
        self.wait_apps([("summarizer", 2)], "summarizer on llama-8b")
        self.timeline.mark("summarizer: llama -> mistral")
        self.say("switching summarizer back to mistral-7b: the sleeping mistral engines are woken")
        self.switch("summarizer", "mistral-7b")
        self.wait_apps([("summarizer", 2)], "summarizer on mistral-7b")

        self.timeline.mark("coder -> 3")
        self.say("scaling coder to 3: a seventh GPU, on a node whose launchers are all busy")
        self.scale("coder", 3)
        self.wait_apps([("coder", 3)], "coder at 3")
        self.timeline.mark("end")

    # --- the results ---------------------------------------------------------------------------------

    def event_times(self) -> dict[str, list[float]]:
        events, _ = self.api.list_all(resources.EVENTS, NAMESPACE)
        by_path: dict[str, list[float]] = {"cold": [], "warm": [], "hot": []}
        for event in events:
            reason = str(event.get("reason"))
            path = _PATH_OF.get(reason)
            match = _EVENT_SECONDS.search(str(event.get("message")))
            if path and match:
                by_path[path].extend([float(match.group(1))] * int(event.get("count") or 1))
        return by_path

    def metric(self) -> dict[str, tuple[float, float]]:
        totals: dict[str, list[float]] = {}
        for pod in self._pods("app.kubernetes.io/component=controllers"):
            ip = (pod.get("status") or {}).get("podIP")
            if not ip:
                continue
            text = httpx.get(f"http://{ip}:8002/metrics", timeout=5).text
            for line in text.splitlines():
                if not line.startswith(("fma_actuation_seconds_count{", "fma_actuation_seconds_sum{")):
                    continue
                labels, value = line.rsplit(" ", 1)
                path = re.search(r'path="([a-z]+)"', labels)
                if path is None:
                    continue
                slot = totals.setdefault(path.group(1), [0.0, 0.0])
                slot[0 if "_count{" in labels else 1] += float(value)
        return {path: (count, total) for path, (count, total) in totals.items()}

    def table(self, by_path: dict[str, list[float]], metric: dict[str, tuple[float, float]]) -> None:
        self._say("")
        self._say("actuation times (requester container start -> Ready), per path:")
        header = f"  {'path':<5} {'count':>5} {'min':>7} {'median':>7} {'max':>7}   {'fma_actuation_seconds':>21}"
        self._say(header)
        self._say("  " + "-" * (len(header) - 2))
        for path in ("cold", "warm", "hot"):
            values = sorted(by_path.get(path, []))
            count, total = metric.get(path, (0.0, 0.0))
            mean = f"{int(count)} obs, mean {total / count:.2f}s" if count else "none"
            if values:
                row = f"{len(values):>5} {values[0]:>6.2f}s {statistics.median(values):>6.2f}s {values[-1]:>6.2f}s"
            else:
                row = f"{0:>5} {'-':>7} {'-':>7} {'-':>7}"
            self._say(f"  {path:<5} {row}   {mean:>21}")
        self._say("  (columns 2-5 from the requesters' Actuated* Events; the last from the controllers' /metrics)")

    def run(self) -> Result:
        self.install()
        self.reset()
        self.create_models()
        try:
            self.story()
        finally:
            self.timeline.stop()
        by_path, metric = self.event_times(), self.metric()
        self.table(by_path, metric)
        gpus = []
        gpu_map = self.api.get(resources.CONFIG_MAPS, "gpu-map", NAMESPACE)
        for node, value in sorted((gpu_map.get("data") or {}).items()):
            gpus += [f"{node}/gpu{i}" for i in sorted(json.loads(value).values())]
        png = demo_timeline.render(
            self.timeline,
            self.output.resolve() / "timeline.png",
            gpus,
            "FMA demo: which model each GPU held (solid: bound to a requester, hatched: asleep)",
        )
        self._say("")
        self._say(f"timeline written to {png}")
        return Result(png=png, by_path=by_path, metric=metric)
