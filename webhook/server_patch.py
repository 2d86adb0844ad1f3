"""The ``server-patch`` annotation: validating one a user wrote, deriving one from a server container.

A server patch is a template (only ``{{.NodeName}}`` and ``{{.LocalVolume}}``
are defined, docs/protocol.md, "Annotations") that expands to a YAML or JSON strategic
merge patch, which the controller applies to the requester to build the
direct provider.

**Deriving** (transparent direct mode).  The requester's ``inference-server``
container is the requester agent; the patch turns it back into the user's
server container: every field of the user's container is set, every field
only the agent has is set to ``null`` (strategic merge deletes it), the GPU
quantities are left out (the controller zeroes them on the provider), and
``--enable-sleep-mode`` and ``VLLM_SERVER_DEV_MODE=1`` are ensured.  The
volumes the container mounts are listed too, so the patch is self-contained.
Environment entries and ports are merged by key, so the agent's two
variables (``PROBES_PORT``, ``SPI_PORT``) remain on the provider — harmless,
and it keeps the patch free of ``$patch`` directives.

Pure; no I/O.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from crds import names
from webhook import errors

__all__ = [
    "DEV_MODE_ENV",
    "SLEEP_MODE_FLAG",
    "derive",
    "encode",
    "ensure_dev_mode",
    "ensure_sleep_mode",
    "validate",
]

SLEEP_MODE_FLAG = "--enable-sleep-mode"
"""vLLM's flag that makes ``/sleep`` and ``/wake_up`` available."""
DEV_MODE_ENV = "VLLM_SERVER_DEV_MODE"
"""vLLM serves its admin endpoints only with this set to ``1``."""

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_KNOWN = re.compile(r"^\s*\.(NodeName|LocalVolume)\s*$")
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh"})
_TOKEN_VOLUME = re.compile(r"^kube-api-access-[a-z0-9]+$")


def validate(template: str) -> dict[str, Any]:
    """Check a user's template; return the patch it expands to for a placeholder node.

    Raises ``Denial`` for an unsupported template action, text that is not
    YAML or JSON, or a document that is not a mapping.
    """
    for match in _ACTION.finditer(template):
        if not _KNOWN.match(match.group(1)):
            raise errors.Denial(
                f"server-patch: unsupported template action {match.group(0)!r}; "
                "only {{.NodeName}} and {{.LocalVolume}} are defined"
            )
    expanded = _ACTION.sub(lambda m: "" if "LocalVolume" in m.group(1) else "placeholder-node", template)
    try:
        document = yaml.safe_load(expanded)
    except yaml.YAMLError as exc:
        raise errors.Denial(f"server-patch: not valid YAML or JSON: {_one_line(exc)}") from exc
    if not isinstance(document, dict):
        raise errors.Denial(
            f"server-patch: must be a mapping (a strategic merge patch for a Pod), got {type(document).__name__}"
        )
    spec = document.get("spec")
    if spec is not None and not isinstance(spec, dict):
        raise errors.Denial(f"server-patch: spec must be a mapping, got {type(spec).__name__}")
    return document


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def ensure_sleep_mode(command: Sequence[str] | None, args: Sequence[str] | None) -> list[str] | None:
    """The container's ``args`` with ``--enable-sleep-mode`` present; ``None`` when they need no change.

    A ``sh -c SCRIPT`` form gets the flag appended to the script (the last
    argument); otherwise the flag is appended to ``args``.
    """
    words = list(command or []) + list(args or [])
    if any(SLEEP_MODE_FLAG in word for word in words):
        return None
    new_args = list(args or [])
    shell_form = bool(command) and command is not None and command[0].rsplit("/", 1)[-1] in _SHELLS
    if shell_form and "-c" in words and new_args:
        new_args[-1] = new_args[-1].rstrip() + " " + shlex.quote(SLEEP_MODE_FLAG)
    else:
        new_args.append(SLEEP_MODE_FLAG)
    return new_args


def ensure_dev_mode(env: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The container's ``env`` with ``VLLM_SERVER_DEV_MODE=1`` (replacing another value in place)."""
    out: list[dict[str, Any]] = []
    found = False
    for entry in env or []:
        if entry.get("name") == DEV_MODE_ENV:
            found = True
            out.append({"name": DEV_MODE_ENV, "value": "1"})
        else:
            out.append(dict(entry))
    if not found:
        out.append({"name": DEV_MODE_ENV, "value": "1"})
    return out


def _without_gpu(quantities: Mapping[str, Any] | None, agent: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: None for k in agent if k != names.GPU_RESOURCE}
    out.update({k: v for k, v in (quantities or {}).items() if k != names.GPU_RESOURCE})
    return out


def derive(
    server: Mapping[str, Any],
    agent: Mapping[str, Any],
    volumes: Sequence[Mapping[str, Any]],
    *,
    drop_labels: Sequence[str],
    provider_labels: Mapping[str, str],
    scheduler_name: tuple[str | None] | None,
) -> dict[str, Any]:
    """The strategic merge patch that turns the requester back into the user's server Pod.

    ``server`` is the user's raw ``inference-server`` container and ``agent``
    the container that replaces it; ``volumes`` are the Pod's volumes.
    ``drop_labels`` are requester labels the provider must not carry and
    ``provider_labels`` the labels that move to the provider.
    ``scheduler_name`` is ``(original,)`` when the webhook changed the
    requester's scheduler, so the provider gets the user's own back.
    """
    patched: dict[str, Any] = {k: None for k in agent if k not in server}
    patched.update(copy.deepcopy(dict(server)))
    resources = dict(server.get("resources") or {})
    agent_resources = agent.get("resources") or {}
    patched["resources"] = {
        "limits": _without_gpu(resources.get("limits"), agent_resources.get("limits") or {}),
        "requests": _without_gpu(resources.get("requests"), agent_resources.get("requests") or {}),
    }
    for key, value in resources.items():
        if key not in ("limits", "requests"):
            patched["resources"][key] = copy.deepcopy(value)
    args = ensure_sleep_mode(server.get("command"), server.get("args"))
    if args is not None:
        patched["args"] = args
    patched["env"] = ensure_dev_mode(server.get("env"))
    mounts = [m for m in server.get("volumeMounts") or [] if not _TOKEN_VOLUME.match(str(m.get("name", "")))]
    if "volumeMounts" in server:
        patched["volumeMounts"] = copy.deepcopy(mounts)
    mounted = {m.get("name") for m in mounts}
    spec: dict[str, Any] = {"containers": [patched]}
    used = [copy.deepcopy(dict(v)) for v in volumes if v.get("name") in mounted]
    if used:
        spec["volumes"] = used
    if scheduler_name is not None:
        spec["schedulerName"] = scheduler_name[0]
    labels: dict[str, str | None] = dict.fromkeys(drop_labels)
    labels.update(provider_labels)
    patch: dict[str, Any] = {"spec": spec}
    if labels:
        patch["metadata"] = {"labels": labels}
    return patch


def encode(patch: Mapping[str, Any]) -> str:
    """The annotation value: compact JSON with sorted keys (valid YAML, stable across passes).

    Raises ``Denial`` when the text would contain ``{{``, which the
    controller would read as a template action.
    """
    text = json.dumps(patch, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if "{{" in text:
        raise errors.Denial(
            "actuation=direct: the inference-server container contains '{{', which the server-patch template "
            "would interpret; write the dual-pods.llm-d.ai/server-patch annotation yourself"
        )
    return text
