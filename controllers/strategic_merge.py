"""Strategic merge patches for Pods, as the apiserver applies them.

Direct mode builds the provider by applying the user's server patch to the
requester (docs/controllers.md, "Direct mode"), and the result must be known *before* the
Pod exists (its hash is the sleeper's identity), so the merge happens here
rather than in the apiserver.  Only the Pod schema matters, so the merge
keys are a fixed table instead of OpenAPI lookups.

Rules: maps merge recursively; ``null`` deletes a key; lists with a merge
key merge element-wise by that key (``$patch: delete`` removes an element,
``$patch: replace`` on a list's element set replaces the list); other lists
are replaced.  Pure; inputs are not modified.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["MERGE_KEYS", "apply"]

MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "resourceClaims": "name",
}
"""Pod list fields that merge by key (from the Pod's patchMergeKey tags)."""


def apply(original: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``original`` with the strategic merge ``patch`` applied (pure)."""
    return _merge_map(copy.deepcopy(dict(original)), patch)


def _merge_map(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            target[key] = _merge_map(target[key], value)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(target.get(key), list):
            target[key] = _merge_list(target[key], value, MERGE_KEYS[key])
        else:
            target[key] = _strip_directives(copy.deepcopy(value))
    return target


def _merge_list(target: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    if any(isinstance(item, Mapping) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(copy.deepcopy(item)) for item in patch if not _is_directive_only(item)]
    result = [copy.deepcopy(item) for item in target]
    for item in patch:
        if not isinstance(item, Mapping) or merge_key not in item:
            result.append(_strip_directives(copy.deepcopy(item)))
            continue
        index = next(
            (
                i
                for i, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_strip_directives(copy.deepcopy(dict(item))))
        else:
            result[index] = _merge_map(result[index], item)
    return result


def _is_directive_only(item: Any) -> bool:
    return isinstance(item, Mapping) and set(item) == {"$patch"}


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value
