"""Group A of docs/e2e.md, "The scenarios": launcher mode through the installed chart, in upstream's order (A0-A13).

The scenarios form one story on one *test node* (found by A0): a set of
requesters (the Deployment ``a-set``, pinned to the test node) moves between
three InferenceServerConfigs and the same launcher serves it hot, warm or
after reclaiming a victim.  Each test first checks the state it builds on
(its preconditions, as the previous scenario left it) and waits on watches
with the bound stated at each step; each ends with the common checks
(``invariants.check_all``).

ISC1 and ISC3 listen on the same port (8005) and ISC2 on another (8006):
A4's second set collides with ISC1 on 8005, A8 reclaims ISC1 as the victim
of ISC3's port clash, so that ISC2's sleeper survives for A9's hot wake, as
upstream's list expects.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import kube
from devcluster import helm_release
from kube import resources
from tests.integration.chart import identities
from tests.integration.chart import test_policies as policy_cases

from . import invariants, manifests
from .system import DEPLOYMENTS, E2ESystem, P

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# Bounds of each kind of step (seconds), for 2 shared CPU cores.
COLD_S = 150.0  # a requester Ready through a launcher that had to start
WARM_S = 90.0  # a new instance in a running launcher
HOT_S = 30.0  # a sleeping instance woken (upstream's bound after a controller restart)
GONE_S = 90.0  # a scaled-down requester unbound, its instance asleep, the Pod removed
LAUNCHERS_S = 150.0  # the populator's launchers Ready on every GPU node

LC = "e2e-lc"
LPP = "e2e-lpp"
SET = "a-set"
TWIN = "a-twin"
LC_LABEL = ("e2e.fma.llm-d.ai/lc-label", "from-lc")
LC_NOTE = ("e2e.fma.llm-d.ai/lc-note", "from-lc")
ISC_NOTE = "e2e.fma.llm-d.ai/isc-note"
ISCS = {
    "isc1": (8005, "model-one"),
    "isc2": (8006, "model-two"),
    "isc3": (8005, "model-three"),
}


@dataclasses.dataclass
class Story:
    """What the scenarios learn and hand on: the test node, the launcher, the instances."""

    test_node: str = ""
    launcher: str = ""
    gpus: str = ""
    instance_of: dict[str, str] = dataclasses.field(default_factory=dict)


@pytest.fixture(scope="module")
def story(e2e: E2ESystem) -> Iterator[Story]:
    """The story's record; afterwards, everything group A created is removed (launchers included)."""
    told = Story()
    yield told
    for name in (SET, TWIN, "a0-probe"):
        e2e.delete(DEPLOYMENTS, name)
    e2e.delete(resources.PODS, "a0-probe", grace_period_seconds=0)
    for app in (SET, TWIN):
        e2e.wait_no_requesters(app, timeout=GONE_S)
    e2e.delete(resources.LAUNCHER_POPULATION_POLICIES, LPP)
    e2e.wait(lambda: not e2e.launchers(), timeout=GONE_S, what="group A's launchers deleted by the populator")
    for isc in ISCS:
        e2e.delete(resources.INFERENCE_SERVER_CONFIGS, isc)
    e2e.delete(resources.LAUNCHER_CONFIGS, LC)


def _isc(name: str) -> dict[str, Any]:
    port, model = ISCS[name]
    return manifests.inference_server_config(
        name,
        launcher_config_name=LC,
        options=manifests.engine_options(model),
        port=port,
        labels={"model": model},
        annotations={ISC_NOTE: model},
    )


def _switch(e2e: E2ESystem, isc: str) -> None:
    """Scale the set to 0, wait until its requester is gone, point it at ``isc``, scale to 1."""
    e2e.scale(SET, 0)
    e2e.wait_no_requesters(SET, timeout=GONE_S)
    e2e.set_template_annotation(SET, P + "inference-server-config", isc)
    e2e.scale(SET, 1)


def _instances(e2e: E2ESystem, launcher: str) -> list[dict[str, Any]]:
    pod = e2e.pod(launcher)
    assert pod is not None, f"launcher {launcher} is gone"
    return e2e.launcher_instances(pod)


def _sleeping(e2e: E2ESystem, launcher: str, isc: str) -> bool:
    pod = e2e.pod(launcher)
    assert pod is not None
    return e2e.engine_sleeping(pod["status"]["podIP"], ISCS[isc][0])


def _require(condition: bool, what: str) -> None:
    """A scenario's precondition (left by the scenario before it)."""
    assert condition, f"precondition not met: {what}"


def test_a0_gpu_probe(e2e: E2ESystem, story: Story) -> None:
    """A Pod asking for 2 GPUs lands on some node; that node becomes the test node."""
    probe = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "a0-probe"},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "probe",
                    "image": "busybox",
                    "command": ["python3", "-c", "import signal; signal.pause()"],
                    "resources": {"limits": {"nvidia.com/gpu": "2"}},
                }
            ],
        },
    }
    e2e.create(resources.PODS, probe)
    running = e2e.wait(
        lambda: (p := e2e.pod("a0-probe")) and p.get("status", {}).get("phase") == "Running" and p,
        timeout=60,
        what="the GPU probe Running",
    )
    story.test_node = running["spec"]["nodeName"]
    assert story.test_node in e2e.node_names
    e2e.delete(resources.PODS, "a0-probe", grace_period_seconds=0)
    e2e.wait(lambda: e2e.pod("a0-probe") is None, timeout=60, what="the GPU probe gone")
    invariants.check_all(e2e)


def test_a1_basic_launcher_pod_creation(e2e: E2ESystem, story: Story) -> None:
    """3 ISCs, one LC (maxInstances 2, template label and annotation), one launcher per GPU node; a set binds."""
    _require(bool(story.test_node), "A0 found the test node")
    e2e.create(
        resources.LAUNCHER_CONFIGS,
        manifests.launcher_config(
            LC,
            service_account=e2e.launcher_service_account,
            run_token=e2e.run_token,
            max_instances=2,
            template_labels=dict([LC_LABEL]),
            template_annotations=dict([LC_NOTE]),
        ),
    )
    for name in ISCS:
        e2e.create(resources.INFERENCE_SERVER_CONFIGS, _isc(name))
    e2e.create(
        resources.LAUNCHER_POPULATION_POLICIES,
        manifests.launcher_population_policy(LPP, launcher_config_name=LC, count=1),
    )

    def one_ready_per_node() -> bool:
        ready = {
            p["spec"]["nodeSelector"]["kubernetes.io/hostname"] for p in e2e.launchers() if helm_release.pod_ready(p)
        }
        return ready >= set(e2e.node_names)

    e2e.wait(one_ready_per_node, timeout=LAUNCHERS_S, what="a Ready launcher on every GPU node")

    e2e.create(DEPLOYMENTS, manifests.vllm_deployment(SET, "isc1", node=story.test_node))
    requester, launcher = e2e.wait_bound(SET, timeout=COLD_S)
    rmeta, lmeta = requester["metadata"], launcher["metadata"]
    story.launcher, story.gpus = lmeta["name"], rmeta["annotations"][P + "accelerators"]
    story.instance_of["isc1"] = rmeta["labels"][P + "instance"]
    assert requester["spec"]["nodeName"] == story.test_node
    assert requester["spec"]["schedulerName"] == "fma-scheduler"
    assert rmeta["labels"][P + "dual"] == lmeta["name"]
    assert lmeta["labels"][P + "dual"] == rmeta["name"]
    assert lmeta["annotations"][P + "requester"] == f"{rmeta['uid']} {rmeta['name']}"
    # The ISC's routing label and annotation (once awake) and the LC template's label and annotation.
    e2e.wait(
        lambda: (
            (pod := e2e.pod(lmeta["name"]))
            and pod["metadata"]["labels"].get("model") == "model-one"
            and pod["metadata"]["annotations"].get(ISC_NOTE) == "model-one"
        ),
        timeout=HOT_S,
        what="the ISC's routing label and annotation on the launcher",
    )
    launcher = e2e.pod(lmeta["name"]) or {}
    assert launcher["metadata"]["labels"][LC_LABEL[0]] == LC_LABEL[1]
    assert launcher["metadata"]["annotations"][LC_NOTE[0]] == LC_NOTE[1]
    assert launcher["metadata"]["labels"][P + "sleeping"] == "false"
    gpus = rmeta["annotations"][P + "accelerators"]
    assert gpus.startswith("GPU-")
    assert "," not in gpus
    assert gpus in e2e.gpu_map()[story.test_node]
    # The engine runs as a process of the launcher's (what the orphan check counts on).
    engines = [p for p in e2e.engine_processes() if p.pod == lmeta["name"]]
    assert [p.role for p in engines] == ["instance"], f"one engine process of {lmeta['name']}, found {engines}"
    # The populator's idle launcher took the instance: a warm actuation.
    assert e2e.actuation_reason(requester) == "ActuatedWarm"
    invariants.check_all(e2e)


def test_a2_lpp_launcher_config_names_are_unique(e2e: E2ESystem) -> None:
    """The apiserver rejects an LPP whose countForLauncher repeats a launcherConfigName."""
    policy = manifests.launcher_population_policy("a2-duplicate", launcher_config_name=LC, count=1)
    policy["spec"]["countForLauncher"].append({"launcherConfigName": LC, "launcherCount": 2})
    with pytest.raises(kube.errors.Invalid) as raised:
        e2e.create(resources.LAUNCHER_POPULATION_POLICIES, policy)
    assert "Duplicate value" in str(raised.value), raised.value
    assert e2e.api.get_or_none(resources.LAUNCHER_POPULATION_POLICIES, "a2-duplicate", e2e.namespace) is None
    invariants.check_all(e2e)


def test_a3_admission_policies(e2e: E2ESystem) -> None:
    """The admission policies' 16 conformance cases (those of tests/integration/chart/test_policies.py).

    The policies are in docs/protocol.md, "Admission"; here they run against the e2e release.
    """
    ns = f"e2e-vap-{uuid.uuid4().hex[:6]}"
    api = e2e.api
    api.create(resources.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        for account in ("rel-fma-controllers", "fma-controllers"):
            api.create(resources.SERVICE_ACCOUNTS, {"metadata": {"name": account}}, ns)
        rule = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch", "delete"]}
        api.create(policy_cases.RBAC, {"metadata": {"name": "pod-editor"}, "rules": [rule]}, ns)
        subjects = [
            {"kind": "ServiceAccount", "name": a, "namespace": ns} for a in ("rel-fma-controllers", "fma-controllers")
        ]
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-editor"}
        api.create(
            policy_cases.RBAC_BINDING,
            {"metadata": {"name": "pod-editor"}, "subjects": subjects, "roleRef": role_ref},
            ns,
        )

        def cast(suffix: str) -> dict[str, dict[str, Any]]:
            pods = policy_cases.conformance_pods(suffix)
            for body in pods.values():
                api.create(resources.PODS, body, ns)
            return pods

        user_cast = cast("user")
        checked = 0
        with e2e.cluster.http_client() as admin:
            # Cases 1-6, 11, 12: a user is denied, and the Pod is unchanged.
            for param in policy_cases.DENIED:
                role, patch, policy = param.values
                target = policy_cases.name(user_cast, role)
                policy_cases.denied(
                    identities.patch_pod(admin, ns, target, patch), policy, policy_cases.MESSAGES[policy]
                )
                current = api.get(resources.PODS, target, ns)["metadata"]
                wanted = user_cast[role]["metadata"]
                assert (current.get("labels") or {}) == wanted["labels"], param.id
                assert (current.get("annotations") or {}) == wanted["annotations"], param.id
                checked += 1
            # Cases 7-10 and 15: allowed.
            for param in policy_cases.ALLOWED:
                role, patch = param.values
                policy_cases.allowed(identities.patch_pod(admin, ns, policy_cases.name(user_cast, role), patch))
                checked += 1
            # Case 16: deleting a bound launcher is not matched.
            deleting = cast("delete")
            response = admin.delete(f"/api/v1/namespaces/{ns}/pods/{policy_cases.name(deleting, 'launcher')}")
            assert response.status_code == 200, response.text
            checked += 1
        # Case 13: the controllers' account (…-fma-controllers) may do cases 1-6.
        exempt = cast("exempt")
        with identities.client(e2e.cluster, identities.token(e2e.cluster, ns, "rel-fma-controllers")) as controllers:
            for param in policy_cases.DENIED[:6]:
                role, patch, _ = param.values
                policy_cases.allowed(identities.patch_pod(controllers, ns, policy_cases.name(exempt, role), patch))
        checked += 1
        # Case 14: "fma-controllers" without the dash is not exempt.
        lookalike = cast("lookalike")
        with identities.client(e2e.cluster, identities.token(e2e.cluster, ns, "fma-controllers")) as client:
            patch = {"metadata": {"annotations": {P + "requester": "xyz patched-requester"}}}
            response = identities.patch_pod(client, ns, policy_cases.name(lookalike, "idle-launcher"), patch)
            immutable = policy_cases.IMMUTABLE
            policy_cases.denied(response, immutable, policy_cases.MESSAGES[immutable])
        checked += 1
        assert checked >= 16
    finally:
        api.delete(resources.NAMESPACES, ns)
    invariants.check_all(e2e)


def test_a4_same_node_port_collision(e2e: E2ESystem, story: Story) -> None:
    """A second set of ISC1 (same port) on the test node binds to a different launcher, on other GPUs."""
    _require(e2e.bound_requester(SET) is not None, "A1's set is Ready and bound")
    first = e2e.bound_requester(SET) or {}
    e2e.create(DEPLOYMENTS, manifests.vllm_deployment(TWIN, "isc1", node=story.test_node))
    twin, twin_launcher = e2e.wait_bound(TWIN, timeout=COLD_S)
    assert twin_launcher["metadata"]["name"] != story.launcher, "port 8005 is taken on the first launcher"
    assert twin["spec"]["nodeName"] == story.test_node
    assert twin["metadata"]["annotations"][P + "accelerators"] != first["metadata"]["annotations"][P + "accelerators"]
    assert e2e.bound_requester(SET) is not None, "the first set stays Ready and bound"
    assert e2e.actuation_reason(twin) == "ActuatedCold", "no launcher on the node had room: a new one was created"
    invariants.check_all(e2e)
    e2e.delete(DEPLOYMENTS, TWIN)
    e2e.wait_no_requesters(TWIN, timeout=GONE_S)


def test_a5_wake_fast_path(e2e: E2ESystem, story: Story) -> None:
    """Scale to 0: the launcher stays, unbound, without the ISC's metadata; scale to 1: the same instance, hot."""
    _require(e2e.bound_requester(SET) is not None and bool(story.launcher), "A1's set bound to the story's launcher")
    e2e.scale(SET, 0)
    e2e.wait_no_requesters(SET, timeout=GONE_S)
    launcher = e2e.pod(story.launcher)
    assert launcher is not None, "the launcher stays"
    labels, notes = launcher["metadata"]["labels"], launcher["metadata"]["annotations"]
    assert P + "requester" not in notes, "unbound"
    assert P + "dual" not in labels, "unbound"
    assert "model" not in labels, "the ISC's routing label is removed"
    assert ISC_NOTE not in notes, "the ISC's routing annotation is removed"
    assert labels[LC_LABEL[0]] == LC_LABEL[1], "the LC's label is kept"
    assert notes[LC_NOTE[0]] == LC_NOTE[1], "the LC's annotation is kept"
    assert labels[P + "sleeping"] == "true"
    assert [i["instance_id"] for i in _instances(e2e, story.launcher)] == [story.instance_of["isc1"]]
    assert _sleeping(e2e, story.launcher, "isc1")

    e2e.scale(SET, 1)
    requester, launcher = e2e.wait_bound(SET, timeout=HOT_S)
    assert requester["metadata"]["annotations"][P + "accelerators"] == story.gpus, "the same GPU"
    assert launcher["metadata"]["name"] == story.launcher, "the same launcher"
    assert requester["metadata"]["labels"][P + "instance"] == story.instance_of["isc1"], "the same instance"
    assert e2e.actuation_reason(requester) == "ActuatedHot"
    invariants.check_all(e2e)


def test_a6_multiple_instances_share_one_launcher(e2e: E2ESystem, story: Story) -> None:
    """Switch the set to ISC2: the same launcher, now two instances (ISC1 asleep, ISC2 awake)."""
    _require(e2e.bound_requester(SET) is not None, "A5's set bound")
    _switch(e2e, "isc2")
    requester, launcher = e2e.wait_bound(SET, timeout=WARM_S)
    assert launcher["metadata"]["name"] == story.launcher
    instances = _instances(e2e, story.launcher)
    assert len(instances) == 2, instances
    story.instance_of["isc2"] = requester["metadata"]["labels"][P + "instance"]
    assert {i["instance_id"] for i in instances} == {story.instance_of["isc1"], story.instance_of["isc2"]}
    assert _sleeping(e2e, story.launcher, "isc1")
    assert not _sleeping(e2e, story.launcher, "isc2")
    assert e2e.actuation_reason(requester) == "ActuatedWarm"
    invariants.check_all(e2e)


def test_a7_switch_back(e2e: E2ESystem, story: Story) -> None:
    """Switch back to ISC1: the same launcher wakes its sleeping ISC1 instance."""
    _require(len(story.instance_of) == 2, "A6 left ISC1 asleep and ISC2 awake on the launcher")
    _switch(e2e, "isc1")
    requester, launcher = e2e.wait_bound(SET, timeout=HOT_S + GONE_S)
    assert launcher["metadata"]["name"] == story.launcher
    assert requester["metadata"]["labels"][P + "instance"] == story.instance_of["isc1"]
    assert len(_instances(e2e, story.launcher)) == 2
    assert _sleeping(e2e, story.launcher, "isc2")
    assert e2e.actuation_reason(requester) == "ActuatedHot"
    invariants.check_all(e2e)


def test_a8_per_launcher_cap(e2e: E2ESystem, story: Story) -> None:
    """Switch to ISC3 (no sleeper, ISC1's port): no new launcher, still 2 instances, one victim reclaimed."""
    _require(len(_instances(e2e, story.launcher)) == 2, "A7 left two instances on the launcher")
    before = {p["metadata"]["name"] for p in e2e.launchers_on(story.test_node)}
    _switch(e2e, "isc3")
    requester, launcher = e2e.wait_bound(SET, timeout=WARM_S)
    assert launcher["metadata"]["name"] == story.launcher
    assert {p["metadata"]["name"] for p in e2e.launchers_on(story.test_node)} <= before, "no new launcher"
    story.instance_of["isc3"] = requester["metadata"]["labels"][P + "instance"]
    ids = {i["instance_id"] for i in _instances(e2e, story.launcher)}
    assert ids == {story.instance_of["isc2"], story.instance_of["isc3"]}, "ISC1 (port clash) was the victim"
    assert e2e.actuation_reason(requester) == "ActuatedWarm"
    invariants.check_all(e2e)


def test_a9_controller_restart(e2e: E2ESystem, story: Story) -> None:
    """Scale to 0, restart the controllers: nothing changes; switch to ISC2: the same launcher, hot, within 30 s."""
    _require("isc3" in story.instance_of, "A8 left ISC2 asleep and ISC3 awake on the launcher")
    e2e.scale(SET, 0)
    e2e.wait_no_requesters(SET, timeout=GONE_S)
    launchers_before = sorted(p["metadata"]["name"] for p in e2e.launchers())
    instances_before = {name: sorted(i["instance_id"] for i in _instances(e2e, name)) for name in launchers_before}
    e2e.restart_controllers()
    assert sorted(p["metadata"]["name"] for p in e2e.launchers()) == launchers_before
    assert {
        name: sorted(i["instance_id"] for i in _instances(e2e, name)) for name in launchers_before
    } == instances_before

    e2e.set_template_annotation(SET, P + "inference-server-config", "isc2")
    e2e.scale(SET, 1)
    requester, launcher = e2e.wait_bound(SET, timeout=HOT_S)
    assert launcher["metadata"]["name"] == story.launcher
    assert requester["metadata"]["labels"][P + "instance"] == story.instance_of["isc2"]
    assert e2e.actuation_reason(requester) == "ActuatedHot"
    invariants.check_all(e2e)


def test_a10_obsolete_sleeping_instance(e2e: E2ESystem, story: Story) -> None:
    """Change ISC3's options: its sleeping instance is deleted."""
    _require(
        story.instance_of.get("isc3") in {i["instance_id"] for i in _instances(e2e, story.launcher)},
        "A9 left ISC3 asleep",
    )
    e2e.patch_isc_options("isc3", manifests.engine_options(ISCS["isc3"][1]) + " --max-model-len 128")
    e2e.wait(
        lambda: story.instance_of["isc3"] not in {i["instance_id"] for i in _instances(e2e, story.launcher)},
        timeout=HOT_S,
        what="the obsolete sleeping ISC3 instance deleted",
    )
    assert e2e.bound_requester(SET) is not None, "the bound ISC2 instance is untouched"
    assert {i["instance_id"] for i in _instances(e2e, story.launcher)} == {story.instance_of["isc2"]}
    invariants.check_all(e2e)


def test_a11_obsolete_awake_instance(e2e: E2ESystem, story: Story) -> None:
    """Change ISC2's options while bound, scale to 0: the instance is deleted, not put to sleep."""
    bound = e2e.bound_requester(SET)
    _require(
        bound is not None and bound["metadata"]["labels"][P + "instance"] == story.instance_of["isc2"], "bound to ISC2"
    )
    e2e.patch_isc_options("isc2", manifests.engine_options(ISCS["isc2"][1]) + " --max-model-len 128")
    assert story.instance_of["isc2"] in {i["instance_id"] for i in _instances(e2e, story.launcher)}, (
        "left alone while bound"
    )
    e2e.scale(SET, 0)
    e2e.wait_no_requesters(SET, timeout=GONE_S)
    assert _instances(e2e, story.launcher) == [], "deleted instead of put to sleep"
    launcher = e2e.pod(story.launcher) or {}
    assert launcher["metadata"]["labels"][P + "sleeping"] == "true"
    assert P + "requester" not in launcher["metadata"]["annotations"]
    invariants.check_all(e2e)


def test_a12_unbound_launcher_deleted(e2e: E2ESystem, story: Story) -> None:
    """Delete the unbound launcher, scale to 1: a new launcher is used."""
    launcher = e2e.pod(story.launcher)
    _require(launcher is not None and P + "requester" not in launcher["metadata"]["annotations"], "A11 left it unbound")
    e2e.delete(resources.PODS, story.launcher)
    e2e.wait(lambda: e2e.pod(story.launcher) is None, timeout=GONE_S, what="the deleted launcher gone")
    e2e.scale(SET, 1)
    requester, launcher = e2e.wait_bound(SET, timeout=COLD_S)
    assert launcher["metadata"]["name"] != story.launcher
    assert requester["spec"]["nodeName"] == story.test_node
    story.launcher = launcher["metadata"]["name"]
    invariants.check_all(e2e)


def test_a13_stopped_instance_recovery(e2e: E2ESystem, story: Story) -> None:
    """Delete the running instance through the launcher API (a crash): the requester is replaced and the
    new one binds to the same launcher."""
    first = e2e.bound_requester(SET)
    _require(first is not None and first["metadata"]["labels"][P + "dual"] == story.launcher, "A12's set bound")
    assert first is not None
    launcher = e2e.pod(story.launcher)
    assert launcher is not None
    e2e.delete_instance(launcher, first["metadata"]["labels"][P + "instance"])

    def replaced() -> dict[str, Any] | None:
        found = e2e.bound_requester(SET)
        return found if found is not None and found["metadata"]["uid"] != first["metadata"]["uid"] else None

    second = e2e.wait(replaced, timeout=WARM_S + GONE_S, what="a new requester Ready and bound")
    assert second["metadata"]["labels"][P + "dual"] == story.launcher, "the same launcher"
    e2e.wait(
        lambda: e2e.api.get_or_none(resources.PODS, first["metadata"]["name"], e2e.namespace) is None,
        timeout=GONE_S,
        what="the crashed instance's requester gone",
    )
    running = [i for i in _instances(e2e, story.launcher) if i["status"] == "running"]
    assert [i["instance_id"] for i in running] == [second["metadata"]["labels"][P + "instance"]]
    invariants.check_all(e2e)
