"""``kubectl fma`` against a cluster in a known state, and the dashboard's and rules' metrics in live scrapes.

The state is built with the dual-pods harness (tests/integration/dpc): the real
``fma-controllers``, real launchers running the engine simulator on simnode's
two nodes x two GPUs.  ``test_status_and_explain_of_a_known_state`` makes

- node 0: one launcher holding two sleeping instances (ISC a, then ISC b, each
  actuated and scaled down),
- node 1: a bound pair (a requester of ISC a and its own launcher),
- a requester asking for 3 GPUs, which no node has: Pending,

and checks ``status`` and ``explain`` field by field (JSON) against what the
cluster itself says, the table for the key facts, ``--watch``, kubectl's
plugin mechanism and the error cases.  With ``FMA_OBSERVABILITY_CAPTURE=DIR``
the commands' output and the scrapes are also written to DIR (docs/observability.md
is built from them by scripts/observability_docs.py).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import re
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from certs import issuer, renewal, rotation_plan, store
from crds import manifests
from devcluster import binaries, processes, samples, waiting
from kube import errors as kube_errors
from kube import resources
from webhook import configuration as webhook_configuration

from . import test_extender_scheduling as extender_scheduling
from .dpc import conftest as dpc
from .dpc.conftest import DEPLOYMENTS, ENGINE_OPTIONS, Harness

pytestmark = pytest.mark.cluster

harness = dpc.harness  # the dual-pods harness fixture, reused as it is
fma_scheduler = extender_scheduling.fma_scheduler  # the extender and the FMA kube-scheduler, reused as they are

P = "dual-pods.llm-d.ai/"
REPO = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "charts" / "fma" / "dashboards" / "fma-overview.json"
RULES = REPO / "charts" / "fma" / "rules" / "fma-alerts.yaml"
METRIC = re.compile(r"\b(fma_[a-zA-Z0-9_]+)\b")


def _capture(name: str, text: str) -> None:
    target = os.environ.get("FMA_OBSERVABILITY_CAPTURE")
    if target:
        path = pathlib.Path(target)
        path.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)


def _plugin() -> str:
    found = shutil.which("kubectl-fma", path=str(pathlib.Path(sys.executable).parent))
    assert found, "kubectl-fma is not installed in this environment (pip install -e .)"
    return found


def _fma(h: Harness, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [_plugin(), "--kubeconfig", str(h.cluster.kubeconfig), "-n", h.namespace]
    command += ["--gpu-map-namespace", str(h.simnode.options.gpu_map_namespace), *argv]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _json(h: Harness, *argv: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_fma(h, *argv, "-o", "json").stdout)
    return data


def _requester(h: Harness, app: str) -> dict[str, Any]:
    (pod,) = h.requesters(app)
    return pod


def _unbound_sleeping_launcher(h: Harness, count: int) -> dict[str, Any] | None:
    """The one launcher once it is unbound, asleep and lists ``count`` running instances."""
    launchers = h.launchers()
    if len(launchers) != 1:
        return None
    (launcher,) = launchers
    notes = launcher["metadata"].get("annotations") or {}
    if P + "requester" in notes or launcher["metadata"]["labels"].get(P + "sleeping") != "true":
        return None
    inventory = json.loads(notes.get(P + "instances") or '{"instances": []}')
    running = [i for i in inventory["instances"] if i["status"] == "running"]
    return launcher if len(running) == count else None


def _gpu_table(h: Harness) -> dict[str, dict[str, int]]:
    cm = h.api.get(resources.CONFIG_MAPS, "gpu-map", str(h.simnode.options.gpu_map_namespace))
    return {node: json.loads(value) for node, value in cm["data"].items()}


def _actuation_seconds(h: Harness, pod: dict[str, Any]) -> float:
    events, _ = h.api.list_all(resources.EVENTS, h.namespace)
    (event,) = [
        e
        for e in events
        if e["involvedObject"].get("uid") == pod["metadata"]["uid"] and e["reason"].startswith("Actuated")
    ]
    return float(re.search(r"in ([0-9.]+)s", event["message"]).group(1))  # type: ignore[union-attr]


@pytest.fixture
def known_state(harness: Harness) -> dict[str, Any]:
    """Two sleepers on node 0, a bound pair on node 1, a Pending requester; returns their names."""
    t0 = datetime.datetime.now(datetime.UTC)
    node0, node1 = harness.simnode.node_names[:2]
    harness.launcher_config(max_instances=2)
    harness.isc("isc-a", options=samples.engine_sim_options("tiny-a"))
    harness.isc("isc-b", options=samples.engine_sim_options("tiny-b"), port=8006)  # no port clash with isc-a
    harness.start_controller()
    # Two instances on node 0, each actuated and then put to sleep by scaling its Deployment down.
    for app, isc, count in (("sa", "isc-a", 1), ("sb", "isc-b", 2)):
        harness.deployment(app, isc, node=node0)
        harness.ready_requester(app)
        harness.scale(app, 0)
        waiting.wait_for(
            lambda count=count: _unbound_sleeping_launcher(harness, count),
            timeout=90,
            what=f"the launcher on {node0} asleep with {count} instance(s)",
        )
    (sleepy,) = harness.launchers()
    # A bound pair on node 1.
    harness.deployment("bound", "isc-a", node=node1)
    bound = harness.ready_requester("bound")
    (lc_bound,) = [lc for lc in harness.launchers() if lc["metadata"]["name"] != sleepy["metadata"]["name"]]
    # A requester no node can hold: it stays Pending.
    pending = samples.requester_template("isc-a", "pending", gpus=3)
    pending["metadata"]["name"] = "pending"
    harness.create(resources.PODS, {"apiVersion": "v1", "kind": "Pod", **pending})
    waiting.wait_for(
        lambda: any(
            c.get("reason") == "Unschedulable"
            for c in (harness.get("pending").get("status") or {}).get("conditions") or []
        ),
        timeout=60,
        what="the scheduler to report the 3-GPU requester unschedulable",
    )
    return {
        "t0": t0,
        "node0": node0,
        "node1": node1,
        "sleepy": harness.get(sleepy["metadata"]["name"]),
        "bound": harness.get(bound["metadata"]["name"]),
        "lc_bound": harness.get(lc_bound["metadata"]["name"]),
    }


def test_status_and_explain_of_a_known_state(harness: Harness, known_state: dict[str, Any]) -> None:
    h, k = harness, known_state
    started = datetime.datetime.now(datetime.UTC)
    table = _gpu_table(h)
    bound, lc_bound, sleepy = k["bound"], k["lc_bound"], k["sleepy"]
    bound_gpu = bound["metadata"]["annotations"][P + "accelerators"]
    inventory = json.loads(sleepy["metadata"]["annotations"][P + "instances"])

    report = _json(h, "status")
    _capture("status.json", json.dumps(report, indent=2) + "\n")
    assert report["namespace"] == h.namespace
    assert [n["name"] for n in report["nodes"]] == sorted([k["node0"], k["node1"]])
    nodes = {n["name"]: n for n in report["nodes"]}
    for name in (k["node0"], k["node1"]):
        assert nodes[name]["gpu_capacity"] == 2
        assert [g["uuid"] for g in nodes[name]["gpus"]] == sorted(table[name], key=table[name].get)
        assert [g["index"] for g in nodes[name]["gpus"]] == [0, 1]

    # Node 1: the bound pair on the requester's GPU, the other GPU free.
    gpus1 = {g["uuid"]: g for g in nodes[k["node1"]]["gpus"]}
    assert gpus1[bound_gpu]["state"] == "bound"
    assert gpus1[bound_gpu]["holder"] == {
        "requester": bound["metadata"]["name"],
        "provider": lc_bound["metadata"]["name"],
        "instance_id": lc_bound["metadata"]["annotations"][P + "instance-id"],
        "isc": "isc-a",
        "model": "tiny-a",
        "path": "cold",
        "ready": True,
    }
    assert gpus1[bound_gpu]["sleepers"] == []
    assert [g["state"] for u, g in gpus1.items() if u != bound_gpu] == ["free"]

    # Node 0: exactly the inventory's two instances asleep, each on its own GPUs, with its ISC.
    sleepers = {
        (s["provider"], s["instance_id"], s["isc"], s["model"], g["uuid"])
        for g in nodes[k["node0"]]["gpus"]
        for s in g["sleepers"]
    }
    models = {"isc-a": "tiny-a", "isc-b": "tiny-b"}
    assert sleepers == {
        (sleepy["metadata"]["name"], i["id"], i["isc"], models[i["isc"]], i["gpus"][0]) for i in inventory["instances"]
    }
    assert {i["isc"] for i in inventory["instances"]} == {"isc-a", "isc-b"}
    for gpu in nodes[k["node0"]]["gpus"]:
        assert gpu["holder"] is None
        assert gpu["state"] == ("sleeping" if gpu["sleepers"] else "free")
        for sleeper in gpu["sleepers"]:
            assert 0 <= sleeper["asleep_seconds"] <= (started - k["t0"]).total_seconds() + 5
    # Launchers and their instance counts.
    launchers = {lc["name"]: (n["name"], lc) for n in report["nodes"] for lc in n["launchers"]}
    where, idle = launchers[sleepy["metadata"]["name"]]
    assert (where, idle["bound_to"], idle["instances"], idle["running"], idle["asleep"], idle["stopped"]) == (
        k["node0"],
        "",
        2,
        2,
        2,
        0,
    )
    where, busy = launchers[lc_bound["metadata"]["name"]]
    assert (where, busy["bound_to"], busy["instances"], busy["asleep"]) == (k["node1"], bound["metadata"]["name"], 1, 0)
    assert idle["launcher_config"] == busy["launcher_config"] == "lc"
    # Per ISC: the live requesters; in total, every Actuated* Event (sa cold, sb warm, bound cold).
    iscs = {i["name"]: i for i in report["iscs"]}
    assert (iscs["isc-a"]["ready"], iscs["isc-a"]["pending"]) == (1, 1)
    assert iscs["isc-a"]["paths"] == {"hot": 0, "warm": 0, "cold": 1}
    assert (iscs["isc-b"]["ready"], iscs["isc-b"]["pending"], iscs["isc-b"]["model"]) == (0, 0, "tiny-b")
    assert report["actuations"] == {"hot": 0, "warm": 1, "cold": 2}

    _capture("metrics-known-state.txt", httpx.get(f"http://127.0.0.1:{h.metrics_port}/metrics", timeout=10).text)

    # --node keeps one node.
    assert [n["name"] for n in _json(h, "status", "--node", k["node1"])["nodes"]] == [k["node1"]]

    # The table: 100 columns, and the key facts on their rows.
    text = _fma(h, "status").stdout
    _capture("status.txt", text)
    assert max(len(line) for line in text.splitlines()) <= 100
    rows = [line.split() for line in text.splitlines()]
    index = str(table[k["node1"]][bound_gpu])
    assert [
        k["node1"],
        index,
        "bound",
        bound["metadata"]["name"],
        lc_bound["metadata"]["name"],
        "isc-a",
        "cold",
        "Ready",
    ] in rows
    assert sum(1 for r in rows if r[:1] == [k["node0"]] and r[2:3] == ["sleeping"]) == 2
    assert "hot 0, warm 1, cold 2" in text
    assert ["isc-a", "tiny-a", "1", "1", "0", "0", "1"] in rows

    # explain: the bound requester's story.
    story = _json(h, "explain", bound["metadata"]["name"])
    _capture("explain-bound.json", json.dumps(story, indent=2) + "\n")
    _capture("explain-bound.txt", _fma(h, "explain", bound["metadata"]["name"]).stdout)
    assert [s["stage"] for s in story["stages"]] == [
        "admission",
        "scheduling",
        "gpus",
        "binding",
        "actuation",
        "readiness-relay",
        "current",
    ]
    assert {s["state"] for s in story["stages"]} == {"done"}
    assert (story["mode"], story["isc"], story["model"], story["converted"]) == ("launcher", "isc-a", "tiny-a", False)
    assert (story["node"], story["scheduler"], story["sleeper_aware"]) == (k["node1"], "default-scheduler", False)
    assert story["gpus"] == [bound_gpu]
    assert (story["provider"], story["provider_kind"]) == (lc_bound["metadata"]["name"], "launcher")
    assert story["instance_id"] == bound["metadata"]["labels"][P + "instance"]
    assert (story["path"], story["actuation_seconds"]) == ("cold", _actuation_seconds(h, bound))
    assert (story["ready"], story["phase"], story["waiting_for"], story["reasons"]) == (True, "Running", "", [])
    assert "ActuatedCold" in [e["reason"] for e in story["events"]]

    # explain: the Pending requester waits for scheduling, in the scheduler's words.
    waiting_story = _json(h, "explain", "pending")
    _capture("explain-pending.txt", _fma(h, "explain", "pending").stdout)
    assert waiting_story["waiting_for"] == "scheduling"
    assert waiting_story["node"] == ""
    assert [s["state"] for s in waiting_story["stages"]][:2] == ["done", "pending"]
    (reason,) = waiting_story["reasons"]
    assert reason.startswith("scheduler: 0/")
    assert "Insufficient nvidia.com/gpu" in reason

    # YAML carries the same document.
    assert yaml.safe_load(_fma(h, "explain", "pending", "-o", "yaml").stdout)["reasons"] == waiting_story["reasons"]

    # kubectl itself finds the plugin on PATH.
    kubectl = binaries.locate().kubectl
    assert kubectl.exists(), f"kubectl is missing at {kubectl}; run 'make binaries'"
    env = {**os.environ, "PATH": f"{pathlib.Path(_plugin()).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    via_kubectl = subprocess.run(
        [
            str(kubectl),
            "fma",
            "--kubeconfig",
            str(h.cluster.kubeconfig),
            "-n",
            h.namespace,
            "status",
            "-o",
            "json",
            "--gpu-map-namespace",
            str(h.simnode.options.gpu_map_namespace),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert via_kubectl.returncode == 0, via_kubectl.stderr
    assert json.loads(via_kubectl.stdout)["actuations"] == report["actuations"]

    # Clear errors, exit status 1.
    for argv, message in (
        (("explain", "no-such-pod"), f'error: pod "no-such-pod" not found in namespace "{h.namespace}"'),
        (("explain", lc_bound["metadata"]["name"]), f'bound to requester "{bound["metadata"]["name"]}"'),
    ):
        failed = _fma(h, *argv, check=False)
        assert failed.returncode == 1
        assert message in failed.stderr
        assert failed.stdout == ""
    h.create(resources.PODS, {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
    failed = _fma(h, "explain", "plain", check=False)
    assert (failed.returncode, failed.stderr.strip()) == (
        1,
        f'error: pod "plain" is not an FMA requester: it has neither the {P}inference-server-config '
        f"nor the {P}server-patch annotation",
    )

    # --watch prints again when the state changes (the Pending requester goes away).  Ctrl-C (SIGINT) ends it
    # with status 0.  A child inherits an *ignored* SIGINT (as under `nohup make test &`, where Python then never
    # raises KeyboardInterrupt), but a handled one is reset to the default at exec: so the test sets a handler
    # while it starts the watcher, whatever its own disposition.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        watcher = subprocess.Popen(
            [
                _plugin(),
                "--kubeconfig",
                str(h.cluster.kubeconfig),
                "-n",
                h.namespace,
                "status",
                "--watch",
                "--interval",
                "0.5",
                "-o",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())
        assert {i["name"]: i["pending"] for i in first["iscs"]}["isc-a"] == 1
        h.api.delete(resources.PODS, "pending", h.namespace)
        second = json.loads(watcher.stdout.readline())
        assert {i["name"]: i["pending"] for i in second["iscs"]}["isc-a"] == 0
    finally:
        watcher.send_signal(signal.SIGINT)
        try:
            watcher.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            watcher.kill()
            _, stderr = watcher.communicate(timeout=10)
            pytest.fail(f"kubectl fma status --watch did not end on SIGINT within 30 s; stderr: {stderr[-2000:]}")
    assert watcher.returncode == 0


@contextlib.contextmanager
def _webhook_for(h: Harness, workdir: pathlib.Path) -> Iterator[None]:
    """fma-webhook as a process, registered by URL for the harness's namespace only."""
    policy = rotation_plan.Policy(identity=issuer.ServingIdentity("w", ip_addresses=("127.0.0.1",)))
    renewal.run(store.FileStore(workdir), policy, datetime.datetime.now(datetime.UTC))
    port = processes.free_port()
    record = processes.spawn(
        "fma-webhook",
        [
            sys.executable,
            "-m",
            "webhook",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--kubeconfig",
            str(h.cluster.kubeconfig),
        ],
        workdir / "webhook.log",
        env={
            "FMA_WEBHOOK_TLS_CERT_FILE": str(workdir / store.TLS_CERT),
            "FMA_WEBHOOK_TLS_KEY_FILE": str(workdir / store.TLS_KEY),
        },
    )
    name = f"fma-webhook-{h.namespace}"
    try:
        verify = ssl.create_default_context(cafile=str(workdir / store.BUNDLE))
        waiting.wait_for(
            lambda: httpx.get(f"https://127.0.0.1:{port}/readyz", verify=verify, timeout=2).status_code == 200,
            timeout=60,
            what="fma-webhook /readyz",
            ignore=(httpx.TransportError,),
        )
        document = webhook_configuration.render(
            (workdir / store.BUNDLE).read_bytes(),
            url=f"https://127.0.0.1:{port}/mutate",
            name=name,
            namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": h.namespace}},
        )
        h.api.create(resources.MUTATING_WEBHOOK_CONFIGURATIONS, document)
        yield
    finally:
        with contextlib.suppress(kube_errors.NotFound):
            h.api.delete(resources.MUTATING_WEBHOOK_CONFIGURATIONS, name)
        processes.stop(record, grace_seconds=5)


def test_a_user_pod_converted_and_placed_by_fma_wakes_its_sleeper(
    harness: Harness, fma_scheduler: extender_scheduling.FmaScheduler, tmp_path: pathlib.Path
) -> None:
    """The whole path: webhook conversion, sleeper-aware placement by the FMA scheduler, a hot wake."""
    h = harness
    node = h.simnode.node_names[1]
    h.launcher_config()
    h.isc("isc-a", options=samples.engine_sim_options("tiny-a"))
    h.start_controller()
    h.deployment("sa", "isc-a", node=node)  # created as a requester directly, then put to sleep
    h.ready_requester("sa")
    h.scale("sa", 0)
    (sleepy,) = waiting.wait_for(
        lambda: (lc := _unbound_sleeping_launcher(h, 1)) and [lc], timeout=90, what=f"a sleeper on {node}"
    )
    (sleeper,) = json.loads(sleepy["metadata"]["annotations"][P + "instances"])["instances"]
    with _webhook_for(h, tmp_path):
        # What a user writes: an ordinary server Pod naming its ISC, no node, no FMA scheduler.
        user_template = {
            "metadata": {"labels": {"app": "hot"}, "annotations": {P + "inference-server-config": "isc-a"}},
            "spec": {
                "containers": [
                    {
                        "name": "inference-server",
                        "image": "vllm/vllm-openai",
                        "command": ["vllm", "serve", "tiny-a"],
                        "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    }
                ]
            },
        }
        h.create(DEPLOYMENTS, samples.deployment("hot", user_template))
        hot = h.ready_requester("hot")
    story = _json(h, "explain", hot["metadata"]["name"])
    _capture("explain-hot.txt", _fma(h, "explain", hot["metadata"]["name"]).stdout)
    assert story["converted"] is True
    assert (story["scheduler"], story["sleeper_aware"], story["node"]) == ("fma-scheduler", True, node)
    assert story["gpus"] == sleeper["gpus"]
    assert (story["provider"], story["instance_id"]) == (sleepy["metadata"]["name"], sleeper["id"])
    assert (story["path"], story["actuation_seconds"]) == ("hot", _actuation_seconds(h, hot))
    assert story["stages"][0]["summary"].startswith(f"converted by the FMA webhook ({P}converted=v1)")
    assert "(sleeper-aware)" in story["stages"][1]["summary"]
    report = _json(h, "status", "--node", node)
    (gpu,) = [g for g in report["nodes"][0]["gpus"] if g["uuid"] == sleeper["gpus"][0]]
    assert gpu["state"] == "bound"
    assert (gpu["holder"]["requester"], gpu["holder"]["path"], gpu["holder"]["instance_id"]) == (
        hot["metadata"]["name"],
        "hot",
        sleeper["id"],
    )
    assert {i["name"]: i["paths"] for i in report["iscs"]}["isc-a"] == {"hot": 1, "warm": 0, "cold": 0}
    assert report["actuations"] == {"hot": 1, "warm": 0, "cold": 1}


def test_explain_names_an_engine_that_fails_to_start(harness: Harness) -> None:
    h = harness
    h.launcher_config()
    h.isc("broken", options=ENGINE_OPTIONS.replace("--sim-startup-seconds 0.3", "--sim-startup-seconds soon"))
    h.start_controller()
    pod = samples.requester_template("broken", "broken")
    # A finalizer of the test's own keeps the Pod visible after the controller deletes it for the failure.
    pod["metadata"] |= {"name": "broken", "finalizers": ["fma-test/keep"]}
    h.create(resources.PODS, {"apiVersion": "v1", "kind": "Pod", **pod})
    try:
        waiting.wait_for(
            lambda: "exit code" in (h.get("broken")["metadata"].get("annotations") or {}).get(P + "status", ""),
            timeout=120,
            what="the controller to report the start failure",
        )
        story = waiting.wait_for(
            lambda: (s := _json(h, "explain", "broken"))["events"] and s,
            timeout=30,
            what="the ActuationFailed Event",
        )
        _capture("explain-failed.txt", _fma(h, "explain", "broken").stdout)
        (problem,) = json.loads(h.get("broken")["metadata"]["annotations"][P + "status"])["Errors"]
        assert problem.startswith("the engine stopped before it ever answered (exit code 2)")
        assert "invalid float value: 'soon'" in problem
        assert f"controller: {problem}" in story["reasons"]
        assert story["ready"] is False
        assert "failed" in {s["state"] for s in story["stages"]}
        assert any(e["reason"] == "ActuationFailed" and e["type"] == "Warning" for e in story["events"])
        text = _fma(h, "explain", "broken").stdout
        assert "invalid float value" in text
        assert max(len(line) for line in text.splitlines()) <= 100
    finally:
        with contextlib.suppress(kube_errors.NotFound):
            h.api.patch(resources.PODS, "broken", {"metadata": {"finalizers": None}}, h.namespace)


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def _names_in(text: str) -> tuple[set[str], set[str]]:
    """Sample names present in a Prometheus text exposition, and the sample names its ``# TYPE`` lines declare.

    A labelled family has no sample until its first observation (a counter of
    retries, say): the exporter still declares it, with HELP and TYPE.
    """
    present, declared = set(), set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            base = family.removesuffix("_total") if kind == "counter" else family
            declared.update(base + suffix for suffix in _SUFFIXES.get(kind, ("",)))
        elif line and not line.startswith("#"):
            present.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return present, declared | present


def _wanted() -> set[str]:
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    exprs += [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    return {name for expr in exprs for name in METRIC.findall(expr)}


def test_dashboard_and_rule_metrics_exist_in_live_scrapes(harness: Harness, tmp_path: pathlib.Path) -> None:
    """After a real (warm) actuation, every fma_* name in the dashboard and the rules is in a live /metrics."""
    h = harness
    node0 = h.simnode.node_names[0]
    h.launcher_config()
    h.isc("isc-m")
    h.create(
        resources.LAUNCHER_POPULATION_POLICIES,
        samples.launcher_population_policy(
            "one-each", launcher_config_name="lc", count=1, match_labels={"kubernetes.io/hostname": node0}
        ),
    )
    h.start_controller("--enable-populator", "true")
    waiting.wait_for(lambda: len(h.launchers()) == 1, timeout=90, what="the populator's idle launcher")
    h.deployment("m", "isc-m", node=node0)
    requester = h.ready_requester("m")
    # A cold actuation too: no idle launcher on the other node, so the controller creates one.
    h.deployment("cold", "isc-m", node=h.simnode.node_names[1])
    h.ready_requester("cold")
    controllers = httpx.get(f"http://127.0.0.1:{h.metrics_port}/metrics", timeout=10).text

    # The scheduler extender, as a process, answering the scheduler's two calls for this requester.
    extender_port = processes.free_port()
    extender = processes.spawn(
        "fma-extender",
        [
            sys.executable,
            "-m",
            "extender",
            f"--port={extender_port}",
            f"--kubeconfig={h.cluster.kubeconfig}",
            f"--gpu-map-namespace={h.simnode.options.gpu_map_namespace}",
        ],
        tmp_path / "extender.log",
    )
    try:
        url = f"http://127.0.0.1:{extender_port}"
        waiting.wait_for(
            lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200,
            timeout=60,
            what="fma-extender /healthz",
            ignore=(httpx.HTTPError,),
        )
        body = {"Pod": requester, "NodeNames": h.simnode.node_names}
        assert httpx.post(f"{url}/filter", json=body, timeout=10).status_code == 200
        assert httpx.post(f"{url}/prioritize", json=body, timeout=10).status_code == 200
        extender_text = httpx.get(f"{url}/metrics", timeout=10).text
    finally:
        processes.stop(extender, grace_seconds=5)

    # The webhook, as a process with its own certificate, answering one AdmissionReview.
    policy = rotation_plan.Policy(identity=issuer.ServingIdentity("w", ip_addresses=("127.0.0.1",)))
    renewal.run(store.FileStore(tmp_path), policy, datetime.datetime.now(datetime.UTC))
    webhook_port = processes.free_port()
    webhook = processes.spawn(
        "fma-webhook",
        [sys.executable, "-m", "webhook", "--host", "127.0.0.1", "--port", str(webhook_port), "--no-lookups"],
        tmp_path / "webhook.log",
        env={
            "FMA_WEBHOOK_TLS_CERT_FILE": str(tmp_path / store.TLS_CERT),
            "FMA_WEBHOOK_TLS_KEY_FILE": str(tmp_path / store.TLS_KEY),
        },
    )
    verify = ssl.create_default_context(cafile=str(tmp_path / store.BUNDLE))
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{webhook_port}", verify=verify, timeout=10) as client:
            waiting.wait_for(
                lambda: client.get("/readyz").status_code == 200,
                timeout=60,
                what="fma-webhook /readyz",
                ignore=(httpx.TransportError,),
            )
            user_pod = {"apiVersion": "v1", "kind": "Pod", **samples.requester_template("isc-m", "m")}
            review = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "5f0c4c8e-0000-4000-8000-000000000001",
                    "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "namespace": h.namespace,
                    "operation": "CREATE",
                    "object": user_pod,
                },
            }
            answer = client.post("/mutate", json=review).json()["response"]
            assert answer["uid"] == review["request"]["uid"]
            webhook_text = client.get("/metrics").text
    finally:
        processes.stop(webhook, grace_seconds=5)

    _capture("metrics-controllers.txt", controllers)
    _capture("metrics-extender.txt", extender_text)
    _capture("metrics-webhook.txt", webhook_text)
    scrapes = [_names_in(text) for text in (controllers, extender_text, webhook_text)]
    present = set().union(*(p for p, _ in scrapes))
    declared = set().union(*(d for _, d in scrapes))
    wanted = _wanted()
    assert wanted, "the dashboard and rules name no FMA metric"
    assert wanted - declared == set(), f"not exported by any live component: {sorted(wanted - declared)}"
    # What this run exercised has series, not just declarations.
    exercised = {
        "fma_actuation_seconds_bucket",
        "fma_actuation_seconds_count",
        "fma_requester_count",
        "fma_duality",
        "fma_launcher_pod_count",
        "fma_launcher_create_seconds_count",
        "fma_dpc_innerqueue_depth",
        "fma_dpc_innerqueue_queue_duration_seconds_bucket",
        "fma_dpc_innerqueue_work_duration_seconds_bucket",
        "fma_http_latency_seconds_bucket",
        "fma_http_latency_seconds_count",
        "fma_webhook_request_duration_seconds_bucket",
        "fma_webhook_requests_total",
        "fma_webhook_certificate_expiry_timestamp_seconds",
        "fma_extender_request_duration_seconds_bucket",
    }
    assert exercised <= wanted
    assert exercised - present == set(), f"no series in the live scrapes: {sorted(exercised - present)}"
    # The actuation really happened and was observed, on the warm path (the populator's launcher).
    assert h.metric_count("fma_actuation_seconds_count", path="warm", isc_name="isc-m") == 1
    assert h.metric_count("fma_actuation_seconds_count", path="cold", isc_name="isc-m") == 1


def test_missing_crds_are_a_clear_error(harness: Harness) -> None:
    """Last in the module: the CRDs are removed and put back."""
    h = harness
    names = [doc["metadata"]["name"] for doc in manifests.documents()]
    for name in names:
        h.api.delete(resources.CUSTOM_RESOURCE_DEFINITIONS, name)
    try:
        waiting.wait_for(
            lambda: all(h.api.get_or_none(resources.CUSTOM_RESOURCE_DEFINITIONS, n) is None for n in names),
            timeout=60,
            what="the CRDs to be gone",
        )
        for argv in (("status",), ("explain", "anything")):
            failed = _fma(h, *argv, check=False)
            assert failed.returncode == 1
            assert "the FMA CRDs are not installed" in failed.stderr
        failed = _fma(h, "status", check=False)
        assert failed.stderr.startswith("error: the cluster at https://")
        assert (
            "does not serve fma.llm-d.ai/v1alpha1 inferenceserverconfigs: the FMA CRDs are not installed"
            in failed.stderr
        )
    finally:
        for document in manifests.documents():
            with contextlib.suppress(kube_errors.AlreadyExists):
                h.api.create(resources.CUSTOM_RESOURCE_DEFINITIONS, document)

        def established() -> bool:
            for name in names:
                crd = h.api.get(resources.CUSTOM_RESOURCE_DEFINITIONS, name)
                conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
                if conditions.get("Established") != "True":
                    return False
            return True

        waiting.wait_for(established, timeout=60, what="the CRDs Established again")
