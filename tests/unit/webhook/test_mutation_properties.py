"""Property tests of the mutation: valid RFC 6902 against its input, idempotent, preserving."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crds import keys
from webhook import cluster_facts, mutation, requester_agent

OPTIONS = mutation.Options(agent=requester_agent.AgentSpec(image="img", command=("fma-requester",)))

_label_keys = st.sampled_from(["app", "pool", "example.com/team", "a~b", "x/y~z", "pod-template-hash"])
_label_values = st.sampled_from(["a", "b", "pool-1", ""])
_fma_annotations = st.fixed_dictionaries(
    {},
    optional={
        keys.INFERENCE_SERVER_CONFIG_ANNOTATION: st.sampled_from(["llama", "", "Bad_Name", "a.b-c"]),
        keys.ACTUATION_ANNOTATION: st.sampled_from(["direct", "other"]),
        keys.SERVER_PATCH_ANNOTATION: st.sampled_from(["", "{}", "spec: {}", "spec: [x", "a: {{.NodeName}}"]),
        keys.ADMIN_PORT_ANNOTATION: st.sampled_from(["8081", "9000", "8080", "x", "0"]),
        keys.PROVIDER_LABELS_ANNOTATION: st.sampled_from(["pool", "pool,app", "", "nope", "x/y~z"]),
        keys.CONVERTED_ANNOTATION: st.just("v1"),
        "example.com/other~x": st.just("kept"),
    },
)
_gpu = st.one_of(st.none(), st.sampled_from(["1", "2", 4, "0", "1.5", "x"]))


@st.composite
def _containers(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(
        st.lists(st.sampled_from(["inference-server", "sidecar", "proxy"]), min_size=1, max_size=3, unique=True)
    )
    out = []
    for name in names:
        container: dict[str, Any] = {"name": name, "image": "img-" + name}
        gpus = draw(_gpu)
        resources: dict[str, Any] = {}
        if gpus is not None:
            resources["limits"] = {"nvidia.com/gpu": gpus}
            if draw(st.booleans()):
                resources["requests"] = {"nvidia.com/gpu": gpus, "cpu": "1"}
        if resources or draw(st.booleans()):
            container["resources"] = resources
        if draw(st.booleans()):
            container["args"] = draw(
                st.lists(st.sampled_from(["serve", "m", "--enable-sleep-mode", "--port=8"]), max_size=3)
            )
        if draw(st.booleans()):
            container["env"] = [{"name": "VLLM_SERVER_DEV_MODE", "value": "0"}, {"name": "A", "value": "b"}]
        if draw(st.booleans()):
            container["volumeMounts"] = [{"name": "v1", "mountPath": "/v"}]
        container["x-unknown-field"] = {"kept": True}
        out.append(container)
    return out


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    metadata: dict[str, Any] = {"generateName": "p-", "x-unknown": [1, 2]}
    if draw(st.booleans()):
        metadata["annotations"] = draw(_fma_annotations)
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(_label_keys, _label_values, max_size=4))
    if draw(st.booleans()):
        metadata["finalizers"] = draw(
            st.lists(st.sampled_from(["example.com/f", keys.REQUESTER_FINALIZER]), max_size=2, unique=True)
        )
    spec: dict[str, Any] = {"containers": draw(_containers()), "x-unknown": "kept"}
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "v1", "emptyDir": {}}, {"name": "v2", "emptyDir": {}}]
    scheduler = draw(st.sampled_from([None, "default-scheduler", "custom", "fma-scheduler"]))
    if scheduler is not None:
        spec["schedulerName"] = scheduler
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


_facts = st.builds(
    cluster_facts.Facts,
    isc_exists=st.sampled_from([None, True, False]),
    owner=st.sampled_from([None, "ReplicaSet/r"]),
    owner_selector_keys=st.sampled_from([None, frozenset(), frozenset({"app"})]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pod=pods(), facts=_facts)
def test_patch_is_valid_idempotent_and_final(pod, facts, apply_patch) -> None:
    original = copy.deepcopy(pod)
    decision = mutation.mutate(pod, OPTIONS, facts)
    assert pod == original, "mutate must not change its input"
    if not decision.allowed:
        assert decision.patch == ()
        assert decision.message
        return
    for op in decision.patch:
        assert op["op"] in ("add", "replace")
    once = apply_patch(pod, list(decision.patch))  # raises if any op is invalid against the input
    assert apply_patch(once, list(decision.patch)) == once
    second = mutation.mutate(once, OPTIONS, facts)
    assert second.allowed
    assert second.patch == ()
    assert once["metadata"]["x-unknown"] == [1, 2]
    assert once["spec"]["x-unknown"] == "kept"
    if decision.patch:
        assert once["metadata"]["annotations"][keys.CONVERTED_ANNOTATION] == "v1"
        assert once["metadata"]["finalizers"].count(keys.REQUESTER_FINALIZER) == 1
        for key, value in (pod["metadata"].get("annotations") or {}).items():
            if key == keys.SERVER_PATCH_ANNOTATION and not value.strip():
                continue  # an empty server patch counts as absent and is derived
            assert once["metadata"]["annotations"][key] == value, "user annotations are never changed"
