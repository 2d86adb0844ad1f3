"""REST paths of resources."""

from __future__ import annotations

import pytest

from kube import resources


@pytest.mark.parametrize(
    ("resource", "namespace", "name", "sub", "path"),
    [
        pytest.param(resources.PODS, "ns", None, None, "/api/v1/namespaces/ns/pods", id="core-collection"),
        pytest.param(resources.PODS, None, None, None, "/api/v1/pods", id="all-namespaces"),
        pytest.param(resources.PODS, "ns", "p", "status", "/api/v1/namespaces/ns/pods/p/status", id="subresource"),
        pytest.param(resources.NODES, None, "n1", None, "/api/v1/nodes/n1", id="cluster-scoped"),
        pytest.param(
            resources.LEASES,
            "kube-node-lease",
            "n1",
            None,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
            id="grouped",
        ),
        pytest.param(
            resources.INFERENCE_SERVER_CONFIGS,
            "ns",
            "a",
            None,
            "/apis/fma.llm-d.ai/v1alpha1/namespaces/ns/inferenceserverconfigs/a",
            id="custom",
        ),
    ],
)
def test_paths(
    resource: resources.Resource, namespace: str | None, name: str | None, sub: str | None, path: str
) -> None:
    assert resource.path(namespace, name, sub) == path


def test_scope_mistakes_are_refused() -> None:
    with pytest.raises(ValueError, match="cluster-scoped"):
        resources.NODES.path("ns", "n1")
    with pytest.raises(ValueError, match="namespace is required"):
        resources.PODS.path(None, "p")
    with pytest.raises(ValueError, match="needs an object name"):
        resources.PODS.path("ns", None, "status")


def test_api_version() -> None:
    assert resources.PODS.api_version == "v1"
    assert resources.LEASES.api_version == "coordination.k8s.io/v1"
