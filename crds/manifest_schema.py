"""Turning the pydantic models into structural OpenAPI v3 schemas for the CRDs.

The models are the one source of truth; the CRD schema is derived from their
JSON schema and rewritten into the *structural* subset the apiserver demands:
``$ref`` inlined, ``X | None`` collapsed to ``X`` (we omit unset fields instead
of sending ``null``), no ``title``/``default``, and no
``additionalProperties: false`` next to ``properties`` (the apiserver prunes
unknown fields instead).  Kubernetes extensions (``x-kubernetes-*``) and integer
formats come from ``json_schema_extra`` on the models.

The embedded PodSpec (``LauncherConfig.spec.podTemplate.spec``) is not
modelled here: its schema is derived from the apiserver's own OpenAPI
(``pod_template_schema``) and put in place through ``overrides``.

Pure; no I/O.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pydantic

__all__ = ["structural"]

_DROPPED = ("title", "default", "$defs")
_RST_LITERAL = re.compile(r"``([^`]+)``")


def structural(model: type[pydantic.BaseModel], overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return the structural schema of ``model``.

    ``overrides`` maps a dotted JSON path below the model (``podTemplate.spec``)
    to a schema that replaces whatever the model says there.  Pure.
    """
    document = model.model_json_schema(by_alias=True, mode="validation")
    definitions: dict[str, Any] = document.get("$defs", {})
    schema: dict[str, Any] = _rewrite(document, definitions)
    for path, replacement in (overrides or {}).items():
        _replace(schema, path.split("."), replacement)
    return schema


def _replace(schema: dict[str, Any], path: list[str], replacement: dict[str, Any]) -> None:
    node = schema
    for part in path[:-1]:
        node = node["properties"][part]
    existing = node["properties"][path[-1]]
    merged = copy.deepcopy(replacement)
    if "description" in existing:
        merged["description"] = existing["description"]
    node["properties"][path[-1]] = merged


def _rewrite(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = definitions[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        only = node.pop("allOf")[0]
        node = {**_rewrite(only, definitions), **node}
    if "anyOf" in node:
        branches = [branch for branch in node["anyOf"] if branch != {"type": "null"}]
        if len(branches) == 1:
            del node["anyOf"]
            node = {**_rewrite(branches[0], definitions), **node}
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "properties":
            result[key] = {name: _rewrite(child, definitions) for name, child in value.items()}
            continue
        if key == "description" and isinstance(value, str):
            result[key] = _RST_LITERAL.sub(r"'\1'", " ".join(value.split()))
            continue
        result[key] = _rewrite(value, definitions) if key != "enum" else value
    return result
