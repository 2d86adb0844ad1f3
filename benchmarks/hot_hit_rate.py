"""Hot-hit rate: how often scaling a model back up wakes its sleeping instance, default versus FMA scheduler.

Why: the dual-pods controller can wake a sleeping instance (hot, seconds)
only when the requester lands on the node *and* the GPUs where that sleeper
waits; otherwise it starts an engine in an idle launcher (warm) or in a new
launcher (cold).  The stock scheduler does not know where sleepers are; the
FMA scheduler asks ``fma-extender``.  This benchmark measures the difference,
side by side in one run on one development cluster:

- one control plane, one simnode with ``--nodes`` nodes x ``--gpus-per-node``
  GPUs (the device plugin hands out the lowest free GPU first, simnode's
  default), the FMA CRDs, the real ``fma-extender`` and a second
  kube-scheduler (profile ``fma-scheduler``) rendered from the one packaged
  configuration (``extender.scheduler_config``);
- for each scenario of ``--models`` (default 3, then 5: more models than
  nodes, so models share nodes, a sleeper may sit on a node's second GPU and
  launchers fill up), two phases, ``default`` then ``fma``, each in its own
  namespace with its own LauncherConfig (engine simulator, ``maxInstances``
  2, launchers on ``--host $(POD_IP)`` as ``devcluster.samples`` builds
  them), that many ISCs on distinct ports (1 GPU each), one Deployment per
  ISC with ``schedulerName`` set to the phase's scheduler, and its own real
  ``fma-controllers`` (dual-pods only, ``--enable-populator false``: the only
  launchers are the ones the controller creates, cold).  Sleepers of one
  phase cannot help another (the controller and the extender match config
  keys per namespace), and each phase's launchers are deleted before the
  next phase starts;
- ``--rounds`` rounds: the Deployments are scaled 0 -> 1 one at a time, in an
  order drawn from ``--seed`` (the same sequence in both phases), each
  waiting until the controller has observed the actuation; then all are
  scaled back to 0 and their requesters are gone (engines asleep).

Placement hints (``--placements``; docs/extender.md, "Placement modes"):
``hints`` runs a third kube-scheduler, the FMA configuration rendered for
``placement: hints`` (no extender), and ``hints+extender`` a fourth, rendered
for that placement with the real extender.  In those phases, just before each
scale-up the benchmark computes the hint the webhook would write at
admission, with the webhook's own code (``webhook.cluster_facts.SleeperHints``
over a watch-fed ``kube.sleeper_cache.SleeperCache``, lowest-index GPU
allocation, as simnode allocates) and puts it into the Deployment's Pod
template (the requesters here are already in converted form, so the webhook
itself is not in the path).  Staleness: per actuation the record keeps the
best hinted node and its score at that moment; an actuation whose best hint
was hot (score >= 6) but that did not end hot means the hinted sleeper was
gone, its GPUs taken or the pick different by scheduling time (ending hot on
another node, where another sleeper of the model waited, is counted apart).

Nomination (``--nominate``, on by default; docs/extender.md, "Nomination"):
a ``nominate`` phase per scenario on the ``hints`` kube-scheduler: as in the
``hints`` phase the webhook's hint goes into the Pod template, and when its
best node is certain-hot also what the webhook writes with ``nominate`` on
(the scheduling gate and the ``nominated-node`` annotation); the phase's own
``fma-controllers`` (its nominator) sets ``status.nominatedNodeName`` and
lifts the gate.

Scheduler plugin (``--plugin``, on by default; docs/extender.md, "Scheduler
plugin"): a ``plugin`` phase per scenario on one more kube-scheduler, FMA's
build (``devcluster.binaries.ensure_fma_scheduler``) with the ``hints``
configuration and the NominatedNode plugin enabled: as in the ``hints`` phase
the webhook's hint goes into the Pod template, and when its best node is
certain-hot also what the webhook writes with ``nominate: plugin`` (the
``nominated-node`` annotation alone, no gate): the plugin restricts the Pod's
first scheduling attempt to that node; nothing else takes part.

DRA (``--dra``, on by default): a second simnode of the same size whose
nodes offer their GPUs only as DRA devices (``--gpu-mode dra``), and a
``dra`` phase per scenario: the requesters are written as users write them
(``nvidia.com/gpu: 1`` and the ISC annotation) and go through the real
webhook (``gpu_claims: dra``, ``placement: hints``, in-process, registered
for the DRA phases' namespaces only), which gives each one a ResourceClaim
whose ``firstAvailable`` alternatives put the best free sleeper's GPUs first;
the phase's controller runs the claim keeper (``--enable-gpu-claims``) and the
hints kube-scheduler (with its DRA plugin) allocates the claim.  Just before
each scale-up the benchmark waits (at most 10 s) until the webhook's sleeper
cache agrees that a sleeper is free when the Pods say so, so that a cache
still catching up is not counted against the claim.

Per phase the row also reports throughput beside the hot-hit rate: actuations
per minute of scale-to-actuated time and the mean and maximum seconds from a
scale-up to the controller's observed actuation.

Per actuation the path is the one whose ``fma_actuation_seconds_count{path}``
(the controller's /metrics) went up by one.  Just before each scale-up the
benchmark also judges, from the Pods alone (independently of the extender's
model), whether a *matching sleeper's GPUs were free*: an unbound launcher of
the phase holds a running instance of that ISC whose GPUs no live requester
holds (the issue's target: hot fraction >= 0.9 there with the FMA scheduler),
and whether that is *certain*: on a node with such a sleeper, every set of
free GPUs the device plugin could hand out is a matching sleeper's (e.g. the
only free GPU, or two free GPUs each holding a sleeper of the model).

Bounded: every wait has a timeout and the whole run stops after
``--time-limit`` seconds.  Everything started here (control plane, simnodes
and their Pods, controllers, extender, schedulers, webhook) is stopped on the
way out, also on failure or SIGTERM.  Prints a table and writes ``--out``
(default ``benchmarks/results/hot_hit_rate.json``; the DRA results are
committed as ``hot_hit_rate_dra.json``).

Usage: ``.venv/bin/python benchmarks/hot_hit_rate.py [--rounds 6] [--models 3 5] [--nodes 4] [--no-dra]
[--no-plugin]``
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import itertools
import json
import os
import pathlib
import platform
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

# benchmarks/webhook.py (the webhook benchmark) shares the name of the product package whose hint code the
# hints phases call: leave this directory off the path while the product packages load, then add it back
# for run_record.
_HERE = pathlib.Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != _HERE]

import httpx  # noqa: E402
import yaml  # noqa: E402

import kube  # noqa: E402
from certs import issuer, reloading_context, renewal, rotation_plan, store  # noqa: E402
from crds import (  # noqa: E402
    accelerators,
    binding_record,
    gpu_claims,
    keys,
    launcher_inventory,
    manifests,
    sleeper_scoring,
)
from devcluster import binaries, control_plane, processes, samples, waiting  # noqa: E402
from devcluster import simnode as simnode_mod  # noqa: E402
from extender import scheduler_config  # noqa: E402
from kube import resources, sleeper_cache  # noqa: E402
from webhook import app as webhook_app  # noqa: E402
from webhook import cluster_facts, configuration, gpu_claim, mutation, placement_hints, pod_view, server  # noqa: E402
from webhook import metrics as webhook_metrics  # noqa: E402
from webhook import settings as webhook_settings  # noqa: E402

sys.path.append(str(_HERE))
import run_record  # noqa: E402

RESULT = pathlib.Path(__file__).resolve().parent / "results" / "hot_hit_rate.json"
DEPLOYMENTS = resources.Resource("apps", "v1", "deployments", "Deployment")
ROLES = resources.Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
RESOURCE_CLAIMS = resources.Resource("resource.k8s.io", "v1", "resourceclaims", "ResourceClaim")
ROLE_BINDINGS = resources.Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
LAUNCHER_SELECTOR = f"{keys.COMPONENT_LABEL}={keys.COMPONENT_LAUNCHER}"
LC = "lc"
BASE_PORT = 8005
PATHS = ("hot", "warm", "cold")
PHASES = (("default", "default-scheduler"), ("fma", scheduler_config.SCHEDULER_NAME))
HINT_PHASES = {"hints": "fma-hints", "hints+extender": "fma-hints-extender"}
"""Placement -> the profile name of the kube-scheduler rendered for it."""
DRA_PHASE = "dra"
NOMINATE_PHASE = "nominate"
"""Hints plus the nomination gate, on the ``hints`` kube-scheduler, the phase's controllers lifting the gate."""
PLUGIN_PHASE = "plugin"
"""Hints plus the ``nominated-node`` annotation alone, on FMA's kube-scheduler build with NominatedNode."""
PLUGIN_PROFILE = "fma-hints-plugin"
DRA_LABEL = "fma-bench/dra"
"""Namespaces of DRA phases carry it; the benchmark's webhook registration selects them."""
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
_DONE_PHASES = ("Succeeded", "Failed")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- judging the cluster state (pure) -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SleeperState:
    """Whether a requester of one ISC could be actuated hot, judged from the Pods before it exists."""

    available: bool
    """An unbound launcher holds a running instance of the ISC whose GPUs are all free."""
    certain: bool
    """On such a sleeper's node every choice the device plugin could make among the free GPUs is a sleeper's."""


def sleeper_state(
    pods: Iterable[Mapping[str, Any]], isc: str, gpus_by_node: Mapping[str, frozenset[str]]
) -> SleeperState:
    """Judge whether a matching sleeper's GPUs are free (pure; no I/O).

    A sleeper is a running inventory instance (``launcher_inventory``) of an
    unbound, live launcher whose ``isc`` is ``isc``; GPUs are held by the
    ``accelerators`` annotation of every other live Pod (the requesters).
    """
    held: set[str] = set()
    sleepers: list[tuple[str, frozenset[str]]] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in _DONE_PHASES:
            continue
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        if labels.get(keys.COMPONENT_LABEL) != keys.COMPONENT_LAUNCHER:
            held.update(accelerators.parse(annotations.get(keys.ACCELERATORS_ANNOTATION)))
            continue
        if binding_record.from_annotations(annotations) is not None:
            continue
        inventory = launcher_inventory.parse(annotations.get(keys.INSTANCES_ANNOTATION))
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        for item in inventory.instances if inventory is not None else []:
            if item.isc == isc and item.status == "running" and item.gpus:
                sleepers.append((node, frozenset(item.gpus)))
    free = {node: uuids - held for node, uuids in gpus_by_node.items()}
    usable = [(node, gpus) for node, gpus in sleepers if gpus <= free.get(node, frozenset())]

    def covered(node: str, size: int) -> bool:
        sets = {gpus for where, gpus in usable if where == node and len(gpus) == size}
        return all(frozenset(pick) in sets for pick in itertools.combinations(sorted(free[node]), size))

    return SleeperState(available=bool(usable), certain=any(covered(node, len(gpus)) for node, gpus in usable))


def actuation_counts(metrics_text: str) -> dict[str, float]:
    """``fma_actuation_seconds_count`` summed per path, plus ``evicting`` (instancesDeleted > 0). Pure."""
    counts = dict.fromkeys((*PATHS, "evicting"), 0.0)
    for line in metrics_text.splitlines():
        if not line.startswith("fma_actuation_seconds_count{"):
            continue
        head, value = line.rsplit(" ", 1)
        labels = dict(item.split("=", 1) for item in head[head.index("{") + 1 : head.rindex("}")].split(","))
        path = labels.get("path", "").strip('"')
        counts[path] = counts.get(path, 0.0) + float(value)
        if labels.get("instancesDeleted", '"0"').strip('"') != "0":
            counts["evicting"] += float(value)
    return counts


def growth(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """The counters that went up between two scrapes, by how much (pure)."""
    return {key: value - before.get(key, 0.0) for key, value in after.items() if value > before.get(key, 0.0)}


def summarise(scheduler: str, actuations: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row from a phase's actuation records (pure)."""

    def fraction(rows: list[dict[str, Any]]) -> float | None:
        return round(sum(r["path"] == "hot" for r in rows) / len(rows), 3) if rows else None

    available = [r for r in actuations if r["sleeper_available"]]
    certain = [r for r in actuations if r["sleeper_certain"]]
    likely = [r for r in available if not r["sleeper_certain"]]
    return {
        "scheduler": scheduler,
        "actuations": len(actuations),
        **{path: sum(r["path"] == path for r in actuations) for path in PATHS},
        "evicting": sum(r["instances_deleted"] for r in actuations),
        "hot_fraction": fraction(actuations),
        "with_sleeper_free": len(available),
        "hot_fraction_sleeper_free": fraction(available),
        "with_sleeper_certain": len(certain),
        "hot_fraction_sleeper_certain": fraction(certain),
        "with_sleeper_likely_only": len(likely),
        "hot_fraction_sleeper_likely_only": fraction(likely),
        **_throughput(actuations),
        **_claims(actuations),
        **_staleness(actuations),
        **_annotated(actuations),
    }


def _annotated(actuations: list[dict[str, Any]]) -> dict[str, Any]:
    """Nominate and plugin phases (pure): requesters that carried the ``nominated-node`` annotation, and how
    many of them were actuated hot on that node."""
    annotated = [r for r in actuations if r.get("nominated_node")]
    if not annotated:
        return {}
    on_it = [r for r in annotated if r["node"] == r["nominated_node"]]
    return {
        "with_nominated_node": len(annotated),
        "on_nominated_node": len(on_it),
        "hot_on_nominated_node": sum(r["path"] == "hot" for r in on_it),
    }


def _claims(actuations: list[dict[str, Any]]) -> dict[str, Any]:
    """DRA phases (pure): how many claims got the sleeper's GPUs and how many any GPU."""
    chosen = [r.get("claim_alternative") for r in actuations if r.get("claim_alternative")]
    if not chosen:
        return {}
    return {"claims_sleeper": chosen.count("sleeper"), "claims_any": chosen.count("any")}


def _throughput(actuations: list[dict[str, Any]]) -> dict[str, Any]:
    """Scale-up to observed actuation: actuations per minute of that time, mean and max seconds (pure)."""
    seconds = [float(r["seconds_scale_to_actuated"]) for r in actuations]
    if not seconds:
        return {}
    return {
        "actuations_per_minute": round(60 * len(seconds) / sum(seconds), 1) if sum(seconds) > 0 else None,
        "mean_seconds_scale_to_actuated": round(sum(seconds) / len(seconds), 2),
        "max_seconds_scale_to_actuated": round(max(seconds), 2),
    }


def _staleness(actuations: list[dict[str, Any]]) -> dict[str, Any]:
    """For hinted phases (pure): actuations whose best hint at admission was hot (score >= 6); of those, how
    many did not end hot at all by scheduling time (the hint was stale: sleeper gone, GPUs taken or another
    pick), and how many ended hot but on another node (another sleeper of the model, equally good)."""
    hinted = [r for r in actuations if r.get("hint_best_node") is not None]
    if not hinted:
        return {}
    hot_hinted = [r for r in hinted if (r.get("hint_best_score") or 0) >= sleeper_scoring.LIKELY_HOT_MIN]
    stale = [r for r in hot_hinted if r["path"] != "hot"]
    elsewhere = [r for r in hot_hinted if r["path"] == "hot" and r["node"] != r["hint_best_node"]]
    return {
        "with_a_hint": len(hinted),
        "with_a_hot_hint": len(hot_hinted),
        "hot_hint_not_hot": len(stale),
        "hot_hint_hot_on_another_node": len(elsewhere),
        "stale_fraction": round(len(stale) / len(hot_hinted), 3) if hot_hinted else None,
    }


# --- driving one phase ----------------------------------------------------------------------------


class Phase:
    """One namespace, its LauncherConfig, ISCs, Deployments and controller, driven through the rounds."""

    def __init__(
        self,
        api: kube.Client,
        cluster: control_plane.ClusterState,
        workdir: pathlib.Path,
        *,
        name: str,
        scheduler: str,
        models: int,
        gpu_map_file: pathlib.Path,
        gpus_by_node: Mapping[str, frozenset[str]],
        extender_decisions: Callable[[], dict[str, float]],
        hints: cluster_facts.SleeperHints | None = None,
        dra: cluster_facts.SleeperHints | None = None,
        nominate: mutation.Nominate = "off",
    ) -> None:
        self.hints = hints
        self.nominate = nominate
        """Also record the certain-hot node as the webhook does with ``nominate`` (``gate``: with the gate)."""
        self.dra = dra
        """DRA phase: the webhook's own sleeper cache (the webhook converts the requesters)."""
        self.api = api
        self.cluster = cluster
        self.workdir = workdir / name
        self.name = name
        self.namespace = f"hot-{name}"
        self.scheduler = scheduler
        self.apps = [f"model-{i}" for i in range(models)]
        self.gpu_map_file = gpu_map_file
        self.gpus_by_node = gpus_by_node
        self.controller: processes.ProcessRecord | None = None
        self.metrics_port = 0
        self.extender_decisions = extender_decisions

    def setup(self) -> None:
        """Namespace, launcher RBAC, LauncherConfig, ISCs, controller (ready), Deployments at 0."""
        ns = self.namespace
        labels = {DRA_LABEL: "true"} if self.dra is not None else {}
        self.api.create(resources.NAMESPACES, {"metadata": {"name": ns, "labels": labels}})
        waiting.wait_for(
            lambda: self.api.get_or_none(resources.SERVICE_ACCOUNTS, "default", ns), timeout=60, what=f"{ns} SA"
        )
        # Launchers publish their inventory on their own Pod, as the chart grants
        # (docs/launcher.md, "Publishing the inventory on the launcher Pod").
        self.api.create(
            ROLES,
            {
                "metadata": {"name": "launcher"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}],
            },
            ns,
        )
        self.api.create(
            ROLE_BINDINGS,
            {
                "metadata": {"name": "launcher"},
                "roleRef": {"apiGroup": ROLES.group, "kind": "Role", "name": "launcher"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
            },
            ns,
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api.create(
            resources.LAUNCHER_CONFIGS,
            samples.launcher_config(LC, gpu_map_file=self.gpu_map_file, log_dir=self.workdir, max_instances=2),
            ns,
        )
        for index, app in enumerate(self.apps):
            self.api.create(
                resources.INFERENCE_SERVER_CONFIGS,
                samples.inference_server_config(
                    app, launcher_config_name=LC, options=samples.engine_sim_options(app), port=BASE_PORT + index
                ),
                ns,
            )
        self.start_controller()
        for app in self.apps:
            template = samples.requester_template(app, app) if self.dra is None else _user_template(app)
            template["spec"]["schedulerName"] = self.scheduler
            self.api.create(DEPLOYMENTS, samples.deployment(app, template, replicas=0), ns)

    def start_controller(self) -> None:
        self.metrics_port = processes.free_port()
        argv = [
            sys.executable,
            "-m",
            "controllers",
            f"--namespace={self.namespace}",
            f"--kubeconfig={self.cluster.kubeconfig}",
            "--gpu-map-namespace=default",
            "--leader-elect=false",
            "--enable-populator=false",
            f"--enable-gpu-claims={'true' if self.dra is not None else 'false'}",
            "--debug-accelerator-memory=false",
            "--metrics-host=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            "--log-format=text",
        ]
        self.controller = processes.spawn(f"fma-controllers-{self.name}", argv, self.workdir / "controller.log")

        def ready() -> bool:
            self._check_controller()
            return httpx.get(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=2).status_code == 200

        waiting.wait_for(ready, timeout=60, what=f"{self.name} controller /readyz", ignore=(httpx.HTTPError,))

    def _check_controller(self) -> None:
        if self.controller is None or not processes.is_alive(self.controller):
            raise RuntimeError(f"fma-controllers of phase {self.name} exited; see {self.workdir / 'controller.log'}")

    def stop_controller(self) -> None:
        if self.controller is not None:
            processes.stop(self.controller, grace_seconds=10)
            self.controller = None

    def counts(self) -> dict[str, float]:
        self._check_controller()
        return actuation_counts(httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text)

    def nominations(self) -> dict[str, float]:
        """The controller's ``fma_nominations_total`` per outcome (gated requesters its nominator let go)."""
        self._check_controller()
        found: dict[str, float] = {}
        for line in httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text.splitlines():
            if line.startswith("fma_nominations_total{"):
                head, value = line.rsplit(" ", 1)
                found[head.split('"')[1]] = float(value)
        return found

    def pods(self, selector: str | None = None) -> list[dict[str, Any]]:
        items, _ = self.api.list_all(resources.PODS, self.namespace, label_selector=selector)
        return items

    def scale(self, app: str, replicas: int) -> None:
        self.api.patch(DEPLOYMENTS, app, {"spec": {"replicas": replicas}}, self.namespace)

    def hint(self, app: str) -> tuple[str | None, int | None]:
        """Put the webhook's hint for ``app`` into its Pod template (hinted phases); return the best hinted
        node and its score."""
        if self.hints is None:
            return None, None
        deployment = self.api.get(DEPLOYMENTS, app, self.namespace)
        template = deployment["spec"]["template"]
        pod = {"metadata": {**template["metadata"], "name": app, "namespace": self.namespace}, "spec": template["spec"]}
        found = self.hints.hints(self.namespace, pod_view.parse(pod))
        if found is None:
            raise RuntimeError("the sleeper cache gave no hint (not synced?)")
        terms = [
            {"weight": w, "preference": {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [n]}]}}
            for n, w in found.preferred
        ]
        affinity = {"nodeAffinity": {PREFERRED: terms}} if terms else None
        template_patch: dict[str, Any] = {"spec": {"affinity": affinity}}
        if self.nominate != "off":
            nominee = found.nominee
            if self.nominate == "gate":
                gates = placement_hints.gate_operations({"spec": {}})[0]["value"] if nominee else None
                template_patch["spec"]["schedulingGates"] = gates
            template_patch["metadata"] = {"annotations": {keys.NOMINATED_NODE_ANNOTATION: nominee}}
        self.api.patch(DEPLOYMENTS, app, {"spec": {"template": template_patch}}, self.namespace)
        return (found.preferred[0][0], found.preferred[0][1]) if found.preferred else (None, None)

    def _await_webhook_view(self, app: str) -> None:
        """Wait (at most 10 s, never failing) until the webhook's cache also sees a free sleeper of ``app``."""
        assert self.dra is not None
        cache = self.dra.cache
        template = self.api.get(DEPLOYMENTS, app, self.namespace)["spec"]["template"]
        view = pod_view.parse({"metadata": {**template["metadata"], "name": app}, "spec": template["spec"]})
        with contextlib.suppress(waiting.WaitTimeout):
            waiting.wait_for(
                lambda: gpu_claim.preference(cache, self.namespace, view, 1) is not None,
                timeout=10,
                what=f"{self.name}: the webhook's view of {app}'s sleeper",
            )

    def actuate(self, round_index: int, app: str) -> dict[str, Any]:
        """Judge the sleepers, scale ``app`` to 1 and wait until the controller observes its actuation."""
        state = sleeper_state(self.pods(), app, self.gpus_by_node)
        hint_node, hint_score = self.hint(app)
        if self.dra is not None and state.available:
            self._await_webhook_view(app)
        before = self.counts()
        decided = self.extender_decisions()
        started = time.monotonic()
        self.scale(app, 1)

        def observed() -> dict[str, float]:
            now = self.counts()
            return now if sum(now[p] for p in PATHS) > sum(before[p] for p in PATHS) else {}

        after = waiting.wait_for(
            observed, timeout=180, what=f"{self.name}: actuation of {app}", interval=0.2, ignore=(httpx.HTTPError,)
        )
        seconds = time.monotonic() - started
        grown = [p for p in PATHS if after[p] > before[p]]
        if len(grown) != 1 or sum(after[p] - before[p] for p in PATHS) != 1:
            raise RuntimeError(f"{self.name}: expected one actuation of {app}, metrics went {before!r} -> {after!r}")
        live = [p for p in self.pods(f"app={app}") if not p["metadata"].get("deletionTimestamp")]
        notes = (live[0]["metadata"].get("annotations") or {}) if live else {}
        claim = _claim_choice(self.api, self.namespace, live[0]) if live and self.dra is not None else None
        return {
            "round": round_index,
            "app": app,
            "path": grown[0],
            "claim_alternative": claim,
            "instances_deleted": int(after["evicting"] - before["evicting"]),
            "node": (live[0].get("spec") or {}).get("nodeName") if live else None,
            "gpus": accelerators.parse(notes.get(keys.ACCELERATORS_ANNOTATION)),
            "sleeper_available": state.available,
            "sleeper_certain": state.certain,
            "extender_decision": ",".join(growth(decided, self.extender_decisions())) or None,
            "seconds_scale_to_actuated": round(seconds, 2),
            "hint_best_node": hint_node,
            "hint_best_score": hint_score,
            # What the requester carried in the annotation (nominate and plugin phases; None elsewhere).
            "nominated_node": notes.get(keys.NOMINATED_NODE_ANNOTATION),
        }

    def scale_all_down(self) -> None:
        """Scale every Deployment to 0 and wait until their requesters are gone (engines asleep, launchers free)."""
        for app in self.apps:
            self.scale(app, 0)
        selector = f"app in ({','.join(self.apps)})"
        waiting.wait_for(
            lambda: not self.pods(selector), timeout=180, what=f"{self.name}: requesters gone", interval=0.2
        )

    def run(self, rounds: int, seed: int, deadline: float) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        records: list[dict[str, Any]] = []
        for round_index in range(rounds):
            order = rng.sample(self.apps, len(self.apps))
            for app in order:
                if time.monotonic() > deadline:
                    raise TimeoutError("the benchmark ran past --time-limit")
                record = self.actuate(round_index, app)
                records.append(record)
                _log(
                    f"{self.name} r{round_index} {app}: {record['path']} on {record['node']} {record['gpus']}"
                    f" (sleeper free: {record['sleeper_available']}, certain: {record['sleeper_certain']},"
                    f" extender: {record['extender_decision']})"
                )
            self.scale_all_down()
        return records

    def release_launchers(self) -> None:
        """Delete the phase's launchers (their sleeping engines cost CPU) while the controller still runs."""
        for pod in self.pods(LAUNCHER_SELECTOR):
            with contextlib.suppress(kube.errors.NotFound):
                self.api.delete(resources.PODS, pod["metadata"]["name"], self.namespace)
        waiting.wait_for(
            lambda: not self.pods(LAUNCHER_SELECTOR), timeout=120, what=f"{self.name}: launchers gone", interval=0.5
        )


def _user_template(app: str) -> dict[str, Any]:
    """A requester as a user writes it, with ``gpu-request: dra`` (the webhook converts it)."""
    container = {
        "name": "inference-server",
        "image": "vllm/vllm-openai",
        "command": ["vllm", "serve", app],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    annotations = {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: app, gpu_claim.GPU_REQUEST_ANNOTATION: "dra"}
    return {
        "metadata": {"labels": {"app": app}, "annotations": annotations},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [container]},
    }


def _claim_choice(api: kube.Client, namespace: str, pod: Mapping[str, Any]) -> str | None:
    """Which ``firstAvailable`` alternative the requester's claim got (``sleeper`` or ``any``)."""
    name = gpu_claims.claim_name_of(pod)
    claim = api.get_or_none(RESOURCE_CLAIMS, name, namespace) if name else None
    devices = gpu_claims.allocated_devices(claim) if claim else []
    return devices[0].subrequest if devices else None


# --- the cluster and the FMA scheduler ------------------------------------------------------------


def _install_crds(api: kube.Client) -> None:
    for document in manifests.documents():
        api.create(resources.CUSTOM_RESOURCE_DEFINITIONS, document)

    def established() -> bool:
        for document in manifests.documents():
            crd = api.get(resources.CUSTOM_RESOURCE_DEFINITIONS, document["metadata"]["name"])
            conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") != "True":
                return False
        return True

    waiting.wait_for(established, timeout=60, what="FMA CRDs Established")


def _gpu_map(api: kube.Client) -> tuple[dict[str, int], dict[str, frozenset[str]]]:
    """The launcher's ``--gpu-map-file`` table (UUID -> index) and each node's GPU UUIDs, from ``gpu-map``."""
    table: dict[str, int] = {}
    by_node: dict[str, frozenset[str]] = {}
    for node, value in (api.get(resources.CONFIG_MAPS, "gpu-map", "default").get("data") or {}).items():
        entry = {str(k): int(v) for k, v in json.loads(value).items()}
        table.update(entry)
        by_node[node] = frozenset(entry)
    return table, by_node


def _healthy(url: str, record: processes.ProcessRecord, what: str, verify: bool = True) -> None:
    def ok() -> bool:
        if not processes.is_alive(record):
            raise RuntimeError(f"{what} exited; see {record.log}")
        return httpx.get(f"{url}/healthz", timeout=2, verify=verify).status_code == 200

    waiting.wait_for(ok, timeout=90, what=f"{what} /healthz", ignore=(httpx.HTTPError,))


def _start_extender(stack: contextlib.ExitStack, cluster: control_plane.ClusterState, workdir: pathlib.Path) -> str:
    """Start ``fma-extender`` (all namespaces) and wait until its watches have synced; returns its URL."""
    port = processes.free_port()
    record = processes.spawn(
        "fma-extender",
        [
            sys.executable,
            "-m",
            "extender",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--kubeconfig={cluster.kubeconfig}",
            "--gpu-map-namespace=default",
        ],
        workdir / "extender.log",
    )
    stack.callback(processes.stop, record, grace_seconds=5)
    url = f"http://127.0.0.1:{port}"
    _healthy(url, record, "fma-extender")
    return url


def _start_fma_scheduler(
    stack: contextlib.ExitStack,
    cluster: control_plane.ClusterState,
    workdir: pathlib.Path,
    extender_url: str,
    placement: scheduler_config.Placement = "extender",
    plugin: bool = False,
) -> None:
    """Start an FMA kube-scheduler (the packaged configuration for ``placement``) beside the default one;
    ``plugin``: FMA's kube-scheduler build with the NominatedNode plugin enabled (profile ``PLUGIN_PROFILE``)."""
    kubeconfig = cluster.state_dir / "scheduler.kubeconfig"
    config = scheduler_config.render(
        extender_url,
        kubeconfig=str(kubeconfig),
        leader_election=False,
        placement=placement,
        nominated_node_plugin=plugin,
    )
    name = PLUGIN_PROFILE if plugin else "fma-scheduler" if placement == "extender" else HINT_PHASES[placement]
    config["profiles"][0]["schedulerName"] = name
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = processes.free_port()
    record = processes.spawn(
        "fma-scheduler",
        [
            str(binaries.ensure_fma_scheduler() if plugin else binaries.locate().kube_scheduler),
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
    stack.callback(processes.stop, record, grace_seconds=5)
    _healthy(f"https://127.0.0.1:{port}", record, name, verify=False)


def _start_webhook(
    stack: contextlib.ExitStack, cluster: control_plane.ClusterState, workdir: pathlib.Path
) -> cluster_facts.SleeperHints:
    """The real webhook in-process (``gpu_claims: dra``, ``placement: hints``), registered by URL for the
    DRA phases' namespaces; returns its sleeper source once its caches have synced."""
    cert_dir = workdir / "webhook-certs"
    cert_dir.mkdir()
    identity = issuer.ServingIdentity("fma-webhook", ip_addresses=("127.0.0.1",))
    policy = rotation_plan.Policy(identity=identity, overlap=datetime.timedelta(0))
    renewal.run(store.FileStore(cert_dir), policy, datetime.datetime.now(datetime.UTC))
    context = reloading_context.ReloadingContext(cert_dir / store.TLS_CERT, cert_dir / store.TLS_KEY)
    context.start(5.0)
    stack.callback(context.stop)
    configured = webhook_settings.Settings(
        kubeconfig=str(cluster.kubeconfig),
        scheduler_name=HINT_PHASES["hints"],
        placement="hints",
        gpu_claims="dra",
        gpu_map_namespace="default",
        gpu_allocation="lowest-index",
    )
    exposition = webhook_metrics.Metrics()
    lookups_api = kube.connect(str(cluster.kubeconfig), field_manager="fma-webhook")
    hints = server.sleeper_hints(configured, lookups_api, exposition)
    lookups = cluster_facts.ClusterLookups(
        lookups_api, timeout=1.0, hints=hints, gpu_claims=server.gpu_claims_options(configured)
    )
    lookups.start()
    stack.callback(lookups.stop)
    waiting.wait_for(lambda: lookups.synced and hints.cache.synced, timeout=60, what="the webhook's caches")
    threaded = server.ThreadedServer.start(
        webhook_app.create_app(server.build_state(configured, lookups, exposition)), context.context
    )
    stack.callback(threaded.stop)
    api = kube.connect(str(cluster.kubeconfig), field_manager="fma-bench")
    stack.callback(api.close)
    api.create(
        resources.MUTATING_WEBHOOK_CONFIGURATIONS,
        configuration.render(
            (cert_dir / store.BUNDLE).read_bytes(),
            url=f"https://127.0.0.1:{threaded.port}/mutate",
            name="fma-bench-dra",
            namespace_selector={"matchLabels": {DRA_LABEL: "true"}},
        ),
    )
    return hints


def _extender_decisions(url: str) -> dict[str, float]:
    decisions: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith('fma_extender_decisions_total{placement="'):
            head, value = line.rsplit(" ", 1)
            decisions[head.split('"')[1]] = float(value)
    return decisions


def _run(args: argparse.Namespace, root: pathlib.Path) -> dict[str, Any]:
    deadline = time.monotonic() + args.time_limit
    bins = binaries.ensure_all()
    with contextlib.ExitStack() as stack:
        _log("starting the control plane")
        cluster = control_plane.up(
            control_plane.ClusterOptions(state_dir=root / "cluster", apiserver_port=None, binaries=bins)
        )
        stack.callback(control_plane.down, cluster.state_dir, grace_seconds=5)
        options = simnode_mod.SimnodeOptions(
            nodes=args.nodes,
            gpus_per_node=args.gpus_per_node,
            gpu_map_namespace="default",
            # A prefix of its own: the node's loopback blocks follow from it, and another run on this machine
            # (another benchmark, a test session) must not hand out the same Pod IPs.
            node_prefix=f"hot{os.getpid()}",
        )
        simnode = simnode_mod.spawn(cluster, options, root / "simnode.log")
        stack.callback(simnode_mod.stop, simnode, simnode_mod.state_dir_of(cluster, options), grace_seconds=10)
        simnode_mod.wait_ready(cluster, options, simnode, timeout=120)
        if args.dra:
            # A state directory of its own: stopping a simnode stops every process recorded in its directory.
            dra_options = dataclasses.replace(
                options, node_prefix=f"hotdra{os.getpid()}", gpu_mode="dra", state_dir=root / "simnode-dra"
            )
            dra_simnode = simnode_mod.spawn(cluster, dra_options, root / "simnode-dra.log")
            stack.callback(
                simnode_mod.stop, dra_simnode, simnode_mod.state_dir_of(cluster, dra_options), grace_seconds=10
            )
            simnode_mod.wait_ready(cluster, dra_options, dra_simnode, timeout=120)
        api = kube.connect(str(cluster.kubeconfig), field_manager="fma-bench")
        stack.callback(api.close)
        _install_crds(api)
        table, gpus_by_node = _gpu_map(api)
        gpu_map_file = root / "gpu-map.json"
        gpu_map_file.write_text(json.dumps(table))
        _log("starting fma-extender and the FMA scheduler")
        extender_url = _start_extender(stack, cluster, root)
        _start_fma_scheduler(stack, cluster, root, extender_url)
        phases = list(PHASES)
        hints: cluster_facts.SleeperHints | None = None
        if args.placements:
            cache = sleeper_cache.SleeperCache(api, gpu_map_namespace="default")
            cache.start()
            stack.callback(cache.stop)
            if cache.wait_synced(60):
                raise RuntimeError("the hints' sleeper cache did not sync")
            policy = sleeper_scoring.Policy(allocation=sleeper_scoring.Allocation.LOWEST_INDEX)
            hints = cluster_facts.SleeperHints(cache, policy, limit=16)
            for placement in args.placements:
                _start_fma_scheduler(stack, cluster, root, extender_url, placement)
                phases.append((placement, HINT_PHASES[placement]))
        if args.nominate:
            if hints is None:
                raise RuntimeError("--nominate needs the hints' sleeper cache: keep a --placements value")
            if "hints" not in args.placements:
                _start_fma_scheduler(stack, cluster, root, extender_url, "hints")
            phases.append((NOMINATE_PHASE, HINT_PHASES["hints"]))
        if args.plugin:
            if hints is None:
                raise RuntimeError("--plugin needs the hints' sleeper cache: keep a --placements value")
            _start_fma_scheduler(stack, cluster, root, extender_url, "hints", plugin=True)
            phases.append((PLUGIN_PHASE, PLUGIN_PROFILE))
        dra_hints: cluster_facts.SleeperHints | None = None
        if args.dra:
            if "hints" not in args.placements and not args.nominate:
                _start_fma_scheduler(stack, cluster, root, extender_url, "hints")
            dra_hints = _start_webhook(stack, cluster, root)
            phases.append((DRA_PHASE, HINT_PHASES["hints"]))
        results: dict[str, Any] = {}
        for models, (label, scheduler) in itertools.product(args.models, phases):
            name = f"{label.replace('+', '-')}-{models}m"
            phase = Phase(
                api,
                cluster,
                root,
                name=name,
                scheduler=scheduler,
                models=models,
                gpu_map_file=gpu_map_file,
                gpus_by_node=gpus_by_node,
                extender_decisions=lambda: _extender_decisions(extender_url),
                hints=hints if label in HINT_PHASES or label in (NOMINATE_PHASE, PLUGIN_PHASE) else None,
                dra=dra_hints if label == DRA_PHASE else None,
                nominate="gate" if label == NOMINATE_PHASE else "plugin" if label == PLUGIN_PHASE else "off",
            )
            stack.callback(phase.stop_controller)
            _log(f"phase {name}: scheduler {scheduler}, namespace {phase.namespace}")
            phase.setup()
            decisions_before = _extender_decisions(extender_url)
            records = phase.run(args.rounds, args.seed, deadline)
            decisions_after = _extender_decisions(extender_url)
            nominations = phase.nominations()
            phase.release_launchers()
            phase.stop_controller()
            results[name] = {
                "row": {"models": models, "phase": label, **summarise(scheduler, records)},
                "extender_decisions": growth(decisions_before, decisions_after),
                "controller_nominations": nominations,
                "actuations": records,
            }
        return results


def _print_table(rows: list[dict[str, Any]]) -> None:
    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    print(
        f"{'models':>6}  {'phase':<16}{'scheduler':<19}{'actuations':>11}{'hot':>5}{'warm':>6}{'cold':>6}"
        f"{'hot frac':>10}{'sleeper free':>14}{'hot frac there':>16}{'certain':>9}{'hot frac there':>16}"
        f"{'hot hints not hot':>19}{'act/min':>9}{'mean s':>8}"
    )
    for row in rows:
        stale = f"{row['hot_hint_not_hot']}/{row['with_a_hot_hint']}" if "with_a_hint" in row else "-"
        print(
            f"{row['models']:>6}  {row.get('phase', '-'):<16}{row['scheduler']:<19}{row['actuations']:>11}"
            f"{row['hot']:>5}{row['warm']:>6}{row['cold']:>6}"
            f"{show(row['hot_fraction']):>10}{row['with_sleeper_free']:>14}"
            f"{show(row['hot_fraction_sleeper_free']):>16}{row['with_sleeper_certain']:>9}"
            f"{show(row['hot_fraction_sleeper_certain']):>16}"
            f"{stale:>19}{show(row.get('actuations_per_minute')):>9}"
            f"{show(row.get('mean_seconds_scale_to_actuated')):>8}"
        )


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--gpus-per-node", type=int, default=2)
    parser.add_argument(
        "--models",
        type=int,
        nargs="+",
        default=[3, 5],
        help="scenarios: how many ISCs / Deployments (1 GPU each); each scenario runs both phases",
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--placements",
        nargs="*",
        choices=sorted(HINT_PHASES),
        default=sorted(HINT_PHASES),
        help="hinted phases after default and fma (none: --placements with no value)",
    )
    parser.add_argument(
        "--nominate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add a nominate phase per scenario (hints plus the nomination gate, lifted by the controllers)",
    )
    parser.add_argument(
        "--plugin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add a plugin phase per scenario (hints plus the nominated-node annotation, FMA's kube-scheduler"
        " build with the NominatedNode plugin)",
    )
    parser.add_argument(
        "--dra",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add a DRA simnode and a dra phase per scenario (claims through the real webhook)",
    )
    parser.add_argument("--seed", type=int, default=1, help="draws the scale-up order of each round")
    parser.add_argument("--time-limit", type=float, default=1500.0, help="seconds for the whole run")
    parser.add_argument("--out", type=pathlib.Path, default=RESULT)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # so the ExitStack stops every process on a plain kill too
    started = time.monotonic()
    run = run_record.start()
    with tempfile.TemporaryDirectory(prefix="fma-bench-hot-") as tmp:
        results = _run(args, pathlib.Path(tmp))
    rows = [phase["row"] for phase in results.values()]
    _print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "hot_hit_rate",
                "run": run_record.finish(run),
                "host": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
                "conditions": {
                    "nodes": args.nodes,
                    "gpus_per_node": args.gpus_per_node,
                    "gpu_allocation": "lowest free index first (simnode default)",
                    "placements": [
                        "extender",
                        *args.placements,
                        *(["hints + nominate"] if args.nominate else []),
                        *(["hints + nominate: plugin (FMA's kube-scheduler build)"] if args.plugin else []),
                    ],
                    "dra": (
                        f"{args.nodes} more nodes x {args.gpus_per_node} GPUs as DRA devices only; requesters"
                        " converted by the real webhook (gpu_claims: dra, placement: hints), claims kept by"
                        " the controllers, allocated by the hints kube-scheduler's DRA plugin"
                        if args.dra
                        else None
                    ),
                    "models_per_scenario": args.models,
                    "gpus_per_requester": 1,
                    "max_instances": 2,
                    "rounds": args.rounds,
                    "seed": args.seed,
                    "populator": False,
                    "engine": samples.engine_sim_options("model-N"),
                    "wall_seconds": round(time.monotonic() - started, 1),
                },
                "target": "hot fraction >= 0.9 with the FMA scheduler where a matching sleeper's GPUs are free",
                "rows": rows,
                "phases": results,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
