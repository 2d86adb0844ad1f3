"""The decision: how an admitted Pod becomes a server-requesting Pod (pure).

``mutate`` takes the raw incoming Pod, the webhook's options and the
cluster facts, and returns a ``Decision``: allowed or denied (with the
message users see), the JSON Patch operations computed against the *raw*
object, and warnings.  Modes (docs/webhook.md, "What it does to a Pod"):

* **launcher** — ``inference-server-config`` is present: the
  ``inference-server`` container becomes the requester agent.
* **direct** — ``actuation: direct``: the container becomes the agent and
  the ``server-patch`` is derived from the user's container (or the user's
  own patch is validated and kept).
* **requester** — a ``server-patch`` written by the user without
  ``actuation``: an upstream-style requester whose container already is a
  requester stub; only the metadata FMA needs is added.

Every mode adds ``converted: v1``, the requester finalizer, the
``admin-port`` annotation, (when configured) the scheduler name and (with
``placement: hints`` or ``hints+extender``) the placement hints the facts
carry (``placement_hints``), and (with ``nominate``, when the best hinted
node is certain-hot) the nomination annotation, with the gate for ``gate``.  A Pod
that carries ``converted`` is left alone, so a second pass (reinvocation)
changes nothing.

Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from crds import errors as crds_errors
from crds import keys, metadata_rules, names, ports, quantity, validation_paths
from crds import pod_view as crds_pod_view
from webhook import (
    cluster_facts,
    errors,
    gpu_claim,
    json_patch,
    placement_hints,
    pod_view,
    requester_agent,
    server_patch,
)

__all__ = ["HINTED_PLACEMENTS", "Decision", "Mode", "Nominate", "Options", "Placement", "mutate"]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MAX_DNS_SUBDOMAIN = 253
_DEFAULT_SCHEDULER = "default-scheduler"

Mode = Literal["launcher", "direct", "requester", "none"]
"""``none``: not an FMA Pod, or already converted."""

Placement = Literal["extender", "hints", "hints+extender"]
Nominate = Literal["off", "gate", "plugin"]
"""How a certain-hot node reaches kube-scheduler (``Options.nominate``)."""
"""How requesters are steered to sleepers (docs/extender.md, "Placement modes")."""

HINTED_PLACEMENTS: frozenset[str] = frozenset({"hints", "hints+extender"})
"""The placements in which the webhook writes hints."""


@dataclasses.dataclass(frozen=True)
class Options:
    """The webhook's settings as the mutation needs them."""

    agent: requester_agent.AgentSpec
    spi_port: int = names.SPI_PORT_DEFAULT
    scheduler_name: str = names.SCHEDULER_NAME_DEFAULT
    placement: Placement = "extender"
    gpu_claims: gpu_claim.GpuClaims = dataclasses.field(default_factory=gpu_claim.GpuClaims)
    """DRA mode (``gpu_claim``): which requesters get a ResourceClaim instead of ``nvidia.com/gpu``."""
    nominate: Nominate = "off"
    """With hints, a requester whose best node is certain-hot gets that node in ``keys.NOMINATED_NODE_ANNOTATION``:
    with ``gate`` also our scheduling gate, for the controllers to nominate (``placement_hints.gate_operations``);
    with ``plugin`` the annotation alone, read by FMA's kube-scheduler build; ``off`` writes neither."""


@dataclasses.dataclass(frozen=True)
class Decision:
    """The answer for one Pod."""

    allowed: bool
    mode: Mode
    patch: tuple[json_patch.Operation, ...] = ()
    warnings: tuple[str, ...] = ()
    message: str = ""
    nominated_node: str | None = None
    """The node written into ``keys.NOMINATED_NODE_ANNOTATION`` (with ``gate``, next to the gate); None when none."""

    @property
    def outcome(self) -> str:
        """``patched``, ``unchanged`` or ``denied`` (a metrics label)."""
        if not self.allowed:
            return "denied"
        return "patched" if self.patch else "unchanged"


def _deny(mode: Mode, message: str) -> Decision:
    return Decision(allowed=False, mode=mode, message=message)


def _validation_message(exc: pydantic.ValidationError) -> str:
    return "malformed Pod: " + validation_paths.summary(exc)


def _gpu_resources(container: pod_view.Container) -> tuple[int, dict[str, dict[str, Any]]]:
    """The GPU count and the user's raw GPU quantities; raise ``Denial`` when missing or not positive."""
    raw: dict[str, dict[str, Any]] = {}
    for section, values in (("limits", container.resources.limits), ("requests", container.resources.requests)):
        if names.GPU_RESOURCE in values:
            raw[section] = {names.GPU_RESOURCE: values[names.GPU_RESOURCE]}
    value = raw.get("limits", raw.get("requests", {})).get(names.GPU_RESOURCE)
    if value is None:
        raise errors.Denial(
            f"container {names.INFERENCE_SERVER_CONTAINER!r} must request {names.GPU_RESOURCE!r} "
            "in resources.limits (a server-requesting Pod holds the GPUs its server uses)"
        )
    try:
        count = quantity.parse(value if isinstance(value, int | str) else str(value))
    except (ValueError, crds_errors.CrdsError) as exc:
        raise errors.Denial(f"{names.GPU_RESOURCE} quantity {value!r} does not parse: {exc}") from exc
    if count <= 0 or count.denominator != 1:
        raise errors.Denial(f"{names.GPU_RESOURCE} must be a positive whole number, got {value!r}")
    return int(count), raw


def _spi_port(annotations: Mapping[str, str], options: Options) -> tuple[int, bool]:
    """The SPI port and whether the annotation must be added."""
    value = annotations.get(keys.ADMIN_PORT_ANNOTATION)
    if value is None:
        port, missing = options.spi_port, True
    else:
        try:
            port, missing = ports.parse_port(keys.ADMIN_PORT_ANNOTATION, value), False
        except crds_errors.InvalidAnnotation as exc:
            raise errors.Denial(str(exc)) from exc
    if port == options.agent.probes_port:
        raise errors.Denial(
            f"{keys.ADMIN_PORT_ANNOTATION} {port} collides with the requester agent's probe port "
            f"{options.agent.probes_port}"
        )
    return port, missing


def _check_isc_name(value: str) -> None:
    if not value:
        raise errors.Denial(f"{keys.INFERENCE_SERVER_CONFIG_ANNOTATION} must name an InferenceServerConfig, got ''")
    if len(value) > _MAX_DNS_SUBDOMAIN or not _DNS_SUBDOMAIN.match(value):
        raise errors.Denial(
            f"{keys.INFERENCE_SERVER_CONFIG_ANNOTATION} {value!r} is not a valid InferenceServerConfig name "
            "(a lowercase DNS subdomain: a-z, 0-9, '-' and '.', at most 253 characters)"
        )


def _provider_labels(
    pod: pod_view.PodView, facts: cluster_facts.Facts, warnings: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Split the Pod's labels into (requester labels, labels moving to the provider)."""
    text = pod.metadata.annotations.get(keys.PROVIDER_LABELS_ANNOTATION, "")
    wanted = [k.strip() for k in text.split(",") if k.strip()]
    for key in wanted:
        problems = metadata_rules.label_key_problems(key)
        if problems:
            raise errors.Denial(f"{keys.PROVIDER_LABELS_ANNOTATION}: {problems[0]}")
    if facts.owner_selector_keys is not None:
        clash = sorted(set(wanted) & facts.owner_selector_keys)
        if clash:
            raise errors.Denial(
                f"{keys.PROVIDER_LABELS_ANNOTATION} names {clash[0]!r}, which the selector of {facts.owner} "
                "uses; moving it off the requester would make the set create Pods without end"
            )
    elif wanted and facts.owner is not None:
        warnings.append(f"could not read the selector of {facts.owner}; {keys.PROVIDER_LABELS_ANNOTATION} not checked")
    labels = dict(pod.metadata.labels)
    moved = {k: labels.pop(k) for k in wanted if k in labels}
    for key in wanted:
        if key not in moved:
            warnings.append(f"{keys.PROVIDER_LABELS_ANNOTATION} names {key!r}, but the Pod has no such label")
    return labels, moved


def _metadata_ops(
    raw: Mapping[str, Any], pod: pod_view.PodView, new_annotations: Mapping[str, str]
) -> list[json_patch.Operation]:
    ops: list[json_patch.Operation] = []
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata.get("annotations"), dict):
        ops.append(json_patch.add("/metadata/annotations", dict(new_annotations)))
    else:
        ops.extend(
            json_patch.add(json_patch.pointer("metadata", "annotations", k), v) for k, v in new_annotations.items()
        )
    if keys.REQUESTER_FINALIZER not in pod.metadata.finalizers:
        ops.append(json_patch.add("/metadata/finalizers", [*pod.metadata.finalizers, keys.REQUESTER_FINALIZER]))
    return ops


def _scheduler_ops(raw: Mapping[str, Any], options: Options, warnings: list[str]) -> tuple[list[Any], bool]:
    """Ops setting the scheduler name, and whether it changed."""
    if not options.scheduler_name:
        return [], False
    current = (raw.get("spec") or {}).get("schedulerName")
    if current == options.scheduler_name:
        return [], False
    if current in (None, "", _DEFAULT_SCHEDULER):
        return [json_patch.add("/spec/schedulerName", options.scheduler_name)], True
    warnings.append(f"schedulerName {current!r} kept; FMA's scheduler {options.scheduler_name!r} places GPUs better")
    return [], False


def _claimed(
    raw: Mapping[str, Any],
    pod: pod_view.PodView,
    agent: dict[str, Any],
    *,
    count: int,
    options: Options,
    facts: cluster_facts.Facts,
    new_annotations: dict[str, str],
) -> tuple[dict[str, Any], list[json_patch.Operation]]:
    """DRA mode: the agent with a claim instead of GPU quantities, and the claim reference ops."""
    if not gpu_claim.wanted(pod.metadata.annotations, options.gpu_claims):
        return agent, []
    name = gpu_claim.claim_name(pod, facts.request_uid)
    ops, annotations = gpu_claim.operations(raw, name, count, options.gpu_claims, facts.claim_preference)
    new_annotations.update(annotations)
    return gpu_claim.apply_to_agent(agent), ops


def mutate(raw: Mapping[str, Any], options: Options, facts: cluster_facts.Facts) -> Decision:
    """Decide what to do with the raw Pod ``raw`` (pure; no I/O)."""
    try:
        pod = pod_view.parse(raw)
    except pydantic.ValidationError as exc:
        return _deny("none", _validation_message(exc))
    annotations = pod.metadata.annotations
    if annotations.get(keys.CONVERTED_ANNOTATION):
        return Decision(allowed=True, mode="none")
    has_isc = crds_pod_view.names_isc(annotations)
    has_patch = crds_pod_view.has_server_patch(annotations)
    actuation = annotations.get(keys.ACTUATION_ANNOTATION)
    mode: Mode = "launcher" if has_isc else "direct" if actuation is not None else "requester" if has_patch else "none"
    if mode == "none":
        return Decision(allowed=True, mode=mode)
    try:
        return _convert(raw, pod, mode, options, facts)
    except errors.Denial as denial:
        return _deny(mode, denial.message)


def _convert(
    raw: Mapping[str, Any], pod: pod_view.PodView, mode: Mode, options: Options, facts: cluster_facts.Facts
) -> Decision:
    annotations = pod.metadata.annotations
    actuation = annotations.get(keys.ACTUATION_ANNOTATION)
    has_patch = crds_pod_view.has_server_patch(annotations)
    if actuation is not None and actuation != keys.ACTUATION_DIRECT:
        raise errors.Denial(f"{keys.ACTUATION_ANNOTATION} must be {keys.ACTUATION_DIRECT!r}, got {actuation!r}")
    if mode == "launcher" and (has_patch or actuation is not None):
        other = keys.SERVER_PATCH_ANNOTATION if has_patch else keys.ACTUATION_ANNOTATION
        raise errors.Denial(
            f"{keys.INFERENCE_SERVER_CONFIG_ANNOTATION} (launcher mode) and {other} (direct mode) exclude each other"
        )
    index = next((i for i, c in enumerate(pod.spec.containers) if c.name == names.INFERENCE_SERVER_CONTAINER), None)
    if index is None:
        raise errors.Denial(
            f"an FMA Pod needs a container named {names.INFERENCE_SERVER_CONTAINER!r}; "
            f"found {[c.name for c in pod.spec.containers]}"
        )
    gpu_count, gpu_raw = _gpu_resources(pod.spec.containers[index])
    spi_port, add_admin_port = _spi_port(annotations, options)
    warnings: list[str] = []
    new_annotations: dict[str, str] = {}
    if mode == "launcher":
        isc = annotations[keys.INFERENCE_SERVER_CONFIG_ANNOTATION]
        _check_isc_name(isc)
        if facts.isc_exists is False:
            warnings.append(f"InferenceServerConfig {isc!r} does not exist (yet) in this namespace")
    if has_patch:
        server_patch.validate(annotations[keys.SERVER_PATCH_ANNOTATION])
    ops: list[json_patch.Operation] = []
    scheduler_ops, scheduler_changed = _scheduler_ops(raw, options, warnings)
    if mode in ("launcher", "direct"):
        agent = requester_agent.container(options.agent, spi_port, gpu_raw)
        if mode == "direct" and not has_patch:
            requester_labels, moved = _provider_labels(pod, facts, warnings)
            server = raw["spec"]["containers"][index]
            original_scheduler = (raw.get("spec") or {}).get("schedulerName")
            derived = server_patch.derive(
                server,
                agent,
                (raw.get("spec") or {}).get("volumes") or [],
                drop_labels=sorted(requester_labels),
                provider_labels=moved,
                scheduler_name=(original_scheduler,) if scheduler_changed else None,
            )
            new_annotations[keys.SERVER_PATCH_ANNOTATION] = server_patch.encode(derived)
            if moved:
                ops.append(json_patch.replace("/metadata/labels", requester_labels))
        elif mode == "direct" and keys.PROVIDER_LABELS_ANNOTATION in annotations:
            warnings.append(f"{keys.PROVIDER_LABELS_ANNOTATION} is ignored when the server-patch is written by hand")
        agent, claim_ops = _claimed(
            raw, pod, agent, count=gpu_count, options=options, facts=facts, new_annotations=new_annotations
        )
        ops += claim_ops
        ops.append(json_patch.replace(json_patch.pointer("spec", "containers", index), agent))
    if add_admin_port:
        new_annotations[keys.ADMIN_PORT_ANNOTATION] = ports.format_port(spi_port)
    new_annotations[keys.CONVERTED_ANNOTATION] = keys.CONVERTED_V1
    hints = facts.hints if options.placement in HINTED_PLACEMENTS else None
    gate_ops = _nomination(raw, options, hints, new_annotations)
    ops = _metadata_ops(raw, pod, new_annotations) + ops + scheduler_ops
    if hints is not None:
        ops += placement_hints.operations(raw, hints)
    ops += gate_ops
    return Decision(
        allowed=True,
        mode=mode,
        patch=tuple(ops),
        warnings=tuple(warnings),
        nominated_node=new_annotations.get(keys.NOMINATED_NODE_ANNOTATION),
    )


def _nomination(
    raw: Mapping[str, Any], options: Options, hints: placement_hints.Hints | None, new_annotations: dict[str, str]
) -> list[json_patch.Operation]:
    """The gate ops (``gate``; none for ``plugin``), with the nominated node added to ``new_annotations``;
    nothing unless ``nominate`` is on and a certain-hot node is known (no gate without a node to nominate)."""
    if options.nominate == "off" or hints is None or hints.nominee is None:
        return []
    if options.nominate == "plugin":
        new_annotations[keys.NOMINATED_NODE_ANNOTATION] = hints.nominee
        return []
    gate_ops = placement_hints.gate_operations(raw)
    if gate_ops:
        new_annotations[keys.NOMINATED_NODE_ANNOTATION] = hints.nominee
    return gate_ops
