"""Env resolution and $(VAR) expansion follow the kubelet's rules."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.simnode import environment, errors, pod

FACTS = environment.PodFacts(pod_ip="127.1.0.2", host_ip="127.1.0.1", node_allocatable={"cpu": "16", "memory": "1Gi"})


def _pod(container: dict[str, Any]) -> pod.Pod:
    return pod.Pod.model_validate(
        {
            "metadata": {
                "name": "p",
                "namespace": "ns",
                "uid": "u-1",
                "labels": {"app": "web"},
                "annotations": {"note": "hi"},
            },
            "spec": {"nodeName": "n0", "serviceAccountName": "sa", "containers": [{"name": "c", **container}]},
        }
    )


def _lookup(table: dict[str, str]) -> Any:
    return table.get


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("$(A)", "a", id="defined"),
        pytest.param("x$(A)y$(B)z", "xaybz", id="several"),
        pytest.param("$(MISSING)", "$(MISSING)", id="undefined-kept"),
        pytest.param("$$(A)", "$(A)", id="escaped"),
        pytest.param("$$$(A)", "$a", id="escape-then-ref"),
        pytest.param("$$", "$", id="double-dollar"),
        pytest.param("$A", "$A", id="no-parens"),
        pytest.param("$(A", "$(A", id="unclosed"),
        pytest.param("$(", "$(", id="bare-open"),
        pytest.param("$()", "$()", id="empty-name"),
        pytest.param("a$", "a$", id="trailing-dollar"),
        pytest.param("$(A)$(A)", "aa", id="adjacent"),
        pytest.param("$(A$(B))", "$(A$(B))", id="nested-name-unknown"),
    ],
)
def test_expand_matches_kubernetes(text: str, expected: str) -> None:
    assert environment.expand(text, {"A": "a", "B": "b"}.get) == expected


def test_env_values_expand_against_earlier_vars_only() -> None:
    container = {
        "command": ["run", "$(LATE)", "$(EARLY)"],
        "env": [
            {"name": "EARLY", "value": "e"},
            {"name": "USES", "value": "$(EARLY)-$(LATE)"},
            {"name": "LATE", "value": "l"},
        ],
    }
    the_pod = _pod(container)
    env = environment.resolve(
        the_pod, the_pod.spec.containers[0], FACTS, service_env={}, config_maps=_lookup({}), secrets=_lookup({})
    )
    assert env["USES"] == "e-$(LATE)"
    assert environment.expand_command(the_pod.spec.containers[0], env) == ["run", "l", "e"]


def test_downward_api_fields_and_service_env() -> None:
    refs = {
        "NAME": "metadata.name",
        "NS": "metadata.namespace",
        "UID": "metadata.uid",
        "APP": "metadata.labels['app']",
        "NOTE": "metadata.annotations['note']",
        "NODE": "spec.nodeName",
        "SA": "spec.serviceAccountName",
        "IP": "status.podIP",
        "HOST": "status.hostIP",
    }
    env_list = [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in refs.items()]
    env_list.append({"name": "KUBERNETES_SERVICE_HOST", "value": "overridden"})
    the_pod = _pod({"env": env_list})
    env = environment.resolve(
        the_pod,
        the_pod.spec.containers[0],
        FACTS,
        service_env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"},
        config_maps=_lookup({}),
        secrets=_lookup({}),
    )
    assert {k: env[k] for k in refs} == {
        "NAME": "p",
        "NS": "ns",
        "UID": "u-1",
        "APP": "web",
        "NOTE": "hi",
        "NODE": "n0",
        "SA": "sa",
        "IP": "127.1.0.2",
        "HOST": "127.1.0.1",
    }
    assert env["KUBERNETES_SERVICE_HOST"] == "overridden"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"


def test_config_map_secret_refs_and_env_from() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}, {"secretRef": {"name": "s"}}],
        "env": [
            {"name": "ONE", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "one"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
            {"name": "REF", "value": "$(CM_one)/$(pw)"},
        ],
    }
    the_pod = _pod(container)
    config_maps = {"cm": {"one": "1"}}
    secrets = {"s": {"pw": "secret"}}
    env = environment.resolve(
        the_pod, the_pod.spec.containers[0], FACTS, service_env={}, config_maps=config_maps.get, secrets=secrets.get
    )
    assert env["CM_one"] == "1"
    assert env["pw"] == "secret"
    assert env["ONE"] == "1"
    assert env["PW"] == "secret"
    assert "OPT" not in env
    assert env["REF"] == "1/secret"


@pytest.mark.parametrize(
    ("container", "message"),
    [
        pytest.param(
            {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]},
            "configmap 'nope' not found",
            id="missing-configmap",
        ),
        pytest.param(
            {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "absent"}}}]},
            "couldn't find key 'absent'",
            id="missing-key",
        ),
        pytest.param(
            {"envFrom": [{"secretRef": {"name": "gone"}}]},
            "secret 'gone' not found",
            id="missing-secret-envfrom",
        ),
        pytest.param(
            {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]},
            "unsupported fieldRef",
            id="bad-field",
        ),
    ],
)
def test_missing_sources_are_config_errors(container: dict[str, Any], message: str) -> None:
    the_pod = _pod(container)
    with pytest.raises(errors.PodConfigError, match=message):
        environment.resolve(
            the_pod,
            the_pod.spec.containers[0],
            FACTS,
            service_env={},
            config_maps={"cm": {"k": "v"}}.get,
            secrets=_lookup({}),
        )


@pytest.mark.parametrize(
    ("resources", "resource", "divisor", "expected"),
    [
        pytest.param({"limits": {"cpu": "500m"}}, "limits.cpu", None, "1", id="cpu-rounds-up"),
        pytest.param({"limits": {"cpu": "2500m"}}, "limits.cpu", "1m", "2500", id="cpu-millis"),
        pytest.param({"limits": {"memory": "1Gi"}}, "limits.memory", "1Mi", "1024", id="memory-mi"),
        pytest.param({}, "limits.cpu", None, "16", id="unset-limit-is-allocatable"),
        pytest.param({}, "requests.memory", None, "0", id="unset-request-is-zero"),
    ],
)
def test_resource_field_ref(resources: dict[str, Any], resource: str, divisor: str | None, expected: str) -> None:
    ref: dict[str, Any] = {"resource": resource}
    if divisor:
        ref["divisor"] = divisor
    the_pod = _pod({"resources": resources, "env": [{"name": "R", "valueFrom": {"resourceFieldRef": ref}}]})
    env = environment.resolve(
        the_pod, the_pod.spec.containers[0], FACTS, service_env={}, config_maps=_lookup({}), secrets=_lookup({})
    )
    assert env["R"] == expected
