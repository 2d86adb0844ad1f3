"""Scheduling throughput: the stock kube-scheduler versus the FMA scheduler with the extender.

Why: every GPU Pod the FMA scheduler places costs two synchronous HTTP calls
to ``fma-extender`` (filter, prioritize) over all candidate nodes.  This
benchmark measures what that costs, side by side in one run on one cluster:

- one development control plane and one simnode with ``--nodes`` status-only
  nodes (``--gpus-per-node`` GPUs each, Pods are only reported Running);
- ``--sleepers`` launcher Pods, each publishing one sleeping instance of the
  benchmark's model on a random node (so the extender has real work);
- for each scheduler in turn, ``--pods`` one-GPU requesters (ISC annotation)
  are created *first*, while no scheduler serves their ``schedulerName``; then
  that scheduler starts, and throughput is (pods - 1) / (last bind - first
  bind), from a watch of ``spec.nodeName``.  Creation speed and scheduler
  start-up are so kept out of the number.  ``api_server_bind_span`` gives the
  same span from the Pods' ``PodScheduled`` times (whole seconds), which do not
  depend on this process keeping up with its watch;
- ``default``: kube-scheduler with the stock configuration (one profile);
  ``fma``: the packaged FMA configuration (``extender.scheduler_config``) with
  the real ``fma-extender`` process.  Both get the same client QPS/burst
  overlay (the stock 50 QPS would cap both at the binding rate);
- ``fma-sampled`` (skip with ``--no-sampled``): the same FMA configuration
  without ``percentageOfNodesToScore: 100``, to show what scoring every node costs;
- ``fma-no-filter`` (skip with ``--no-filter-phase``): the FMA configuration
  without ``filterVerb``: one round trip per Pod instead of two;
- ``trivial`` (skip with ``--no-trivial``): the packaged FMA configuration,
  but the URL points at a trivial ASGI extender in this file (pass every
  node, score 0): the price of the extender protocol itself on this host.
  The real ``fma-extender`` is stopped before this phase, so it does not
  compete for the CPUs (its watches keep working otherwise);
- ``hints+extender`` and ``hints`` (skip with ``--no-hints``): placement hints
  (docs/extender.md, "Placement modes").  Each Pod gets, before it is
  created, the node affinity the webhook would write at admission: the
  webhook's own hint code (``webhook.cluster_facts.SleeperHints`` over a
  watch-fed ``kube.sleeper_cache.SleeperCache``, ``webhook.placement_hints``),
  called in this process instead of through an admission round trip, since
  admission is outside the measured interval anyway.  ``hints+extender`` runs
  the FMA configuration rendered for that placement with the real extender;
  ``hints`` runs it with no extender at all, after the extender is stopped,
  and ``hints-sampled`` (with the sampled phase) the same without
  ``percentageOfNodesToScore: 100``;
- ``default-full`` (skip with ``--no-default-full``): the stock configuration
  with ``percentageOfNodesToScore: 100``: what scoring every node costs the
  stock scheduler without any hint, so ``hints``/``default-full`` is the price
  of the hints themselves and ``default-full``/``default`` that of full scoring;
- ``honour-full`` and ``honour-sampled`` (skip with ``--no-honour``): the
  hot-hit cost of node sampling.  ``--honour-pods`` Pods, each with one
  preferred term (weight 10, a certain-hot hint written by
  ``webhook.placement_hints.operations``) naming its own node, a distinct node
  per Pod with every GPU free, so the hinted node stays feasible: with one
  sleeper of a model that is the one node where the Pod is hot.  Scheduled by
  the ``hints`` configuration scoring every node, then with default sampling;
  reported: the fraction of Pods that landed on their hinted node (an upper
  bound of the hot-hit rate for a model with one sleeper; with s equally good
  hinted nodes a miss needs all s outside the sample);
- ``nominated`` and ``honour-nominated`` (skip with ``--no-nominated``): an
  experiment, not a shipped mode.  The same one-node hints, and each Pod's
  ``status.nominatedNodeName`` set to its hinted node (a status patch, after
  creation, before the scheduler starts), scheduled with default sampling.
  kube-scheduler tries a Pod's nominated node first and, when it passes the
  filters, binds it there without looking at other nodes.  ``nominated`` runs
  ``--pods`` Pods (node i mod nodes, so every nominated node stays feasible)
  for throughput, ``honour-nominated`` the honour phase's Pods;
- ``default-live``, ``nominate-live`` and ``nominate-burst`` (skip with
  ``--no-nominate``): the shipped ``nominate`` mode (docs/extender.md,
  "Nomination").  Each Pod gets what the webhook writes for a certain-hot
  node (``webhook.placement_hints.operations`` and ``gate_operations``, the
  ``nominated-node`` annotation), one node per Pod (node i mod nodes, every
  nominated node stays feasible), and the real nominator
  (``controllers.nomination.Nominator`` with its default workers unless
  ``--nominator-workers``, in a process of its own started from this file)
  sets ``status.nominatedNodeName`` and lifts the gates while the
  scheduler (the ``hints`` configuration, scoring every node) runs.
  ``nominate-live``: the scheduler and the nominator run before the Pods are
  created: end-to-end Pods/s (first create to last bind), the scheduler-side
  rate (first to last bind), gate-lift latency (create returned to the gate
  seen lifted) p50/p99, honoured count.  ``default-live``: the same creation
  against the stock scheduler, no gate: the end-to-end baseline.
  ``nominate-burst``: the gated Pods are all created first, then the
  nominator starts: the scheduler-side rate to compare with ``default``
  (all Pods pending when scheduling starts) and the nominator's lift rate;
- ``plugin``, ``plugin-fallback-full`` and ``plugin-fallback-tainted`` (only with ``--plugin``, which runs
  ``default`` and these phases and nothing else): FMA's kube-scheduler build with the NominatedNode PreFilter
  plugin (``extender/scheduler_plugin``, built on demand by ``devcluster.binaries.ensure_fma_scheduler``;
  the ``nominate: plugin`` path, docs/extender.md "Scheduler plugin"), configured as ``hints`` with the scheduler's
  default node sampling and the plugin enabled. Each Pod carries what the webhook writes for a certain-hot
  node (the one-node hint and the ``nominated-node`` annotation; no gate, no nominator, no status write).
  ``plugin``: ``--pods`` Pods, node i mod nodes (every annotated node stays feasible): Pods/s against
  ``default`` and the honoured count; ``--plugin-rounds`` N adds N - 1 pairs ``default-N``/``plugin-N`` (stock
  and plugin alternating, for the spread of the ratio on a shared machine). The fallbacks: ``--fallback-pods``
  Pods all annotated with one node that cannot take them: ``full`` (its GPUs taken by a filler Pod, so the
  plugin sees the node has no room and does not restrict) and ``tainted`` (a NoSchedule taint the Pods do not
  tolerate: the plugin restricts the first attempt to it, that cycle fails, and the retry is unrestricted):
  how many were scheduled elsewhere and how long from the scheduler's start to the last bind;
  ``--with-plugin`` runs the same plugin phases (``--plugin-rounds``, the fallbacks) after all the other
  phases of a normal run instead, so that ``fma``/``trivial`` and ``plugin``/``default`` come from one run.
  The plugin phases run the shipped configuration, whose PacedBinder holds at most ``--max-binds-in-flight``
  binding calls in flight (docs/extender.md, "Paced binding"); each further ``--max-binds-in-flight`` value
  adds after each plugin phase ``plugin-max<N>[-R]`` with that maxInFlight, and ``--plugin-unpaced``
  ``plugin-unpaced[-R]``, the same with kube-scheduler's DefaultBinder: the side-by-side price of each;
- every phase records ``api_server_rejected_requests``: how much the API server's
  ``apiserver_flowcontrol_rejected_requests_total`` (API Priority and Fairness answering 429) grew from its
  scheduler's start to its end, per flow schema, priority level and reason; a rejected binding call is
  retried by client-go after the server's Retry-After, so rejections show up as late Pods;
- ``--extender-rounds`` N (runs ``default``, ``default-full`` unless ``--no-default-full``, these phases and
  nothing else): N pairs ``fma-R``/``trivial-R``,
  the real extender and the do-nothing one, each phase with only its own extender process running and the
  order alternating per round: fma / do-nothing per round and the median, for the spread of that ratio;
- after the ``fma`` phase, with its Pods still in place: ``--calls`` direct filter and
  prioritize calls to the extender with all node names (client-side latency,
  loopback HTTP included), and the server-side histogram of the run.

Bounded: each phase stops after ``--phase-timeout`` seconds and reports what
was scheduled by then.  Prints a table and writes
``benchmarks/results/scheduler_throughput.json`` with the run's record (UTC
times, commit, load average; see ``run_record``).  Targets: FMA/default >= 0.5,
extender p99 per call <= 20 ms at 1,000 nodes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import pathlib
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

# benchmarks/webhook.py (the webhook benchmark) shares the name of the product package whose hint code the
# hints phases call: leave this directory off the path while the product packages load, then add it back
# for run_record.
_HERE = pathlib.Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != _HERE]

import httpx  # noqa: E402
import prometheus_client  # noqa: E402
import uvicorn  # noqa: E402
import yaml  # noqa: E402
from prometheus_client import parser as prometheus_parser  # noqa: E402

import crds  # noqa: E402
import kube  # noqa: E402
from controllers import nomination  # noqa: E402
from crds import inference_server_config, keys, launcher_inventory, manifests, sleeper_scoring, timestamps  # noqa: E402
from devcluster import binaries, control_plane, processes, waiting  # noqa: E402
from devcluster import simnode as simnode_mod  # noqa: E402
from devcluster.simnode import fleet  # noqa: E402
from extender import scheduler_config  # noqa: E402
from kube import sleeper_cache  # noqa: E402
from webhook import cluster_facts, placement_hints, pod_view  # noqa: E402

sys.path.append(str(_HERE))
import run_record  # noqa: E402

RESULT = pathlib.Path(__file__).parent / "results" / "scheduler_throughput.json"
NAMESPACE = "bench"
ISC = "bench-isc"
LC = "bench-lc"
MODEL = inference_server_config.ModelServerConfig(port=8005, options="--model bench")
QPS_OVERLAY = {"clientConnection": {"qps": 1000, "burst": 2000}}
DEFAULT_PROFILE = "bench-default"


async def _trivial_extender(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A raw ASGI extender that passes every node and scores all 0: the protocol's cost without any model."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/healthz":
        answer = b"ok"
    else:
        names = json.loads(body).get("NodeNames") or []
        if path == "/filter":
            answer = json.dumps({"NodeNames": names, "FailedNodes": {}, "Error": ""}).encode()
        else:
            answer = json.dumps([{"Host": name, "Score": 0} for name in names]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})


def _serve_trivial(port: int) -> int:
    uvicorn.run(_trivial_extender, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return 0


def _serve_nominator(kubeconfig: str, workers: int | None) -> int:
    """Run the controllers' nominator over the benchmark namespace until SIGTERM (a process of its own, as in
    ``fma-controllers``, so that it does not share this process's interpreter)."""
    import signal  # noqa: PLC0415 - only this mode needs it

    api = kube.connect(kubeconfig, field_manager="fma-bench-nominator")
    pods = kube.WatchCache(api, kube.resources.PODS, namespace=NAMESPACE)
    nodes = kube.WatchCache(api, kube.resources.NODES)
    extra = {"workers": workers} if workers else {}
    nominator = nomination.Nominator(
        api, namespace=NAMESPACE, pods=pods, nodes=nodes, registry=prometheus_client.CollectorRegistry(), **extra
    )
    nominator.register_handlers()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for cache in (pods, nodes):
        cache.start()
    if not kube.cache.wait_all_synced([pods, nodes], 120):
        return 1
    nominator.start()
    print("nominator started", flush=True)
    stop.wait()
    nominator.stop()
    for cache in (pods, nodes):
        cache.stop()
    return 0


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _install(api: kube.Client) -> None:
    for document in manifests.documents():
        with contextlib.suppress(kube.errors.Conflict):
            api.create(kube.resources.CUSTOM_RESOURCE_DEFINITIONS, document)

    def established() -> bool:
        for document in manifests.documents():
            crd = api.get(kube.resources.CUSTOM_RESOURCE_DEFINITIONS, document["metadata"]["name"])
            conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") != "True":
                return False
        return True

    waiting.wait_for(established, timeout=60, what="CRDs Established")
    api.create(kube.resources.NAMESPACES, {"metadata": {"name": NAMESPACE}})
    waiting.wait_for(
        lambda: api.get_or_none(kube.resources.SERVICE_ACCOUNTS, "default", NAMESPACE),
        timeout=60,
        what="default ServiceAccount",
    )
    api.create(
        kube.resources.LAUNCHER_CONFIGS,
        {
            "apiVersion": crds.kinds.API_VERSION,
            "kind": "LauncherConfig",
            "metadata": {"name": LC},
            "spec": {"maxInstances": 2, "podTemplate": {"spec": {"containers": [{"name": "inference-server"}]}}},
        },
        NAMESPACE,
    )
    api.create(
        kube.resources.INFERENCE_SERVER_CONFIGS,
        {
            "apiVersion": crds.kinds.API_VERSION,
            "kind": "InferenceServerConfig",
            "metadata": {"name": ISC},
            "spec": {"modelServerConfig": MODEL.to_raw(), "launcherConfigName": LC},
        },
        NAMESPACE,
    )


def _pod(
    name: str, labels: Mapping[str, str], annotations: Mapping[str, str], gpus: int, **spec: Any
) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": "10m", "memory": "16Mi"}}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels), "annotations": dict(annotations)},
        "spec": {"containers": [{"name": "inference-server", "image": "ignored", "resources": resources}], **spec},
    }


def _create_all(
    api: kube.Client, bodies: list[dict[str, Any]], workers: int = 8, created: dict[str, float] | None = None
) -> None:
    """Create every body; with ``created``, record when each create call returned (monotonic)."""

    def create(body: dict[str, Any]) -> None:
        api.create(kube.resources.PODS, body, NAMESPACE)
        if created is not None:
            created[f"{NAMESPACE}/{body['metadata']['name']}"] = time.monotonic()

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(create, bodies))


def _sleepers(api: kube.Client, nodes: list[str], count: int, rng: random.Random) -> None:
    key = crds.config_key(MODEL)
    bodies = []
    for index, node in enumerate(rng.sample(nodes, min(count, len(nodes)))):
        inventory = launcher_inventory.LauncherInventory(
            revision=1,
            instances=[
                launcher_inventory.InventoryInstance(
                    id=f"I-bench-{index}-i",
                    isc=ISC,
                    config_key=key,
                    gpus=[fleet.gpu_uuid(node, 3)],
                    port=MODEL.port,
                    status="running",
                )
            ],
        )
        bodies.append(
            _pod(
                f"launcher-{index}",
                {
                    keys.LAUNCHER_CONFIG_NAME_LABEL: LC,
                    keys.NODE_NAME_LABEL: node,
                    keys.COMPONENT_LABEL: keys.COMPONENT_LAUNCHER,
                    "bench/role": "launcher",
                },
                {keys.INSTANCES_ANNOTATION: inventory.format()},
                0,
                nodeSelector={"kubernetes.io/hostname": node},
            )
        )
    _create_all(api, bodies)


class BindWatch:
    """Records when each Pod of one phase first shows a ``spec.nodeName``."""

    def __init__(self, api: kube.Client, phase: str) -> None:
        self.bound: dict[str, float] = {}
        self.nodes: dict[str, str] = {}
        self.lock = threading.Lock()
        self.cache = kube.WatchCache(
            api, kube.resources.PODS, namespace=NAMESPACE, label_selector=f"bench/phase={phase}"
        )
        self.ungated: dict[str, float] = {}
        """When each Pod was first seen without the nomination gate, having been seen with it."""
        self._gated: set[str] = set()
        self.cache.add_handler(self._on_change)

    def _on_change(self, key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if new is None:
            return
        now = time.monotonic()
        with self.lock:
            if nomination.gate_index(new) is not None:
                self._gated.add(key)
            elif key in self._gated:
                self.ungated.setdefault(key, now)
            if (new.get("spec") or {}).get("nodeName"):
                self.bound.setdefault(key, now)
                self.nodes.setdefault(key, str(new["spec"]["nodeName"]))

    def count(self) -> int:
        with self.lock:
            return len(self.bound)


def _spawn_scheduler(
    cluster: control_plane.ClusterState,
    workdir: pathlib.Path,
    name: str,
    config: dict[str, Any],
    binary: pathlib.Path | None = None,
) -> tuple[processes.ProcessRecord, int]:
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = processes.free_port()
    kubeconfig = cluster.state_dir / "scheduler.kubeconfig"
    record = processes.spawn(
        name,
        [
            str(binary or binaries.locate().kube_scheduler),
            f"--config={path}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={workdir / (name + '-certs')}",
            "--v=1",
        ],
        workdir / f"{name}.log",
    )
    return record, port


def _phase(
    api: kube.Client,
    cluster: control_plane.ClusterState,
    workdir: pathlib.Path,
    *,
    phase: str,
    profile: str,
    config: dict[str, Any],
    pods: int,
    timeout: float,
    hints: cluster_facts.SleeperHints | None = None,
    targets: list[str] | None = None,
    nominate: bool = False,
    annotate: bool = False,
    binary: pathlib.Path | None = None,
) -> tuple[dict[str, Any], processes.ProcessRecord]:
    """One scheduler's run over ``pods`` Pods; with ``targets`` (one node per Pod) each Pod is hinted at
    its own node alone and the result says how many landed there.  ``annotate`` also writes the
    ``nominated-node`` annotation as the webhook does; ``binary`` replaces the stock kube-scheduler."""
    isc_annotation = {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: ISC}
    if targets is not None:
        pods = len(targets)
    bodies = [
        _pod(f"{phase}-{i}", {"bench/phase": phase}, isc_annotation, 1, schedulerName=profile) for i in range(pods)
    ]
    hinted = 0
    if hints is not None:
        hinted = _add_hints(bodies, hints)
    if targets is not None:
        _hint_one_node_each(bodies, targets)
        if annotate:
            for body, node in zip(bodies, targets, strict=True):
                body["metadata"]["annotations"][keys.NOMINATED_NODE_ANNOTATION] = node
    watch = BindWatch(api, phase)
    watch.cache.start()
    watch.cache.wait_synced(60)
    started = time.monotonic()
    _create_all(api, bodies)
    if nominate and targets is not None:
        _nominate_all(api, bodies, targets)
    _log(f"{phase}: created {pods} pods in {time.monotonic() - started:.1f}s; starting its scheduler")
    load_start = [round(x, 2) for x in os.getloadavg()]
    rejected_before = _apf_rejections(cluster)
    record, _ = _spawn_scheduler(cluster, workdir, f"scheduler-{phase}", config, binary)
    spawned = time.monotonic()
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while watch.count() < pods and time.monotonic() < deadline:
        if not processes.is_alive(record):
            raise RuntimeError(f"scheduler of phase {phase} exited; see {record.log}")
        if time.monotonic() - last_report > 15:
            _log(f"{phase}: {watch.count()}/{pods} scheduled")
            last_report = time.monotonic()
        time.sleep(0.2)
    watch.cache.stop()
    scheduler_cpu = _cpu_seconds(record.pid)
    times = sorted(watch.bound.values())
    scheduled = len(times)
    span = times[-1] - times[0] if scheduled > 1 else 0.0
    result: dict[str, Any] = {
        "pods": pods,
        "scheduled": scheduled,
        "timed_out": scheduled < pods,
        "seconds_first_to_last_bind": round(span, 3),
        "pods_per_second": round((scheduled - 1) / span, 1) if span > 0 else None,
        "seconds_scheduler_start_to_last_bind": round(times[-1] - spawned, 3) if times else None,
        "scheduler_cpu_seconds_per_1000_pods": round(1000 * scheduler_cpu / scheduled, 2) if scheduled else None,
        # Phases run one after another on a shared machine: their rates compare only at similar load.
        "load_average_start_end": [load_start, [round(x, 2) for x in os.getloadavg()]],
    }
    result["api_server_bind_span"] = _bind_span(api, phase)
    result["api_server_rejected_requests"] = _counter_delta(rejected_before, _apf_rejections(cluster))
    if hints is not None:
        result["pods_with_a_preferred_node"] = hinted
        result["hints"] = _hint_outcome(bodies, watch.nodes)
    if targets is not None:
        result["honoured"] = _honoured(bodies, targets, watch.nodes)
    _log(f"{phase}: {result}")
    return result, record


def _apf_rejections(cluster: control_plane.ClusterState) -> dict[str, float]:
    """The API server's ``apiserver_flowcontrol_rejected_requests_total`` (API Priority and Fairness: requests
    answered 429), keyed ``flow_schema/priority_level/reason``."""
    with cluster.http_client(timeout=30) as client:
        text = client.get("/metrics").raise_for_status().text
    counts: dict[str, float] = {}
    for family in prometheus_parser.text_string_to_metric_families(text):
        if family.name != "apiserver_flowcontrol_rejected_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = sample.labels
                key = f"{labels.get('flow_schema')}/{labels.get('priority_level')}/{labels.get('reason')}"
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def _counter_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, int]:
    """How much each counter grew between two scrapes (the ones that grew, and their ``total``)."""
    grown = {key: int(value - before.get(key, 0.0)) for key, value in sorted(after.items())}
    grown = {key: value for key, value in grown.items() if value > 0}
    return {"total": sum(grown.values()), **grown}


def _bind_span(api: kube.Client, phase: str) -> dict[str, Any]:
    """When the API server recorded each Pod of ``phase`` scheduled (its ``PodScheduled`` condition, whole
    seconds), independently of this process's watch: the seconds from the first to the last such time, and how
    many Pods were scheduled in the last 10 % of that span (a tail of late Pods shows there)."""
    times: list[datetime.datetime] = []
    for pod in api.list_all(kube.resources.PODS, NAMESPACE, label_selector=f"bench/phase={phase}")[0]:
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "True":
                when = timestamps.parse_time(condition.get("lastTransitionTime"))
                if when is not None:
                    times.append(when)
    if not times:
        return {"pods": 0}
    first, last = min(times), max(times)
    span = (last - first).total_seconds()
    late = sum((t - first).total_seconds() > 0.9 * span for t in times) if span > 0 else 0
    return {"pods": len(times), "seconds_first_to_last": span, "pods_in_last_tenth": late}


def _add_hints(bodies: list[dict[str, Any]], hints: cluster_facts.SleeperHints) -> int:
    """Write into each body the node affinity the webhook would add at admission; return how many got a
    preferred node.  Every body here has no affinity of its own, so the hint is one ``add`` of it."""
    preferred = 0
    for body in bodies:
        found = hints.hints(NAMESPACE, pod_view.parse(body))
        if found is None:
            raise RuntimeError("the sleeper cache gave no hint (not synced?)")
        for op in placement_hints.operations(body, found):
            if op["op"] != "add" or op["path"] != "/spec/affinity":
                raise RuntimeError(f"unexpected hint operation {op!r}")
            body["spec"]["affinity"] = op["value"]
        preferred += bool(found.preferred)
    return preferred


def _hint_one_node_each(bodies: list[dict[str, Any]], targets: list[str]) -> None:
    """Write into body i the affinity the webhook writes for one certain-hot node, ``targets[i]``."""
    for body, node in zip(bodies, targets, strict=True):
        hints = placement_hints.Hints(preferred=((node, sleeper_scoring.CERTAIN_HOT_SCORE),))
        for op in placement_hints.operations(body, hints):
            if op["op"] != "add" or op["path"] != "/spec/affinity":
                raise RuntimeError(f"unexpected hint operation {op!r}")
            body["spec"]["affinity"] = op["value"]


def _nominate_all(api: kube.Client, bodies: list[dict[str, Any]], targets: list[str], workers: int = 8) -> None:
    """Set each created Pod's ``status.nominatedNodeName`` to its target node."""

    def nominate(pair: tuple[dict[str, Any], str]) -> None:
        body, node = pair
        patch = {"status": {"nominatedNodeName": node}}
        api.patch(kube.resources.PODS, body["metadata"]["name"], patch, NAMESPACE, subresource="status")

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(nominate, zip(bodies, targets, strict=True)))


def _nominate_as_webhook(bodies: list[dict[str, Any]], targets: list[str]) -> None:
    """Write into body i what the webhook writes (``nominate`` on) for one certain-hot node, ``targets[i]``:
    the hint, the gate and the ``nominated-node`` annotation."""
    for body, node in zip(bodies, targets, strict=True):
        hints = placement_hints.Hints(preferred=((node, sleeper_scoring.CERTAIN_HOT_SCORE),), nominee=node)
        for op in [*placement_hints.operations(body, hints), *placement_hints.gate_operations(body)]:
            if op["op"] != "add" or op["path"] not in ("/spec/affinity", "/spec/schedulingGates"):
                raise RuntimeError(f"unexpected operation {op!r}")
            body["spec"][op["path"].rsplit("/", 1)[1]] = op["value"]
        body["metadata"]["annotations"][keys.NOMINATED_NODE_ANNOTATION] = node


def _spawn_nominator(
    cluster: control_plane.ClusterState, workdir: pathlib.Path, name: str, workers: int | None
) -> processes.ProcessRecord:
    log = workdir / f"{name}.log"
    argv = [sys.executable, str(pathlib.Path(__file__).resolve()), f"--serve-nominator={cluster.kubeconfig}"]
    if workers:
        argv.append(f"--nominator-workers={workers}")
    record = processes.spawn(name, argv, log)
    waiting.wait_for(
        lambda: "nominator started" in (log.read_text(errors="replace") if log.exists() else ""),
        timeout=120,
        what="the nominator's caches synced",
    )
    return record


def _wait_healthy(port: int, what: str) -> None:
    waiting.wait_for(
        lambda: httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2).status_code == 200,
        timeout=60,
        what=what,
        ignore=(httpx.HTTPError,),
    )


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far (0 when it is gone)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(processes_by_role: Mapping[str, list[int]]) -> dict[str, float]:
    return {role: sum(_cpu_seconds(pid) for pid in pids) for role, pids in processes_by_role.items()}


def _rate(count: int, first: float, last: float) -> float | None:
    return round((count - 1) / (last - first), 1) if count > 1 and last > first else None


def _live_phase(
    api: kube.Client,
    cluster: control_plane.ClusterState,
    workdir: pathlib.Path,
    *,
    phase: str,
    profile: str,
    config: dict[str, Any],
    pods: int,
    targets: list[str] | None,
    burst: bool,
    timeout: float,
    nominator_workers: int | None = None,
) -> dict[str, Any]:
    """Pods created while the scheduler (and, with ``targets``, the nominator) runs; with ``burst`` the gated
    Pods are all created first and the nominator starts afterwards."""
    isc_annotation = {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: ISC}
    if targets is not None and len(targets) != pods:
        raise ValueError(f"{len(targets)} targets for {pods} pods")
    bodies = [
        _pod(f"{phase}-{i}", {"bench/phase": phase}, isc_annotation, 1, schedulerName=profile) for i in range(pods)
    ]
    if targets is not None:
        _nominate_as_webhook(bodies, targets)
    watch = BindWatch(api, phase)
    watch.cache.start()
    watch.cache.wait_synced(60)
    scheduler, port = _spawn_scheduler(cluster, workdir, f"scheduler-{phase}", config)
    nominator = None
    try:
        _wait_healthy(port, f"the scheduler of phase {phase}")
        load_start = [round(x, 2) for x in os.getloadavg()]
        control = [p.pid for p in cluster.processes if p.name in ("kube-apiserver", "etcd")]
        roles = {"scheduler": [scheduler.pid], "apiserver_and_etcd": control}
        if targets is not None and not burst:
            nominator = _spawn_nominator(cluster, workdir, f"nominator-{phase}", nominator_workers)
            roles["nominator"] = [nominator.pid]
        cpu_start = _cpu_snapshot(roles)
        created: dict[str, float] = {}
        started = time.monotonic()
        _create_all(api, bodies, created=created)
        creating = time.monotonic() - started
        _log(f"{phase}: created {pods} pods in {creating:.1f}s")
        released = None
        if burst and targets is not None:
            nominator = _spawn_nominator(cluster, workdir, f"nominator-{phase}", nominator_workers)
            released = time.monotonic()
            roles["nominator"] = [nominator.pid]
            cpu_start["nominator"] = _cpu_seconds(nominator.pid)
        deadline = time.monotonic() + timeout
        last_report = 0.0
        while watch.count() < pods and time.monotonic() < deadline:
            if not processes.is_alive(scheduler):
                raise RuntimeError(f"scheduler of phase {phase} exited; see {scheduler.log}")
            if time.monotonic() - last_report > 15:
                _log(f"{phase}: {watch.count()}/{pods} scheduled")
                last_report = time.monotonic()
            time.sleep(0.2)
        cpu_end = _cpu_snapshot(roles)
    finally:
        if nominator is not None:
            processes.stop(nominator, grace_seconds=5)
        processes.stop(scheduler, grace_seconds=5)
        watch.cache.stop()
    binds = sorted(watch.bound.values())
    scheduled = len(binds)
    result: dict[str, Any] = {
        "pods": pods,
        "scheduled": scheduled,
        "timed_out": scheduled < pods,
        "seconds_creating": round(creating, 3),
        "pods_per_second_created": round(pods / creating, 1) if creating > 0 else None,
        "seconds_first_to_last_bind": round(binds[-1] - binds[0], 3) if scheduled > 1 else 0.0,
        "pods_per_second": _rate(scheduled, binds[0], binds[-1]) if binds else None,
        "load_average_start_end": [load_start, [round(x, 2) for x in os.getloadavg()]],
        # CPU seconds each component used per 1,000 Pods over the phase (scheduler and control plane from
        # before the first create, the nominator from its start); 2 CPUs are shared by all of them.
        "cpu_seconds_per_1000_pods": {
            role: round(1000 * (cpu_end[role] - cpu_start[role]) / max(1, scheduled), 2) for role in roles
        },
    }
    if not burst and binds:
        # End to end: from the first create call to the last bind.
        result["seconds_first_create_to_last_bind"] = round(binds[-1] - started, 3)
        result["pods_per_second_end_to_end"] = round(scheduled / (binds[-1] - started), 1)
    if targets is not None:
        result["honoured"] = _honoured(bodies, targets, watch.nodes)
        lifts = sorted(watch.ungated.values())
        result["ungated"] = len(lifts)
        if burst and released is not None and lifts:
            result["nominator_lifts_per_second"] = _rate(len(lifts), lifts[0], lifts[-1])
            result["seconds_nominator_start_to_last_bind"] = round(binds[-1] - released, 3) if binds else None
        else:
            latencies = [max(0.0, watch.ungated[k] - created[k]) for k in watch.ungated if k in created]
            if latencies:
                result["gate_lift_ms"] = {
                    "p50": round(1000 * _percentile(latencies, 0.5), 1),
                    "p99": round(1000 * _percentile(latencies, 0.99), 1),
                    "max": round(1000 * max(latencies), 1),
                }
    _log(f"{phase}: {result}")
    return result


def _honoured(bodies: list[dict[str, Any]], targets: list[str], bound: Mapping[str, str]) -> dict[str, Any]:
    """How many Pods landed on the one node they were hinted at (always feasible in this phase)."""
    on_target = placed = 0
    for body, node in zip(bodies, targets, strict=True):
        got = bound.get(f"{NAMESPACE}/{body['metadata']['name']}")
        if got is None:
            continue
        placed += 1
        on_target += got == node
    return {
        "bound": placed,
        "on_hinted_node": on_target,
        "fraction_on_hinted_node": round(on_target / placed, 3) if placed else None,
    }


def _hinted_nodes(body: Mapping[str, Any]) -> list[str]:
    """The nodes a body's preferred terms name, best first."""
    terms = (
        ((body["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
            "preferredDuringSchedulingIgnoredDuringExecution"
        )
    ) or []
    return [value for term in terms for field in term["preference"]["matchFields"] for value in field["values"]]


def _hint_outcome(bodies: list[dict[str, Any]], bound: Mapping[str, str]) -> dict[str, Any]:
    """How the hints written at admission fared by scheduling time (staleness).

    A hint can only be outvoted by the other plugins if all of its nodes have
    become infeasible, since one hint point outweighs them all: a Pod that
    lands off its hinted nodes found every hinted node full when it was
    scheduled (its hint was stale).  A Pod on a lower-ranked hinted node found
    the better ones full.
    """
    hinted = on_best = on_other_hinted = off_hint = 0
    for body in bodies:
        names = _hinted_nodes(body)
        node = bound.get(f"{NAMESPACE}/{body['metadata']['name']}")
        if not names or node is None:
            continue
        hinted += 1
        if node == names[0]:
            on_best += 1
        elif node in names:
            on_other_hinted += 1
        else:
            off_hint += 1
    return {
        "hinted_and_bound": hinted,
        "on_best_hinted_node": on_best,
        "on_another_hinted_node": on_other_hinted,
        "off_all_hinted_nodes": off_hint,
        "stale_fraction": round(off_hint / hinted, 3) if hinted else None,
    }


def _hint_source(api: kube.Client) -> cluster_facts.SleeperHints:
    """The webhook's hint source (gpu-allocation lowest-index, as simnode allocates), synced."""
    cache = sleeper_cache.SleeperCache(api, namespace=NAMESPACE, gpu_map_namespace="default")
    cache.start()
    pending = cache.wait_synced(120)
    if pending:
        raise RuntimeError(f"sleeper cache not synced: {pending!r}")
    policy = sleeper_scoring.Policy(allocation=sleeper_scoring.Allocation.LOWEST_INDEX)
    return cluster_facts.SleeperHints(cache, policy, limit=16)


def _delete_phase(api: kube.Client, phase: str) -> None:
    api.request(
        "DELETE",
        kube.resources.PODS.path(NAMESPACE),
        query={"labelSelector": f"bench/phase={phase}", "gracePeriodSeconds": 0},
    )
    waiting.wait_for(
        lambda: (
            not api.list_page(kube.resources.PODS, NAMESPACE, label_selector=f"bench/phase={phase}", limit=1)["items"]
        ),
        timeout=300,
        what=f"pods of phase {phase} deleted",
        interval=1.0,
    )


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _direct_latency(url: str, nodes: list[str], calls: int) -> dict[str, Any]:
    pod = _pod("probe", {}, {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: ISC}, 1)
    pod["metadata"]["namespace"] = NAMESPACE
    body = json.dumps({"Pod": pod, "NodeNames": nodes}).encode()
    out: dict[str, Any] = {"nodes_per_call": len(nodes), "calls": calls}
    with httpx.Client(base_url=url, timeout=10) as client:
        for verb in ("filter", "prioritize"):
            samples = []
            for _ in range(calls):
                begin = time.perf_counter()
                response = client.post(f"/{verb}", content=body, headers={"content-type": "application/json"})
                samples.append(time.perf_counter() - begin)
                response.raise_for_status()
            out[verb] = {
                "p50_ms": round(1000 * statistics.median(samples), 2),
                "p99_ms": round(1000 * _percentile(samples, 0.99), 2),
                "max_ms": round(1000 * max(samples), 2),
            }
    return out


def _server_histogram(url: str) -> dict[str, Any]:
    """Per verb: calls and the histogram bucket that holds the 99th percentile (an upper bound)."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("fma_extender_request_duration_seconds_bucket{"):
            labels, value = line[line.index("{") + 1 : line.index("}")], float(line.rsplit(" ", 1)[1])
            fields = dict(item.split("=", 1) for item in labels.split(","))
            bound = float(fields["le"].strip('"').replace("+Inf", "inf"))
            buckets.setdefault(fields["verb"].strip('"'), []).append((bound, value))
    result = {}
    for verb, pairs in buckets.items():
        pairs.sort()
        total = pairs[-1][1]
        p99 = next((bound for bound, count in pairs if count >= 0.99 * total), float("inf"))
        result[verb] = {"calls": int(total), "p99_le_ms": round(1000 * p99, 1)}
    return result


@contextlib.contextmanager
def _cluster(workdir: pathlib.Path, nodes: int, gpus: int) -> Iterator[tuple[control_plane.ClusterState, list[str]]]:
    state_dir = workdir / "cluster"
    _log("starting the control plane")
    cluster = control_plane.up(control_plane.ClusterOptions(state_dir=state_dir, apiserver_port=None))
    options = simnode_mod.SimnodeOptions(
        nodes=0, status_only_nodes=nodes, gpus_per_node=gpus, gpu_map_namespace="default", node_prefix="bench"
    )
    record = None
    try:
        _log(f"starting simnode with {nodes} status-only nodes")
        record = simnode_mod.spawn(cluster, options, workdir / "simnode.log")
        simnode_mod.wait_ready(cluster, options, record, timeout=900)
        yield cluster, simnode_mod.node_names(options)
    finally:
        if record is not None:
            simnode_mod.stop(record, simnode_mod.state_dir_of(cluster, options), grace_seconds=10)
        control_plane.down(state_dir, grace_seconds=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--gpus-per-node", type=int, default=4)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--sleepers", type=int, default=100)
    parser.add_argument("--calls", type=int, default=200, help="direct extender calls per verb")
    parser.add_argument("--phase-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=pathlib.Path, default=RESULT)
    parser.add_argument(
        "--no-trivial",
        dest="trivial",
        action="store_false",
        help="skip the phase with a trivial extender (pass all, score 0) in place of fma-extender",
    )
    parser.add_argument(
        "--no-filter-phase",
        dest="no_filter_phase",
        action="store_false",
        help="skip the phase with the FMA configuration minus filterVerb (prioritize only)",
    )
    parser.add_argument(
        "--no-hints",
        dest="hints",
        action="store_false",
        help="skip the placement-hints phases (hints+extender, then hints without an extender)",
    )
    parser.add_argument(
        "--no-default-full",
        dest="default_full",
        action="store_false",
        help="skip the stock configuration with percentageOfNodesToScore: 100",
    )
    parser.add_argument(
        "--no-honour",
        dest="honour",
        action="store_false",
        help="skip the phases measuring whether a one-node hint is honoured, scoring every node and sampled",
    )
    parser.add_argument(
        "--no-nominated",
        dest="nominated",
        action="store_false",
        help="skip the experiment with status.nominatedNodeName set to the hinted node",
    )
    parser.add_argument(
        "--no-nominate",
        dest="nominate",
        action="store_false",
        help="skip the nominate phases (default-live, nominate-live, nominate-burst)",
    )
    parser.add_argument(
        "--plugin",
        action="store_true",
        help="run default and the NominatedNode plugin phases (plugin, plugin-fallback-*) only",
    )
    parser.add_argument(
        "--with-plugin",
        action="store_true",
        help="after the other phases, also the NominatedNode plugin phases (as --plugin runs them)",
    )
    parser.add_argument(
        "--extender-rounds",
        type=int,
        default=0,
        metavar="N",
        help="run default (and default-full) and N alternating fma-R/trivial-R pairs only (the extender against "
        "the do-nothing one)",
    )
    parser.add_argument("--fallback-pods", type=int, default=200, help="Pods per plugin fallback phase")
    parser.add_argument(
        "--plugin-rounds", type=int, default=1, help="pairs of default/plugin phases, alternating (with --plugin)"
    )
    parser.add_argument(
        "--max-binds-in-flight",
        type=_positive_ints,
        default=[scheduler_config.DEFAULT_MAX_BINDS_IN_FLIGHT],
        metavar="N[,N...]",
        help="the plugin phases' PacedBinder maxInFlight (default: the shipped "
        f"{scheduler_config.DEFAULT_MAX_BINDS_IN_FLIGHT}); each further value adds plugin-max<N>[-R] phases",
    )
    parser.add_argument(
        "--plugin-unpaced",
        action="store_true",
        help="after each plugin phase, the same with kube-scheduler's DefaultBinder (plugin-unpaced[-N])",
    )
    parser.add_argument("--serve-nominator", metavar="KUBECONFIG", help=argparse.SUPPRESS)
    parser.add_argument(
        "--nominator-workers", type=int, help="the nominator's worker threads (default: the controllers' own)"
    )
    parser.add_argument("--honour-pods", type=int, default=200, help="Pods (distinct hinted nodes) per honour phase")
    parser.add_argument("--serve-trivial", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-sampled",
        dest="sampled",
        action="store_false",
        help="skip the third phase: the FMA configuration with the scheduler's default node sampling",
    )
    args = parser.parse_args(argv)
    if args.serve_trivial:
        return _serve_trivial(args.serve_trivial)
    if args.serve_nominator:
        return _serve_nominator(args.serve_nominator, args.nominator_workers)
    rng = random.Random(args.seed)
    results: dict[str, Any] = {
        "benchmark": "scheduler_throughput",
        "run": run_record.start(),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": _cpus()},
        "parameters": {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()},
    }
    with (
        tempfile.TemporaryDirectory(prefix="fma-bench-") as tmp,
        _cluster(pathlib.Path(tmp), args.nodes, args.gpus_per_node) as (cluster, nodes),
    ):
        workdir = pathlib.Path(tmp)
        api = kube.connect(str(cluster.kubeconfig))
        extender = None
        try:
            _install(api)
            _sleepers(api, nodes, args.sleepers, rng)
            base = {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "clientConnection": {"kubeconfig": str(cluster.state_dir / "scheduler.kubeconfig")},
                "leaderElection": {"leaderElect": False},
                "profiles": [{"schedulerName": DEFAULT_PROFILE}],
            }
            default_config = control_plane.merge_config(base, QPS_OVERLAY)
            default, default_record = _phase(
                api,
                cluster,
                workdir,
                phase="default",
                profile=DEFAULT_PROFILE,
                config=default_config,
                pods=args.pods,
                timeout=args.phase_timeout,
            )
            processes.stop(default_record, grace_seconds=5)
            _delete_phase(api, "default")
            if args.plugin:
                results["default"] = default
                results.update(_plugin_phases(api, cluster, workdir, nodes, default_config, args))
                return _finish_plugin(results, args)
            if args.default_full:
                full, full_record = _phase(
                    api,
                    cluster,
                    workdir,
                    phase="default-full",
                    profile=DEFAULT_PROFILE,
                    config=control_plane.merge_config(default_config, {"percentageOfNodesToScore": 100}),
                    pods=args.pods,
                    timeout=args.phase_timeout,
                )
                processes.stop(full_record, grace_seconds=5)
                _delete_phase(api, "default-full")
                results["default_full"] = full

            if args.extender_rounds:
                results["default"] = default
                results.update(_extender_rounds(api, cluster, workdir, args))
                return _finish(results, args, lambda: None)
            extender, url = _start_extender(cluster, workdir)
            fma_config = _extender_config(cluster, url)
            fma, fma_record = _phase(
                api,
                cluster,
                workdir,
                phase="fma",
                profile=scheduler_config.SCHEDULER_NAME,
                config=fma_config,
                pods=args.pods,
                timeout=args.phase_timeout,
            )
            processes.stop(fma_record, grace_seconds=5)
            fma["extender_server_side"] = _server_histogram(url)
            _log("measuring direct extender calls")
            results["extender_direct"] = _direct_latency(url, nodes, args.calls)
            _delete_phase(api, "fma")
            if args.sampled:
                sampled_config = dict(fma_config)
                sampled_config.pop("percentageOfNodesToScore", None)
                sampled, sampled_record = _phase(
                    api,
                    cluster,
                    workdir,
                    phase="fma-sampled",
                    profile=scheduler_config.SCHEDULER_NAME,
                    config=sampled_config,
                    pods=args.pods,
                    timeout=args.phase_timeout,
                )
                processes.stop(sampled_record, grace_seconds=5)
                _delete_phase(api, "fma-sampled")
                results["fma_sampled"] = sampled
            if args.no_filter_phase:
                unfiltered_config = dict(fma_config)
                unfiltered_config["extenders"] = [
                    {k: v for k, v in entry.items() if k != "filterVerb"} for entry in fma_config["extenders"]
                ]
                unfiltered, unfiltered_record = _phase(
                    api,
                    cluster,
                    workdir,
                    phase="fma-no-filter",
                    profile=scheduler_config.SCHEDULER_NAME,
                    config=unfiltered_config,
                    pods=args.pods,
                    timeout=args.phase_timeout,
                )
                processes.stop(unfiltered_record, grace_seconds=5)
                _delete_phase(api, "fma-no-filter")
                results["fma_no_filter"] = unfiltered
            if args.hints:
                hint_source = _hint_source(api)
                try:
                    kubeconfig = str(cluster.state_dir / "scheduler.kubeconfig")
                    both_config = control_plane.merge_config(
                        scheduler_config.render(
                            url, kubeconfig=kubeconfig, leader_election=False, placement="hints+extender"
                        ),
                        QPS_OVERLAY,
                    )
                    both, both_record = _phase(
                        api,
                        cluster,
                        workdir,
                        phase="hints-extender",
                        profile=scheduler_config.SCHEDULER_NAME,
                        config=both_config,
                        pods=args.pods,
                        timeout=args.phase_timeout,
                        hints=hint_source,
                    )
                    processes.stop(both_record, grace_seconds=5)
                    _delete_phase(api, "hints-extender")
                    results["hints_extender"] = both
                    # The hints phase has no extender: stop the real one so it does not compete for the CPUs.
                    processes.stop(extender, grace_seconds=5)
                    extender = None
                    hints_config = control_plane.merge_config(
                        scheduler_config.render(None, kubeconfig=kubeconfig, leader_election=False, placement="hints"),
                        QPS_OVERLAY,
                    )
                    hinted, hints_record = _phase(
                        api,
                        cluster,
                        workdir,
                        phase="hints",
                        profile=scheduler_config.SCHEDULER_NAME,
                        config=hints_config,
                        pods=args.pods,
                        timeout=args.phase_timeout,
                        hints=hint_source,
                    )
                    processes.stop(hints_record, grace_seconds=5)
                    _delete_phase(api, "hints")
                    results["hints"] = hinted
                    if args.nominate:
                        spread = random.Random(args.seed).sample(nodes, len(nodes))
                        live_targets = [spread[i % len(spread)] for i in range(args.pods)]
                        for phase, profile, config, targets, burst in (
                            ("default-live", DEFAULT_PROFILE, default_config, None, False),
                            ("nominate-live", scheduler_config.SCHEDULER_NAME, hints_config, live_targets, False),
                            ("nominate-burst", scheduler_config.SCHEDULER_NAME, hints_config, live_targets, True),
                        ):
                            results[phase.replace("-", "_")] = _live_phase(
                                api,
                                cluster,
                                workdir,
                                phase=phase,
                                profile=profile,
                                config=config,
                                pods=args.pods,
                                targets=targets,
                                burst=burst,
                                timeout=args.phase_timeout,
                                nominator_workers=args.nominator_workers,
                            )
                            _delete_phase(api, phase)
                    if args.sampled:
                        sampled_hints_config = dict(hints_config)
                        sampled_hints_config.pop("percentageOfNodesToScore", None)
                        sampled_hints, sampled_hints_record = _phase(
                            api,
                            cluster,
                            workdir,
                            phase="hints-sampled",
                            profile=scheduler_config.SCHEDULER_NAME,
                            config=sampled_hints_config,
                            pods=args.pods,
                            timeout=args.phase_timeout,
                            hints=hint_source,
                        )
                        processes.stop(sampled_hints_record, grace_seconds=5)
                        _delete_phase(api, "hints-sampled")
                        results["hints_sampled"] = sampled_hints
                    if args.honour:
                        targets = rng.sample(nodes, min(args.honour_pods, len(nodes)))
                        sampled_hints_config = dict(hints_config)
                        sampled_hints_config.pop("percentageOfNodesToScore", None)
                        for phase, config in (("honour-full", hints_config), ("honour-sampled", sampled_hints_config)):
                            honour, honour_record = _phase(
                                api,
                                cluster,
                                workdir,
                                phase=phase,
                                profile=scheduler_config.SCHEDULER_NAME,
                                config=config,
                                pods=len(targets),
                                timeout=args.phase_timeout,
                                targets=targets,
                            )
                            processes.stop(honour_record, grace_seconds=5)
                            _delete_phase(api, phase)
                            results[phase.replace("-", "_")] = honour
                    if args.nominated:
                        spread = rng.sample(nodes, len(nodes))
                        honour_targets = rng.sample(nodes, min(args.honour_pods, len(nodes)))
                        nominated_targets = [spread[i % len(spread)] for i in range(args.pods)]
                        sampled_hints_config = dict(hints_config)
                        sampled_hints_config.pop("percentageOfNodesToScore", None)
                        for phase, phase_targets in (
                            ("nominated", nominated_targets),
                            ("honour-nominated", honour_targets),
                        ):
                            nominated, nominated_record = _phase(
                                api,
                                cluster,
                                workdir,
                                phase=phase,
                                profile=scheduler_config.SCHEDULER_NAME,
                                config=sampled_hints_config,
                                pods=len(phase_targets),
                                timeout=args.phase_timeout,
                                targets=phase_targets,
                                nominate=True,
                            )
                            processes.stop(nominated_record, grace_seconds=5)
                            _delete_phase(api, phase)
                            results[phase.replace("-", "_")] = nominated
                finally:
                    hint_source.cache.stop()
            if args.trivial:
                # The do-nothing phase must not share the CPUs with the real extender.
                if extender is not None:
                    processes.stop(extender, grace_seconds=5)
                extender = None
                trivial_extender, trivial_url = _start_trivial(workdir)
                try:
                    trivial_config = _extender_config(cluster, trivial_url)
                    trivial, trivial_record = _phase(
                        api,
                        cluster,
                        workdir,
                        phase="trivial",
                        profile=scheduler_config.SCHEDULER_NAME,
                        config=trivial_config,
                        pods=args.pods,
                        timeout=args.phase_timeout,
                    )
                    processes.stop(trivial_record, grace_seconds=5)
                    _delete_phase(api, "trivial")
                    results["trivial_extender"] = trivial
                finally:
                    processes.stop(trivial_extender, grace_seconds=5)
            if args.with_plugin:
                if extender is not None:
                    processes.stop(extender, grace_seconds=5)
                extender = None
                results.update(_plugin_phases(api, cluster, workdir, nodes, default_config, args))
        finally:
            if extender is not None:
                processes.stop(extender, grace_seconds=5)
            api.close()
    results["default"] = default
    results["fma"] = fma
    ratio = (
        fma["pods_per_second"] / default["pods_per_second"]
        if fma["pods_per_second"] and default["pods_per_second"]
        else None
    )
    results["ratio_fma_to_default"] = round(ratio, 3) if ratio is not None else None
    for name in (
        "default_full",
        "fma_sampled",
        "fma_no_filter",
        "trivial_extender",
        "hints_extender",
        "hints",
        "hints_sampled",
        "nominated",
    ):
        row = results.get(name)
        if row and row["pods_per_second"] and default["pods_per_second"]:
            results[f"ratio_{name}_to_default"] = round(row["pods_per_second"] / default["pods_per_second"], 3)
    live = results.get("default_live") or {}
    for name in ("nominate_live",):
        row = results.get(name) or {}
        if row.get("pods_per_second_end_to_end") and live.get("pods_per_second_end_to_end"):
            results[f"ratio_{name}_to_default_live_end_to_end"] = round(
                row["pods_per_second_end_to_end"] / live["pods_per_second_end_to_end"], 3
            )
        if row.get("pods_per_second") and live.get("pods_per_second"):
            results[f"ratio_{name}_to_default_live"] = round(row["pods_per_second"] / live["pods_per_second"], 3)
    released = results.get("nominate_burst") or {}
    if released.get("pods_per_second") and default["pods_per_second"]:
        # Both with every Pod pending when scheduling starts (gated here, released by the nominator).
        results["ratio_nominate_burst_to_default"] = round(released["pods_per_second"] / default["pods_per_second"], 3)
    full = results.get("default_full") or {}
    if full.get("pods_per_second") and (results.get("hints") or {}).get("pods_per_second"):
        # The hints' own cost: hints against the stock scheduler scoring every node as the hints profile does.
        results["ratio_hints_to_default_full"] = round(results["hints"]["pods_per_second"] / full["pods_per_second"], 3)
    trivial = results.get("trivial_extender") or {}
    if trivial.get("pods_per_second") and fma["pods_per_second"]:
        # The extender's own cost: FMA against the do-nothing extender (target >= 0.9).
        results["ratio_fma_to_trivial_extender"] = round(fma["pods_per_second"] / trivial["pods_per_second"], 3)
    if args.with_plugin:
        results.update(_plugin_ratios(results, args.plugin_rounds))
    results["run"] = run_record.finish(results["run"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)
    if args.with_plugin:
        _print_plugin_rows(results, args.plugin_rounds)
    return 0


def _start_extender(cluster: control_plane.ClusterState, workdir: pathlib.Path) -> tuple[processes.ProcessRecord, str]:
    """Start the real ``fma-extender`` on a free loopback port; return its record and URL once healthy."""
    port = processes.free_port()
    url = f"http://127.0.0.1:{port}"
    record = processes.spawn(
        "fma-extender",
        [
            sys.executable,
            "-m",
            "extender",
            f"--port={port}",
            f"--kubeconfig={cluster.kubeconfig}",
            "--gpu-map-namespace=default",
            "--log-level=warning",
        ],
        workdir / "extender.log",
    )
    _wait_serving(record, url, "extender", 120)
    return record, url


def _start_trivial(workdir: pathlib.Path) -> tuple[processes.ProcessRecord, str]:
    """Start this file's do-nothing extender on a free loopback port; return its record and URL once healthy."""
    port = processes.free_port()
    url = f"http://127.0.0.1:{port}"
    record = processes.spawn(
        "trivial-extender",
        [sys.executable, str(pathlib.Path(__file__).resolve()), f"--serve-trivial={port}"],
        workdir / "trivial-extender.log",
    )
    _wait_serving(record, url, "trivial extender", 60)
    return record, url


def _wait_serving(record: processes.ProcessRecord, url: str, what: str, timeout: float) -> None:
    try:
        waiting.wait_for(
            lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200,
            timeout=timeout,
            what=f"{what} healthy",
            ignore=(httpx.HTTPError,),
        )
    except BaseException:
        processes.stop(record, grace_seconds=5)
        raise


def _extender_config(cluster: control_plane.ClusterState, url: str) -> dict[str, Any]:
    """The packaged FMA configuration (extender at ``url``) with the benchmark's client rate."""
    return control_plane.merge_config(
        scheduler_config.render(url, kubeconfig=str(cluster.state_dir / "scheduler.kubeconfig"), leader_election=False),
        QPS_OVERLAY,
    )


def _extender_rounds(
    api: kube.Client, cluster: control_plane.ClusterState, workdir: pathlib.Path, args: argparse.Namespace
) -> dict[str, Any]:
    """``--extender-rounds`` N pairs of ``fma-R``/``trivial-R`` phases: the real extender against the do-nothing
    one, each phase with only its own extender running, the order alternating per round (fma first in odd
    rounds) so that a drift of the machine's load does not favour either; ratios per round and their median."""
    results: dict[str, Any] = {}
    for round_ in range(1, args.extender_rounds + 1):
        order = ("fma", "trivial") if round_ % 2 else ("trivial", "fma")
        for kind in order:
            phase = f"{kind}-{round_}"
            record, url = _start_extender(cluster, workdir) if kind == "fma" else _start_trivial(workdir)
            try:
                result, scheduler = _phase(
                    api,
                    cluster,
                    workdir,
                    phase=phase,
                    profile=scheduler_config.SCHEDULER_NAME,
                    config=_extender_config(cluster, url),
                    pods=args.pods,
                    timeout=args.phase_timeout,
                )
                processes.stop(scheduler, grace_seconds=5)
            finally:
                processes.stop(record, grace_seconds=5)
            _delete_phase(api, phase)
            results[phase.replace("-", "_")] = result
    ratios = _paired_ratios(results, [(f"trivial_{r}", f"fma_{r}") for r in range(1, args.extender_rounds + 1)])
    if ratios:
        results["ratios_fma_to_trivial_extender_per_round"] = ratios
        results["ratio_fma_to_trivial_extender_median"] = statistics.median(ratios)
    for r in range(1, args.extender_rounds + 1):
        for kind in ("fma", "trivial"):
            row = results[f"{kind}_{r}"]
            print(f"{kind}-{r:<3} {row['scheduled']:>5}/{row['pods']:<5} {row['pods_per_second']!s:>8} Pods/s")
    print(f"ratio fma/trivial extender per round: {ratios}")
    return results


def _plugin_phases(
    api: kube.Client,
    cluster: control_plane.ClusterState,
    workdir: pathlib.Path,
    nodes: list[str],
    default_config: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """``plugin``, then ``--plugin-rounds`` - 1 more pairs ``default-N``/``plugin-N`` (the stock and the plugin
    scheduler alternating), then the two fallbacks (module docstring); the FMA scheduler is built first if
    needed."""
    started = time.monotonic()
    binary = binaries.ensure_fma_scheduler()
    results: dict[str, Any] = {"fma_scheduler_ready_seconds": round(time.monotonic() - started, 1)}
    kubeconfig = str(cluster.state_dir / "scheduler.kubeconfig")
    variants = _plugin_variants(args)
    configs = {
        variant: control_plane.merge_config(
            scheduler_config.render(
                None,
                kubeconfig=kubeconfig,
                leader_election=False,
                placement="hints",
                percentage_of_nodes_to_score=0,
                nominated_node_plugin=True,
                max_binds_in_flight=max_in_flight,
            ),
            QPS_OVERLAY,
        )
        for variant, max_in_flight in variants.items()
    }
    spread = random.Random(args.seed).sample(nodes, len(nodes))
    targets = [spread[i % len(spread)] for i in range(args.pods)]
    full_node, tainted_node = spread[0], spread[1]
    plan: list[tuple[str, str | None, list[str] | None]] = []
    for round_ in range(1, args.plugin_rounds + 1):
        suffix = "" if round_ == 1 else f"-{round_}"
        if round_ > 1:
            plan.append((f"default{suffix}", None, None))
        plan += [(f"{variant}{suffix}", variant, targets) for variant in variants]
    plan += [
        ("plugin-fallback-full", "plugin", [full_node] * args.fallback_pods),
        ("plugin-fallback-tainted", "plugin", [tainted_node] * args.fallback_pods),
    ]
    results["plugin_max_binds_in_flight"] = dict(variants)
    for phase, variant, phase_targets in plan:
        if phase == "plugin-fallback-full":
            _fill_node(api, full_node, args.gpus_per_node)
        if phase == "plugin-fallback-tainted":
            _taint_node(api, tainted_node)
        stock = phase_targets is None
        result, record = _phase(
            api,
            cluster,
            workdir,
            phase=phase,
            profile=DEFAULT_PROFILE if stock else scheduler_config.SCHEDULER_NAME,
            config=default_config if variant is None else configs[variant],
            pods=args.pods if phase_targets is None else len(phase_targets),
            timeout=args.phase_timeout,
            targets=phase_targets,
            annotate=not stock,
            binary=None if stock else binary,
        )
        processes.stop(record, grace_seconds=5)
        result["pods_with_a_failed_scheduling_event"] = _failed_scheduling(api, phase)
        _delete_phase(api, phase)
        results[phase.replace("-", "_")] = result
    _delete_phase(api, "plugin-filler")
    return results


def _failed_scheduling(api: kube.Client, phase: str) -> int:
    """How many Pods of ``phase`` have a FailedScheduling event (a cycle that found no node)."""
    names: set[str] = set()
    continue_token: str | None = None
    for _ in range(1000):
        page = api.list_page(
            kube.resources.EVENTS,
            NAMESPACE,
            field_selector="reason=FailedScheduling",
            limit=500,
            continue_token=continue_token,
        )
        for event in page["items"]:
            name = str((event.get("involvedObject") or {}).get("name", ""))
            if name.startswith(f"{phase}-") and name[len(phase) + 1 :].isdigit():
                names.add(name)
        continue_token = (page.get("metadata") or {}).get("continue") or None
        if continue_token is None:
            break
    return len(names)


def _fill_node(api: kube.Client, node: str, gpus: int) -> None:
    """Take every GPU of ``node`` with one Pod bound there directly (no scheduler involved)."""
    body = _pod("plugin-filler-0", {"bench/phase": "plugin-filler"}, {}, gpus, nodeName=node)
    _create_all(api, [body])


def _taint_node(api: kube.Client, node: str) -> None:
    """Give ``node`` a NoSchedule taint that no benchmark Pod tolerates."""
    api.patch(
        kube.resources.NODES,
        node,
        {"spec": {"taints": [{"key": "bench/fallback", "value": "tainted", "effect": "NoSchedule"}]}},
    )


def _positive_ints(text: str) -> list[int]:
    """``N[,N...]``: one or more integers >= 1 (argparse type)."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N[,N...] with integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"every value must be at least 1, got {text!r}")
    return values


def _plugin_variants(args: argparse.Namespace) -> dict[str, int | None]:
    """Phase name prefix -> PacedBinder maxInFlight (None: DefaultBinder) of each plugin variant the run has:
    ``plugin`` (the first ``--max-binds-in-flight``), ``plugin-max<N>`` (the others), ``plugin-unpaced``."""
    first, *others = args.max_binds_in_flight
    variants: dict[str, int | None] = {"plugin": first}
    variants.update({f"plugin-max{n}": n for n in others})
    if args.plugin_unpaced:
        variants["plugin-unpaced"] = None
    return variants


def _result_variants(results: Mapping[str, Any]) -> list[str]:
    """The result-key prefixes of the plugin variants the run has (``plugin`` first), as ``_plugin_phases``
    recorded them."""
    return [name.replace("-", "_") for name in results["plugin_max_binds_in_flight"]]


def _round_key(prefix: str, round_: int) -> str:
    """The result key of phase ``prefix`` in round ``round_`` (1-based; round 1 has no suffix)."""
    return prefix if round_ == 1 else f"{prefix}_{round_}"


def _plugin_pairs(rounds: int, variant: str = "plugin") -> list[tuple[str, str]]:
    """The (stock, ``variant``) result keys of each round of the plugin phases."""
    return [(_round_key("default", r), _round_key(variant, r)) for r in range(1, rounds + 1)]


def _paired_ratios(results: Mapping[str, Any], pairs: list[tuple[str, str]]) -> list[float]:
    """b / a Pods/s for each (a, b) pair of result keys where both phases have a rate."""
    return [
        round(results[b]["pods_per_second"] / results[a]["pods_per_second"], 3)
        for a, b in pairs
        if (results.get(a) or {}).get("pods_per_second") and (results.get(b) or {}).get("pods_per_second")
    ]


def _plugin_ratios(results: Mapping[str, Any], rounds: int) -> dict[str, Any]:
    """plugin / stock Pods/s per round (the first round against the run's first ``default`` phase), and the
    same for every other plugin variant the run has."""
    ratios: dict[str, Any] = {}
    for variant in _result_variants(results):
        per_round = _paired_ratios(results, _plugin_pairs(rounds, variant))
        if per_round:
            ratios[f"ratio_{variant}_to_default"] = per_round[0]
            ratios[f"ratios_{variant}_to_default_per_round"] = per_round
            ratios[f"ratio_{variant}_to_default_median"] = statistics.median(per_round)
    return ratios


def _finish_plugin(results: dict[str, Any], args: argparse.Namespace) -> int:
    """Ratios, the run record and the JSON file of a ``--plugin`` run."""
    results.update(_plugin_ratios(results, args.plugin_rounds))
    return _finish(results, args, lambda: _print_plugin_rows(results, args.plugin_rounds))


def _finish(results: dict[str, Any], args: argparse.Namespace, show: Callable[[], None]) -> int:
    """The run record and the JSON file of a run that stops early (``--plugin``, ``--extender-rounds``)."""
    results["run"] = run_record.finish(results["run"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    show()
    return 0


def _print_plugin_rows(results: Mapping[str, Any], rounds: int) -> None:
    variants = _result_variants(results)
    names = [_round_key(prefix, r) for r in range(1, rounds + 1) for prefix in ("default", *variants)]
    for name in [*names, "plugin_fallback_full", "plugin_fallback_tainted"]:
        row = results.get(name)
        if row is None:
            continue
        rejected = (row.get("api_server_rejected_requests") or {}).get("total")
        print(
            f"{name:26} {row['scheduled']:>5}/{row['pods']:<5} {row['pods_per_second']!s:>8} Pods/s  "
            f"start->last bind {row['seconds_scheduler_start_to_last_bind']}s  honoured {row.get('honoured')}  "
            f"429s {rejected}"
        )
    for variant in variants:
        if f"ratios_{variant}_to_default_per_round" in results:
            print(f"ratio {variant}/default per round: {results[f'ratios_{variant}_to_default_per_round']}")


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _print_table(results: Mapping[str, Any]) -> None:
    p = results["parameters"]
    print(f"\nScheduling {p['pods']} one-GPU Pods on {p['nodes']} status-only nodes ({p['sleepers']} sleepers)")
    print(f"{'scheduler':<34}{'scheduled':>10}{'seconds':>10}{'pods/s':>10}")
    rows = (
        ("default", "default (stock kube-scheduler)"),
        ("default_full", "  same, every node scored"),
        ("fma", "fma-scheduler + fma-extender"),
        ("fma_sampled", "  same, default node sampling"),
        ("fma_no_filter", "  same, prioritize only"),
        ("trivial_extender", "  same config, trivial extender"),
        ("hints_extender", "hints + fma-extender"),
        ("hints", "hints, no extender"),
        ("hints_sampled", "  same, default node sampling"),
        ("nominated", "one-node hints + nominatedNodeName"),
    )
    for name, label in rows:
        if name not in results:
            continue
        row = results[name]
        print(f"{label:<34}{row['scheduled']:>10}{row['seconds_first_to_last_bind']:>10}{row['pods_per_second']!s:>10}")
    print(f"ratio fma/default: {results['ratio_fma_to_default']} (target >= 0.5)")
    if "ratio_fma_sampled_to_default" in results:
        print(f"ratio fma (default node sampling)/default: {results['ratio_fma_sampled_to_default']}")
    if "ratio_fma_no_filter_to_default" in results:
        print(f"ratio fma (prioritize only)/default: {results['ratio_fma_no_filter_to_default']}")
    if "ratio_trivial_extender_to_default" in results:
        print(f"ratio trivial extender/default: {results['ratio_trivial_extender_to_default']}")
    if "ratio_hints_to_default" in results:
        print(f"ratio hints/default: {results['ratio_hints_to_default']} (target >= 0.9)")
    if "ratio_hints_extender_to_default" in results:
        print(f"ratio hints+extender/default: {results['ratio_hints_extender_to_default']}")
    if "ratio_hints_to_default_full" in results:
        print(f"ratio hints/default, both scoring every node: {results['ratio_hints_to_default_full']}")
    if "nominate_live" in results:
        print(f"\n{'live (scheduler running during creation)':<42}{'bound':>7}{'e2e pods/s':>12}{'sched pods/s':>14}")
        for name, label in (
            ("default_live", "default (stock), no gate"),
            ("nominate_live", "hints + nominate (gate, nominator)"),
            ("nominate_burst", "hints + nominate, gated Pods released"),
        ):
            row = results.get(name)
            if row:
                e2e = row.get("pods_per_second_end_to_end")
                print(f"{label:<42}{row['scheduled']:>7}{e2e!s:>12}{row['pods_per_second']!s:>14}")
        for name in ("nominate_live", "nominate_burst"):
            row = results.get(name) or {}
            if "honoured" in row:
                print(f"{name}: {row['honoured']['on_hinted_node']}/{row['honoured']['bound']} on the nominated node")
            if "gate_lift_ms" in row:
                print(f"{name}: gate lifted after create, ms: {row['gate_lift_ms']}")
            if "nominator_lifts_per_second" in row:
                print(f"{name}: nominator lifts/s {row['nominator_lifts_per_second']}")
        for name in ("default_live", "nominate_live", "nominate_burst"):
            if name in results:
                print(f"{name}: CPU s per 1,000 Pods {results[name]['cpu_seconds_per_1000_pods']}")
        for key in (
            "ratio_nominate_live_to_default_live_end_to_end",
            "ratio_nominate_live_to_default_live",
            "ratio_nominate_burst_to_default",
        ):
            if key in results:
                print(f"{key}: {results[key]}")
    for name in ("honour_full", "honour_sampled", "honour_nominated"):
        if name in results:
            honoured = results[name]["honoured"]
            print(f"{name}: {honoured['on_hinted_node']}/{honoured['bound']} Pods on their one hinted node")
    trivial = results.get("trivial_extender") or {}
    if trivial.get("pods_per_second") and results["fma"]["pods_per_second"]:
        print(f"ratio fma/trivial extender: {round(results['fma']['pods_per_second'] / trivial['pods_per_second'], 3)}")
    direct = results["extender_direct"]
    print(f"\nExtender per call at {direct['nodes_per_call']} nodes ({direct['calls']} calls, loopback HTTP):")
    print(f"{'verb':<12}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for verb in ("filter", "prioritize"):
        row = direct[verb]
        print(f"{verb:<12}{row['p50_ms']:>10}{row['p99_ms']:>10}{row['max_ms']:>10}")
    for verb, row in results["fma"].get("extender_server_side", {}).items():
        print(f"server-side during the run, {verb}: {row['calls']} calls, p99 <= {row['p99_le_ms']} ms")


if __name__ == "__main__":
    raise SystemExit(main())
