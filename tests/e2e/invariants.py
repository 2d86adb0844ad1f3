"""The checks every e2e scenario ends with (docs/e2e.md, "The common checks").

* **No binding lost or duplicated.**  Every provider's ``requester`` record
  names a live requester whose ``dual`` label names that provider back; every
  requester's ``dual`` label names a provider that records its UID; no two
  providers record the same requester; every Ready requester is bound.
* **No GPU used by two awake instances.**  Each launcher's instance list (its
  own API) and each engine's ``/is_sleeping`` give the awake engines and their
  GPUs; a GPU may carry at most one, and an awake engine must be the bound
  engine of a requester holding exactly those GPUs.  Live requesters never
  share a GPU either.
* **No orphan engine process.**  Every engine process of this session on the
  machine belongs to a live provider Pod, and a launcher runs no more engine
  processes than its API lists running instances.
* **Status and Events explain.**  Every bound Ready requester has an
  ``Actuated{Hot,Warm,Cold}`` Event; every requester whose ``status``
  annotation carries errors has an ``ActuationFailed`` Event; every
  InferenceServerConfig's status was written for its current generation.

``violations`` computes the list of what is wrong now; ``check_all`` waits
(on the watch) until the list is empty within a bound, which is also the
"converges without a human" check, and fails with the list otherwise.
Transient states during an actuation are allowed; a stable wrong state is
not.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from devcluster import helm_release

from .system import E2ESystem, P

__all__ = ["check_all", "violations"]

_CONVERGE_S = 60.0


def _meta(pod: Mapping[str, Any]) -> dict[str, Any]:
    return dict(pod.get("metadata") or {})


def _labels(pod: Mapping[str, Any]) -> dict[str, str]:
    return dict(_meta(pod).get("labels") or {})


def _notes(pod: Mapping[str, Any]) -> dict[str, str]:
    return dict(_meta(pod).get("annotations") or {})


def _is_requester(pod: Mapping[str, Any]) -> bool:
    notes = _notes(pod)
    return bool(notes.get(P + "inference-server-config") or notes.get(P + "server-patch"))


def _is_launcher(pod: Mapping[str, Any]) -> bool:
    return P + "launcher-config-name" in _labels(pod)


def _is_direct_provider(pod: Mapping[str, Any]) -> bool:
    return P + "nominal" in _notes(pod) and not _is_requester(pod)


def binding_violations(pods: list[dict[str, Any]]) -> list[str]:
    """Lost, dangling or duplicated bindings among the namespace's Pods (pure)."""
    problems = []
    by_name = {_meta(p)["name"]: p for p in pods}
    claimed: dict[str, list[str]] = collections.defaultdict(list)
    for provider in pods:
        record = _notes(provider).get(P + "requester")
        if not record:
            continue
        name = _meta(provider)["name"]
        parts = record.split(" ")
        if len(parts) != 2:
            problems.append(f"provider {name} has a malformed binding record {record!r}")
            continue
        uid, requester_name = parts
        claimed[uid].append(name)
        requester = by_name.get(requester_name)
        if requester is None or _meta(requester).get("uid") != uid:
            problems.append(f"provider {name} is bound to requester {requester_name} ({uid}), which is gone")
            continue
        if _labels(requester).get(P + "dual") != name:
            problems.append(f"requester {requester_name} does not name its provider {name} in its dual label")
        if _labels(provider).get(P + "dual") != requester_name:
            problems.append(f"provider {name} does not name its requester {requester_name} in its dual label")
    for uid, providers in claimed.items():
        if len(providers) > 1:
            problems.append(f"requester {uid} is bound to several providers: {sorted(providers)}")
    for requester in pods:
        if not _is_requester(requester):
            continue
        requester_name, requester_uid = _meta(requester)["name"], _meta(requester).get("uid")
        dual = _labels(requester).get(P + "dual")
        if dual:
            named = by_name.get(dual)
            recorded = _notes(named).get(P + "requester", "") if named else ""
            if recorded.split(" ")[0] != requester_uid:
                problems.append(f"requester {requester_name} names provider {dual}, which does not record it")
        elif helm_release.pod_ready(requester):
            problems.append(f"requester {requester_name} is Ready but bound to no provider")
    return problems


def gpu_violations(
    pods: list[dict[str, Any]], awake: list[tuple[str, str, list[str]]], launcher_errors: list[str]
) -> list[str]:
    """GPUs used twice, awake engines nobody asked for (pure).

    ``awake`` lists (provider name, engine ID, GPU UUIDs) of every awake engine.
    """
    problems = list(launcher_errors)
    by_name = {_meta(p)["name"]: p for p in pods}
    holders: dict[str, list[str]] = collections.defaultdict(list)
    for provider, engine, gpus in awake:
        for gpu in gpus:
            holders[gpu].append(f"{provider}/{engine}")
        pod = by_name.get(provider)
        requester = by_name.get(_labels(pod).get(P + "dual", "")) if pod else None
        if pod is None or requester is None:
            problems.append(f"engine {provider}/{engine} is awake on {gpus} but its provider is bound to no requester")
            continue
        if _is_launcher(pod) and _notes(pod).get(P + "instance-id") != engine:
            problems.append(f"engine {provider}/{engine} is awake but is not the launcher's bound instance")
        wanted = [g for g in _notes(requester).get(P + "accelerators", "").split(",") if g]
        if sorted(wanted) != sorted(gpus):
            problems.append(
                f"engine {provider}/{engine} is awake on {gpus}, its requester "
                f"{_meta(requester)['name']} holds {wanted}"
            )
    for gpu, users in holders.items():
        if len(users) > 1:
            problems.append(f"GPU {gpu} is used by {len(users)} awake engines: {sorted(users)}")
    requester_gpus: dict[str, list[str]] = collections.defaultdict(list)
    for pod in pods:
        if _is_requester(pod) and not _meta(pod).get("deletionTimestamp"):
            for gpu in _notes(pod).get(P + "accelerators", "").split(","):
                if gpu:
                    requester_gpus[gpu].append(_meta(pod)["name"])
    for gpu, users in requester_gpus.items():
        if len(users) > 1:
            problems.append(f"GPU {gpu} is held by several live requesters: {sorted(users)}")
    return problems


def _awake_engines(
    system: E2ESystem, pods: list[dict[str, Any]]
) -> tuple[list[tuple[str, str, list[str]]], list[str], dict[str, int]]:
    """(awake engines, problems reaching them, running instances per launcher), from the launchers' APIs
    and the engines themselves."""
    awake: list[tuple[str, str, list[str]]] = []
    problems: list[str] = []
    running: dict[str, int] = {}
    for pod in pods:
        meta, ip = _meta(pod), (pod.get("status") or {}).get("podIP")
        if meta.get("deletionTimestamp") or not ip or not helm_release.pod_ready(pod):
            continue
        if _is_launcher(pod):
            try:
                instances = system.launcher_instances(pod)
            except httpx.HTTPError as exc:
                problems.append(f"launcher {meta['name']} does not answer its API: {exc!r}")
                continue
            running[meta["name"]] = sum(1 for i in instances if i["status"] == "running")
            for instance in instances:
                if instance["status"] != "running":
                    continue
                port = int((instance.get("annotations") or {}).get("inference-port") or 0)
                try:
                    sleeping = system.engine_sleeping(ip, port)
                except httpx.HTTPError:
                    continue  # still starting: it cannot serve, so it uses no GPU as an awake engine yet
                if not sleeping:
                    awake.append((meta["name"], instance["instance_id"], list(instance.get("gpu_uuids") or [])))
        elif _is_direct_provider(pod):
            try:
                sleeping = system.engine_sleeping(ip, 8000)
            except httpx.HTTPError as exc:
                problems.append(f"direct provider {meta['name']} does not answer /is_sleeping: {exc!r}")
                continue
            if not sleeping:
                gpus = [g for g in _notes(pod).get(P + "accelerators", "").split(",") if g]
                awake.append((meta["name"], "engine", gpus))
    return awake, problems, running


def orphan_violations(system: E2ESystem, pods: list[dict[str, Any]], running: Mapping[str, int]) -> list[str]:
    """Engine processes of this session that no live provider accounts for."""
    problems = []
    live = {_meta(p)["name"] for p in pods if not _meta(p).get("deletionTimestamp")}
    per_launcher: dict[str, list[int]] = collections.defaultdict(list)
    for process in system.engine_processes():
        if process.role == "detached" or process.pod not in live:
            problems.append(f"engine process {process.pid} of Pod {process.pod} outlives its Pod or launcher")
        elif process.role == "instance":
            per_launcher[process.pod].append(process.pid)
    for launcher, pids in per_launcher.items():
        listed = running.get(launcher)
        if listed is not None and len(pids) > listed:
            problems.append(
                f"launcher {launcher} runs {len(pids)} engine processes {sorted(pids)}"
                f" but lists {listed} running instances"
            )
    return problems


def explanation_violations(system: E2ESystem, pods: list[dict[str, Any]]) -> list[str]:
    """Requesters without the Event that explains them; ISCs whose status is not for their spec."""
    problems = []
    for pod in pods:
        if not _is_requester(pod) or _meta(pod).get("deletionTimestamp"):
            continue
        name = _meta(pod)["name"]
        reasons = system.watch.reasons_of(pod)
        actuated = any(r in ("ActuatedHot", "ActuatedWarm", "ActuatedCold") for r in reasons)
        if _labels(pod).get(P + "dual") and helm_release.pod_ready(pod) and not actuated:
            problems.append(f"requester {name} is Ready and bound but has no Actuated* Event (has {reasons})")
        reported = _notes(pod).get(P + "status")
        if reported:
            errors = (json.loads(reported) or {}).get("Errors")
            if errors and "ActuationFailed" not in reasons:
                problems.append(f"requester {name} reports {errors} but has no ActuationFailed Event")
    for isc in system.watch.iscs.items():
        meta, written = isc["metadata"], isc.get("status") or {}
        if written.get("observedGeneration") != meta.get("generation"):
            problems.append(
                f"InferenceServerConfig {meta['name']} status is for generation {written.get('observedGeneration')},"
                f" its spec is at {meta.get('generation')}"
            )
    return problems


def violations(system: E2ESystem) -> list[str]:
    """Everything the common checks find wrong right now (reads the caches, launchers, engines, /proc)."""
    pods = system.watch.all_pods()
    problems = binding_violations(pods)
    awake, reach, running = _awake_engines(system, pods)
    problems += gpu_violations(pods, awake, reach)
    problems += orphan_violations(system, pods, running)
    problems += explanation_violations(system, pods)
    return problems


def check_all(system: E2ESystem, *, timeout: float = _CONVERGE_S) -> None:
    """Wait until the common checks all hold (the system converged); fail listing what does not."""

    def clean() -> bool:
        found = violations(system)
        assert not found, "\n".join(found)
        return True

    try:
        system.wait(clean, timeout=timeout, what="the common checks (bindings, GPUs, processes, Events) to hold")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\ncontrollers:\n{system.controllers_log()[-6000:]}") from None
    system.last_check = time.monotonic()
