"""The LauncherConfig Pod template schema: trimming the apiserver's OpenAPI, converting it (pod_template_schema)."""

from __future__ import annotations

from typing import Any

import pytest

from crds import pod_template_schema

_P = "#/components/schemas/"


def _doc(schemas: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.0.0", "components": {"schemas": schemas}}


def _source(schemas: dict[str, Any]) -> dict[str, Any]:
    return {"source": "test", "root": pod_template_schema.ROOT, "schemas": schemas}


SMALL = {
    "io.k8s.api.core.v1.PodTemplateSpec": {
        "description": "a template",
        "properties": {"spec": {"allOf": [{"$ref": _P + "io.k8s.api.core.v1.PodSpec"}], "default": {}}},
        "type": "object",
    },
    "io.k8s.api.core.v1.PodSpec": {
        "properties": {
            "containers": {
                "items": {"allOf": [{"$ref": _P + "io.k8s.api.core.v1.Container"}], "default": {}},
                "type": "array",
                "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-list-type": "map",
                "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge",
            },
            "overhead": {
                "additionalProperties": {"$ref": _P + "io.k8s.apimachinery.pkg.api.resource.Quantity"},
                "type": "object",
            },
        },
        "required": ["containers"],
        "type": "object",
    },
    "io.k8s.api.core.v1.Container": {
        "properties": {
            "name": {"default": "", "description": "required, so the zero default goes", "type": "string"},
            "protocol": {"default": "TCP", "enum": ["SCTP", "TCP", "UDP"], "type": "string"},
            "grpcService": {"default": "", "type": "string"},
            "port": {"allOf": [{"$ref": _P + "io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]},
            "retries": {"default": 0, "format": "int32", "type": "integer"},
        },
        "required": ["name", "retries"],
        "type": "object",
        "x-kubernetes-unions": [{"discriminator": "type"}],
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"description": "q", "type": "string"},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    },
    "io.k8s.api.core.v1.Unrelated": {"type": "object", "properties": {"x": {"type": "string"}}},
}


def test_trim_keeps_what_the_template_reaches_without_descriptions() -> None:
    trimmed = pod_template_schema.trim(_doc(SMALL), "kube-apiserver vX: GET /openapi/v3/api/v1")
    assert trimmed["root"] == pod_template_schema.ROOT
    assert trimmed["source"] == "kube-apiserver vX: GET /openapi/v3/api/v1"
    assert set(trimmed["schemas"]) == set(SMALL) - {"io.k8s.api.core.v1.Unrelated"}
    assert "description" not in trimmed["schemas"][pod_template_schema.ROOT]
    assert list(trimmed["schemas"]) == sorted(trimmed["schemas"])


def test_trim_names_a_missing_schema() -> None:
    broken = {k: v for k, v in SMALL.items() if k != "io.k8s.api.core.v1.Container"}
    with pytest.raises(KeyError, match=r"io\.k8s\.api\.core\.v1\.Container"):
        pod_template_schema.trim(_doc(broken), "test")


def test_structural_inlines_refs_and_keeps_only_what_a_crd_accepts() -> None:
    schema = pod_template_schema.structural(_source(SMALL))
    assert schema["required"] == ["containers"]
    containers = schema["properties"]["containers"]
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    assert "x-kubernetes-patch-strategy" not in containers
    assert "x-kubernetes-patch-merge-key" not in containers
    container = containers["items"]
    assert "x-kubernetes-unions" not in container
    assert container["properties"]["name"] == {"type": "string"}, "a required field's zero default is dropped"
    assert container["properties"]["retries"] == {"format": "int32", "type": "integer"}
    assert container["properties"]["protocol"] == {"default": "TCP", "type": "string"}, "no enum, default kept"
    assert container["properties"]["grpcService"] == {"default": "", "type": "string"}, "optional: kept"
    assert container["properties"]["port"] == {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    }
    quantity = schema["properties"]["overhead"]["additionalProperties"]
    assert quantity["x-kubernetes-int-or-string"] is True
    assert quantity["pattern"] == pod_template_schema.QUANTITY_PATTERN


def test_object_defaults_are_never_copied() -> None:
    schemas = {**SMALL}
    schemas["io.k8s.api.core.v1.PodSpec"] = {
        **SMALL["io.k8s.api.core.v1.PodSpec"],
        "properties": {
            **SMALL["io.k8s.api.core.v1.PodSpec"]["properties"],
            "securityContext": {"default": {}, "type": "object", "properties": {"a": {"type": "string"}}},
        },
    }
    schema = pod_template_schema.structural(_source(schemas))
    assert "default" not in schema["properties"]["securityContext"]


def test_a_recursive_schema_is_refused_with_the_cycle() -> None:
    schemas = {**SMALL}
    schemas["io.k8s.api.core.v1.Container"] = {
        "type": "object",
        "properties": {"inner": {"$ref": _P + "io.k8s.api.core.v1.Container"}},
    }
    with pytest.raises(ValueError, match="recursive schema"):
        pod_template_schema.structural(_source(schemas))


def test_committed_source_is_the_trimmed_apiserver_document_of_the_dev_cluster_version() -> None:
    source = pod_template_schema.load_source()
    assert source["source"] == pod_template_schema.source_label("v1.35.4")
    assert source["root"] == pod_template_schema.ROOT
    assert pod_template_schema.render_source(source) == pod_template_schema.source_path().read_text()
    reached = pod_template_schema.trim({"components": {"schemas": source["schemas"]}}, source["source"])
    assert reached == source, "the committed file holds exactly what the template reaches"


def _nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for name, child in schema.get("properties", {}).items():
        found += _nodes(child, f"{path}.{name}")
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(schema.get(key), dict):
            found += _nodes(schema[key], path + suffix)
    return found


def test_the_real_pod_spec_schema_is_structural_and_list_map_keys_are_required_or_defaulted() -> None:
    schema = pod_template_schema.pod_spec_schema()
    allowed = {
        "type",
        "format",
        "properties",
        "items",
        "additionalProperties",
        "required",
        "default",
        "anyOf",
        "pattern",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
    nodes = _nodes(schema)
    assert len(nodes) > 1000
    for path, node in nodes:
        assert set(node) <= allowed, (path, set(node) - allowed)
        assert "type" in node or node.get("x-kubernetes-int-or-string") is True, path
        for key in node.get("x-kubernetes-list-map-keys", []):
            item = node["items"]
            assert key in item.get("required", []) or "default" in item["properties"][key], (path, key)
