"""A container's environment and its ``$(VAR)`` expansion, as the kubelet builds them.

Order (as in the kubelet): ``envFrom`` sources in order, then ``env`` entries
in order, each literal value expanded against the variables defined so far
plus the service variables; then the service variables fill in whatever the
container did not set.  ``command`` and ``args`` are expanded against the
final environment.  Values from ``envFrom`` and ``valueFrom`` are never
expanded.

Pure: ConfigMaps and Secrets are looked up through functions passed in, so
the rules are tested without a cluster.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
from collections.abc import Callable, Mapping

from devcluster.simnode import errors, pod, quantity

__all__ = [
    "DataLookup",
    "PodFacts",
    "expand",
    "expand_command",
    "field_value",
    "resolve",
    "resource_value",
]

DataLookup = Callable[[str], Mapping[str, str] | None]
"""Returns an object's string data by name, or None when it does not exist."""

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


@dataclasses.dataclass(frozen=True)
class PodFacts:
    """What the downward API may expose besides the Pod object itself."""

    pod_ip: str
    host_ip: str
    node_allocatable: Mapping[str, str]


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand ``$(NAME)`` references in ``text`` exactly as Kubernetes does.

    ``$$`` gives a literal ``$`` (so ``$$(X)`` stays ``$(X)``); a reference to
    an unknown name, ``$(`` without a closing parenthesis and a ``$`` before
    any other character are left as written.  Pure.
    """
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2 : close]
                value = lookup(name)
                out.append(value if value is not None else f"$({name})")
                i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def field_value(the_pod: pod.Pod, facts: PodFacts, field_path: str) -> str:
    """The value of a downward-API ``fieldRef``; raises ``PodConfigError`` for an unknown path."""
    meta = the_pod.metadata
    simple = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": the_pod.spec.node_name or "",
        "spec.serviceAccountName": the_pod.spec.service_account_name,
        "status.podIP": facts.pod_ip,
        "status.podIPs": facts.pod_ip,
        "status.hostIP": facts.host_ip,
        "status.hostIPs": facts.host_ip,
    }
    if field_path in simple:
        return simple[field_path]
    if field_path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted(meta.labels.items()))
    if field_path == "metadata.annotations":
        return "\n".join(f'{k}="{v}"' for k, v in sorted(meta.annotations.items()))
    match = _SUBSCRIPT.match(field_path)
    if match:
        source = meta.labels if match.group(1) == "labels" else meta.annotations
        return source.get(match.group(2), "")
    raise errors.PodConfigError("CreateContainerConfigError", f"unsupported fieldRef fieldPath {field_path!r}")


def resource_value(the_pod: pod.Pod, facts: PodFacts, container: pod.Container, ref: pod.ResourceFieldRef) -> str:
    """The value of a downward-API ``resourceFieldRef``.

    An unset limit reads as the node's allocatable amount and an unset
    request as 0, like the kubelet.
    """
    target = container
    if ref.container_name:
        found = [c for c in (*the_pod.spec.containers, *the_pod.spec.init_containers) if c.name == ref.container_name]
        if not found:
            raise errors.PodConfigError(
                "CreateContainerConfigError", f"resourceFieldRef names unknown container {ref.container_name!r}"
            )
        target = found[0]
    kind, _, resource = ref.resource.partition(".")
    if kind not in ("limits", "requests") or not resource:
        raise errors.PodConfigError("CreateContainerConfigError", f"unsupported resourceFieldRef {ref.resource!r}")
    values = target.resources.limits if kind == "limits" else target.resources.requests
    raw = values.get(resource)
    if raw is None:
        raw = facts.node_allocatable.get(resource, "0") if kind == "limits" else "0"
    divisor = quantity.parse(ref.divisor) if ref.divisor not in (None, "", 0, "0") else decimal.Decimal(1)
    assert divisor is not None
    return quantity.to_downward_value(ref.resource, quantity.parse(raw), divisor)


def _key_value(ref: pod.KeyRef, lookup: DataLookup, kind: str) -> str | None:
    data = lookup(ref.name)
    if data is None:
        if ref.optional:
            return None
        raise errors.PodConfigError("CreateContainerConfigError", f"{kind} {ref.name!r} not found")
    if ref.key not in data:
        if ref.optional:
            return None
        raise errors.PodConfigError(
            "CreateContainerConfigError", f"couldn't find key {ref.key!r} in {kind} {ref.name!r}"
        )
    return data[ref.key]


def _env_from(source: pod.EnvFromSource, config_maps: DataLookup, secrets: DataLookup) -> dict[str, str]:
    if source.config_map_ref is not None:
        data, kind, ref = config_maps(source.config_map_ref.name), "configmap", source.config_map_ref
    elif source.secret_ref is not None:
        data, kind, ref = secrets(source.secret_ref.name), "secret", source.secret_ref
    else:
        return {}
    if data is None:
        if ref.optional:
            return {}
        raise errors.PodConfigError("CreateContainerConfigError", f"{kind} {ref.name!r} not found")
    return {source.prefix + key: value for key, value in data.items()}


def _value_from(
    the_pod: pod.Pod,
    container: pod.Container,
    facts: PodFacts,
    var: pod.EnvVar,
    *,
    config_maps: DataLookup,
    secrets: DataLookup,
) -> str | None:
    src = var.value_from
    assert src is not None
    if src.field_ref is not None:
        return field_value(the_pod, facts, src.field_ref.field_path)
    if src.resource_field_ref is not None:
        return resource_value(the_pod, facts, container, src.resource_field_ref)
    if src.config_map_key_ref is not None:
        return _key_value(src.config_map_key_ref, config_maps, "configmap")
    if src.secret_key_ref is not None:
        return _key_value(src.secret_key_ref, secrets, "secret")
    raise errors.PodConfigError("CreateContainerConfigError", f"env var {var.name!r} has an empty valueFrom")


def resolve(
    the_pod: pod.Pod,
    container: pod.Container,
    facts: PodFacts,
    *,
    service_env: Mapping[str, str],
    config_maps: DataLookup,
    secrets: DataLookup,
) -> dict[str, str]:
    """The container's environment (without the host's variables).

    Raises ``PodConfigError`` for a missing non-optional ConfigMap/Secret or
    key and for unsupported downward-API fields.  Pure apart from the lookups.
    """
    env: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        if name in env:
            return env[name]
        return service_env.get(name)

    for source in container.env_from:
        env.update(_env_from(source, config_maps, secrets))
    for var in container.env:
        if var.value_from is None:
            env[var.name] = expand(var.value or "", lookup)
            continue
        value = _value_from(the_pod, container, facts, var, config_maps=config_maps, secrets=secrets)
        if value is not None:
            env[var.name] = value
    for name, value in service_env.items():
        env.setdefault(name, value)
    return env


def expand_command(container: pod.Container, env: Mapping[str, str]) -> list[str]:
    """``command`` + ``args`` with ``$(VAR)`` expanded against ``env``.  Pure."""
    return [expand(part, env.get) for part in (*container.command, *container.args)]
