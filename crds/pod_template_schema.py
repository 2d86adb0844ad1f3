"""The LauncherConfig's embedded Pod template schema, derived from the apiserver's own OpenAPI for core/v1.

Upstream's LauncherConfig CRD embeds the full core/v1 PodSpec schema, so the
apiserver prunes unknown fields of ``spec.podTemplate.spec`` (a misspelled
``imagePullPolcy`` is dropped, with a warning, or rejected under
``fieldValidation=Strict``) and checks types and required fields when the LC
is written, not only later when a launcher Pod is created.  We do the same,
but the schema is not written by hand: it comes from the document the
apiserver itself serves at ``/openapi/v3/api/v1``, at the Kubernetes version
the development cluster builds.

Two steps, each deterministic:

1. ``trim`` takes that whole document and keeps what the template needs:
   ``io.k8s.api.core.v1.PodTemplateSpec`` and every component schema it
   reaches, without descriptions.  The result is committed as
   ``crds/openapi/core_v1_podtemplatespec.json`` (``python -m crds openapi``
   writes it; a cluster test checks it against the live apiserver).
2. ``structural`` turns the PodSpec part into a CRD *structural* schema:
   ``$ref`` and single-branch ``allOf`` inlined; ``Quantity`` and
   ``IntOrString`` as ``x-kubernetes-int-or-string`` (with the quantity
   pattern); keys a CRD does not accept dropped (``x-kubernetes-patch-*``,
   ``x-kubernetes-unions``, ``enum``, the ``int-or-string`` format);
   ``x-kubernetes-list-type``, ``-list-map-keys`` and ``-map-type`` kept.
   Defaults: a scalar default on an optional field is kept (``protocol:
   TCP``, which a list-map key needs), the zero defaults the generator puts
   on required fields and every object or array default are dropped, so
   writing an LC does not fill its template with empty objects.

``trim`` and ``structural`` are pure; ``load_source``/``write_source`` read
and write the committed file.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

__all__ = [
    "QUANTITY_PATTERN",
    "ROOT",
    "SOURCE_NAME",
    "load_source",
    "pod_spec_schema",
    "render_source",
    "source_label",
    "source_path",
    "structural",
    "trim",
    "write_source",
]

ROOT = "io.k8s.api.core.v1.PodTemplateSpec"
"""The component schema the template is an instance of."""
SOURCE_NAME = "core_v1_podtemplatespec.json"
_POD_SPEC = "io.k8s.api.core.v1.PodSpec"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_REF_PREFIX = "#/components/schemas/"

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""The resource-quantity syntax, as CRD generators write it for ``resource.Quantity``."""

_KEPT = frozenset(
    {
        "type",
        "format",
        "properties",
        "items",
        "additionalProperties",
        "required",
        "default",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
)
_ZERO = ("", 0, False)


def _name(ref: str) -> str:
    if not ref.startswith(_REF_PREFIX):
        raise ValueError(f"unsupported $ref {ref!r}: only {_REF_PREFIX}... is resolved")
    return ref[len(_REF_PREFIX) :]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [_name(node["$ref"])] if isinstance(node.get("$ref"), str) else []
        return found + [r for key, value in node.items() if key != "$ref" for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: _without_descriptions(child) for name, child in value.items()}
            else:
                out[key] = _without_descriptions(value)
        return out
    if isinstance(node, list):
        return [_without_descriptions(item) for item in node]
    return node


def trim(document: dict[str, Any], source: str) -> dict[str, Any]:
    """The committed source: ``ROOT`` and every schema it reaches, without descriptions (pure).

    ``document`` is a whole OpenAPI v3 document for ``api/v1``; ``source``
    says where it came from (kept in the file).  Raises ``KeyError`` naming a
    schema the document lacks.
    """
    schemas: dict[str, Any] = document["components"]["schemas"]
    kept: dict[str, Any] = {}
    pending = [ROOT]
    while pending:
        name = pending.pop()
        if name in kept:
            continue
        if name not in schemas:
            raise KeyError(f"the OpenAPI document has no schema {name!r}")
        kept[name] = _without_descriptions(schemas[name])
        pending.extend(_refs(schemas[name]))
    return {"source": source, "root": ROOT, "schemas": dict(sorted(kept.items()))}


def _special(name: str) -> dict[str, Any] | None:
    if name == _QUANTITY:
        return {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    if name == _INT_OR_STRING:
        return {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    return None


class _Converter:
    def __init__(self, schemas: dict[str, Any]) -> None:
        self._schemas = schemas

    def named(self, name: str, stack: tuple[str, ...]) -> dict[str, Any]:
        special = _special(name)
        if special is not None:
            return special
        if name in stack:
            raise ValueError(f"recursive schema {name!r} cannot be inlined into a CRD: {' -> '.join(stack)}")
        return self.node(self._schemas[name], (*stack, name))

    def node(self, node: dict[str, Any], stack: tuple[str, ...]) -> dict[str, Any]:
        if "$ref" in node:
            return self.named(_name(node["$ref"]), stack)
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            return self.node(all_of[0], stack)
        out: dict[str, Any] = {}
        required = set(node.get("required") or [])
        for key, value in node.items():
            if key not in _KEPT:
                continue
            if key == "format" and value == "int-or-string":
                continue
            if key == "default":
                continue  # a default is judged by its parent, which knows whether the field is required
            if key == "properties":
                out[key] = {
                    field: self._property(child, field in required, stack) for field, child in sorted(value.items())
                }
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                out[key] = self.node(value, stack)
            else:
                out[key] = value
        return out

    def _property(self, child: dict[str, Any], required: bool, stack: tuple[str, ...]) -> dict[str, Any]:
        converted = self.node(child, stack)
        default = child.get("default")
        keep = (
            "default" in child
            and not isinstance(default, dict | list)
            and not (required and default in _ZERO and type(default) in (str, int, bool))
        )
        if keep:
            converted["default"] = default
        return converted


def source_label(version: str) -> str:
    """The ``source`` recorded in the committed file for an apiserver of ``version`` (pure)."""
    return f"kube-apiserver {version}: GET /openapi/v3/api/v1"


def structural(source: dict[str, Any]) -> dict[str, Any]:
    """The CRD structural schema of the PodSpec in ``source`` (the committed file's content; pure)."""
    return _Converter(source["schemas"]).named(_POD_SPEC, ())


def source_path() -> pathlib.Path:
    """``crds/openapi/core_v1_podtemplatespec.json``, the committed source."""
    return pathlib.Path(__file__).resolve().parent / "openapi" / SOURCE_NAME


def render_source(source: dict[str, Any]) -> str:
    """The file text of a trimmed source: sorted keys, one-space indent, final newline (pure)."""
    return json.dumps(source, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def load_source(path: pathlib.Path | None = None) -> dict[str, Any]:
    """Read the committed source (or ``path``)."""
    loaded = json.loads((path or source_path()).read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{path or source_path()} does not hold a JSON object")
    return loaded


def write_source(source: dict[str, Any], path: pathlib.Path | None = None) -> pathlib.Path:
    """Write a trimmed source (default: the committed file); returns the path."""
    target = path or source_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_source(source), encoding="utf-8")
    return target


def pod_spec_schema() -> dict[str, Any]:
    """The structural PodSpec schema from the committed source (reads the file)."""
    return structural(load_source())
