"""Launcher Pod template specialisation: LauncherConfig + node → the launcher Pod to create.

The dual-pods controller (cold path: a launcher created already bound) and the
launcher populator (warm launchers per policy) MUST produce identical Pods
(docs/populator.md, "Template specialisation"), because each compares the
other's launchers with its own template hash to tell current launchers from
stale ones.  So there is exactly one function that builds them, here, and it
is pure.

The steps, numbered as in docs/populator.md, "Template specialisation":

1. deep-copy ``spec.podTemplate`` and canonicalise it (stable sorts of mounts,
   ports, ``envFrom``, volumes, tolerations and pull secrets; env and container
   order kept);
2. template labels and annotations, the LC's namespace, ``generateName``
   ``launcher-<lc>-`` and a non-controller owner reference to the LC;
3. the three launcher labels (component, launcher-config-name, sleeping);
4. the node-independent template hash over that Pod (canonical JSON);
5. on ``inference-server``: the four env upserts, the launcher probes and
   ``nvidia.com/gpu`` zeroed where limits/requests exist;
6. ``nvidia.com/gpu`` removed from the Pod ``overhead``;
7. the notifier sidecar's *equivalent* is nothing at all: our launcher
   publishes its instances on its own Pod in-process (docs/launcher.md,
   "Publishing the inventory on the launcher Pod") and finds
   that Pod by itself (``launcher/pod_identity.py``: ``POD_NAME`` and
   ``NAMESPACE`` when the template sets them, else its service-account
   token's claims, the service-account namespace file and its host name).
   So no ``state-change-reflector`` container is added, and no downward-API
   env either: a launcher built from a LauncherConfig written for upstream's
   controller is the one we build, and it still notices a dead instance
   (tests/integration/dpc/test_upstream_style_lc.py).  A sidecar, or a
   ``POD_NAME``/``NAMESPACE``, that the template declares is left as it is;
   a template that reads the ``gpu-map`` ConfigMap (``NODE_NAME``) sets its
   own ``NAMESPACE``, as docs/examples/launcherconfig.yaml does.

Then the node-specific part: the ``node-name`` label, the hostname
``nodeSelector`` and the ``launcher-config-hash`` annotation; and, when launcher
auth is on (docs/security.md, "Launcher auth, end to end"),
``FMA_LAUNCHER_TOKEN`` from a Secret.  Everything after step 4 is outside the
template hash.  Two extensions of step 5: ``FMA_LAUNCHER_MAX_INSTANCES`` from
the LC's ``maxInstances`` (the launcher enforces it too), and the readiness
probe on ``/readyz``, which works with auth on.

Pure; no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import crds
from controllers import errors
from crds import binding_record, decoding, hashes, keys, kinds, names

__all__ = [
    "AUTH_TOKEN_SECRET_KEY",
    "LAUNCHER_ENV",
    "LIVENESS_PROBE",
    "MAX_INSTANCES_ENV",
    "READINESS_PROBE",
    "MalformedLauncherConfig",
    "config_hash",
    "generate_name",
    "is_bound",
    "malformation",
    "node_independent_pod",
    "specialise",
    "template_hash",
]

LAUNCHER_ENV: tuple[tuple[str, str], ...] = (
    ("PYTHONPATH", "/app"),
    (names.NVIDIA_VISIBLE_DEVICES_ENV, "all"),
    ("NVIDIA_DRIVER_CAPABILITIES", "compute,utility"),
    ("VLLM_SERVER_DEV_MODE", "1"),
)
"""The env vars upserted on ``inference-server``, in the order they are appended.

See docs/protocol.md, "Fixed names, containers and environment".
"""

LIVENESS_PROBE: Mapping[str, Any] = {
    "httpGet": {"path": "/health", "port": names.LAUNCHER_PORT},
    "initialDelaySeconds": 10,
    "periodSeconds": 20,
    "timeoutSeconds": 1,
    "failureThreshold": 3,
}
"""The launcher's liveness probe (step 5)."""

READINESS_PROBE: Mapping[str, Any] = {
    "httpGet": {"path": "/readyz", "port": names.LAUNCHER_PORT},
    "initialDelaySeconds": 2,
    "periodSeconds": 5,
    "timeoutSeconds": 2,
    "failureThreshold": 3,
}
"""The launcher's readiness probe (step 5), on ``/readyz`` rather than upstream's ``/v2/vllm/instances``.

``/readyz`` stays open when launcher auth is on (a probe sends no token) and
says whether the engine is preloaded and the preloaded parent alive, without
listing instances.
"""

MAX_INSTANCES_ENV = "FMA_LAUNCHER_MAX_INSTANCES"
"""The launcher's own cap on instances, set from the LC's ``maxInstances`` (outside the template hash)."""

AUTH_TOKEN_SECRET_KEY = "token"  # noqa: S105 - the key inside the Secret, not a secret
"""The default key of the launcher token inside the auth Secret."""


class MalformedLauncherConfig(errors.UserError):
    """The LauncherConfig cannot be turned into a launcher Pod; the message is the status error."""


def malformation(launcher_config: Mapping[str, Any]) -> str | None:
    """Return why ``launcher_config`` (a raw LC) is malformed, or None when launchers can be built from it.

    The message for a template without ``inference-server`` is upstream's
    exact LC status error.  Pure.
    """
    try:
        model = decoding.decode(crds.LauncherConfig, launcher_config)
    except ValueError as exc:
        return str(exc)
    return model.malformation()


def is_bound(pod: Mapping[str, Any]) -> bool:
    """Return whether a provider Pod carries a valid binding record (pure)."""
    return binding_record.from_annotations((pod.get("metadata") or {}).get("annotations")) is not None


def generate_name(launcher_config_name: str) -> str:
    """Return the launcher ``generateName``: ``launcher-<lc>-`` (pure)."""
    return f"launcher-{launcher_config_name}-"


def node_independent_pod(launcher_config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the launcher Pod after steps 1-3: the body the template hash is taken over.

    Raises ``MalformedLauncherConfig`` when the LC does not parse or lacks the
    ``inference-server`` container.  Pure; ``launcher_config`` is not modified.
    """
    problem = malformation(launcher_config)
    if problem is not None:
        raise MalformedLauncherConfig(problem)
    meta = launcher_config.get("metadata") or {}
    name = str(meta.get("name") or "")
    template = copy.deepcopy((launcher_config.get("spec") or {}).get("podTemplate") or {})
    template_meta = template.get("metadata") or {}
    spec: dict[str, Any] = template.get("spec") or {}
    _canonicalise(spec)
    labels = dict(template_meta.get("labels") or {})
    labels[keys.COMPONENT_LABEL] = keys.COMPONENT_LAUNCHER
    labels[keys.LAUNCHER_CONFIG_NAME_LABEL] = name
    labels[keys.SLEEPING_LABEL] = keys.SLEEPING_TRUE
    metadata: dict[str, Any] = {
        "generateName": generate_name(name),
        "namespace": meta.get("namespace"),
        "labels": labels,
        "annotations": dict(template_meta.get("annotations") or {}),
        "ownerReferences": [
            {
                "apiVersion": kinds.API_VERSION,
                "kind": kinds.LAUNCHER_CONFIG.kind,
                "name": name,
                "uid": meta.get("uid"),
                "controller": False,
                "blockOwnerDeletion": False,
            }
        ],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def template_hash(launcher_config: Mapping[str, Any]) -> str:
    """Return ``launcher-populator-template-hash`` of ``launcher_config`` (step 4; docs/protocol.md, "Identity hashes").

    Raises ``MalformedLauncherConfig`` like ``node_independent_pod``.  Pure.
    """
    return hashes.launcher_template_hash(node_independent_pod(launcher_config))


def config_hash(template_hash: str, node_name: str) -> str:
    """Return ``launcher-config-hash``: b64std(SHA-256(templateHash + ";node=" + node)) (pure)."""
    return hashes.launcher_config_hash(template_hash, node_name)


def specialise(
    launcher_config: Mapping[str, Any],
    node_name: str,
    *,
    auth_token_secret: str | None = None,
    auth_token_key: str = AUTH_TOKEN_SECRET_KEY,
) -> dict[str, Any]:
    """Return the complete launcher Pod for ``node_name``, ready to POST.

    ``auth_token_secret`` names the Secret whose ``auth_token_key`` holds the
    launcher bearer token; when given, ``FMA_LAUNCHER_TOKEN`` is injected from
    it.  Raises ``MalformedLauncherConfig`` (a ``UserError``) when the
    LC does not parse or has no ``inference-server`` container, with message
    ``container "inference-server" not found`` in the latter case.  Pure.
    """
    pod = node_independent_pod(launcher_config)
    digest = hashes.launcher_template_hash(pod)
    metadata = pod["metadata"]
    spec = pod["spec"]
    metadata["annotations"][keys.LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION] = digest
    server = next(c for c in spec["containers"] if c.get("name") == names.INFERENCE_SERVER_CONTAINER)
    env: list[dict[str, Any]] = list(server.get("env") or [])
    for env_name, value in LAUNCHER_ENV:
        _upsert(env, {"name": env_name, "value": value})
    max_instances = (launcher_config.get("spec") or {}).get("maxInstances")
    if isinstance(max_instances, int):
        _upsert(env, {"name": MAX_INSTANCES_ENV, "value": str(max_instances)})
    if auth_token_secret is not None:
        _upsert(
            env,
            {
                "name": names.LAUNCHER_TOKEN_ENV,
                "valueFrom": {"secretKeyRef": {"name": auth_token_secret, "key": auth_token_key}},
            },
        )
    server["env"] = env
    server["livenessProbe"] = copy.deepcopy(dict(LIVENESS_PROBE))
    server["readinessProbe"] = copy.deepcopy(dict(READINESS_PROBE))
    resources = server.get("resources")
    if isinstance(resources, dict):
        for part in ("limits", "requests"):
            amounts = resources.get(part)
            if isinstance(amounts, dict):
                amounts[names.GPU_RESOURCE] = "0"
    overhead = spec.get("overhead")
    if isinstance(overhead, dict):
        overhead.pop(names.GPU_RESOURCE, None)
        if not overhead:
            del spec["overhead"]
    metadata["labels"][keys.NODE_NAME_LABEL] = node_name
    node_selector = dict(spec.get("nodeSelector") or {})
    node_selector[names.HOSTNAME_NODE_SELECTOR] = node_name
    spec["nodeSelector"] = node_selector
    metadata["annotations"][keys.LAUNCHER_CONFIG_HASH_ANNOTATION] = hashes.launcher_config_hash(digest, node_name)
    return pod


# --- canonicalisation (step 1) ------------------------------------------------------------


def _text(item: Mapping[str, Any], field: str) -> str:
    value = item.get(field)
    return "" if value is None else str(value)


def _number(item: Mapping[str, Any], field: str) -> int:
    value = item.get(field)
    return value if isinstance(value, int) else 0


def _sort(holder: dict[str, Any], field: str, key: Callable[[Mapping[str, Any]], Any]) -> None:
    items = holder.get(field)
    if isinstance(items, list) and all(isinstance(item, Mapping) for item in items):
        holder[field] = sorted(items, key=key)  # sorted() is stable


def _canonicalise(spec: dict[str, Any]) -> None:
    for group in ("containers", "initContainers"):
        for container in spec.get(group) or []:
            if not isinstance(container, dict):
                continue
            _sort(container, "volumeMounts", lambda m: (_text(m, "name"), _text(m, "mountPath")))
            _sort(
                container,
                "ports",
                lambda p: (_text(p, "name"), _number(p, "containerPort"), _text(p, "protocol")),
            )
            _sort(container, "envFrom", lambda e: _text(e, "prefix"))
    _sort(spec, "volumes", lambda v: _text(v, "name"))
    _sort(
        spec,
        "tolerations",
        lambda t: (_text(t, "key"), _text(t, "operator"), _text(t, "value"), _text(t, "effect")),
    )
    _sort(spec, "imagePullSecrets", lambda s: _text(s, "name"))


def _upsert(env: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    for index, existing in enumerate(env):
        if existing.get("name") == entry["name"]:
            env[index] = entry
            return
    env.append(entry)
