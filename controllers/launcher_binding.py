"""Launcher mode, unbound requester: resolve its ISC and LauncherConfig, choose a launcher, bind.

docs/controllers.md, "Launcher mode", up to "binds first, without waking": the requester's ISC and
LC are resolved (a problem goes to its status), the launchers of its node
with the LC's config hash are listed through their agents, and the pure
``launcher_selection.choose`` picks hot, warm, reclaim (delete victims
first) or a new launcher.  One write binds: an update of the launcher's
metadata carrying the resourceVersion read, or the create of a launcher Pod
that is bound from birth.  What happens next is ``launcher_bound``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

import pydantic

import kube
from controllers import (
    dpc_indexes,
    dpc_settings,
    dpc_state,
    errors,
    launcher_selection,
    launcher_template,
    pod_view,
    requester_side,
)
from crds import (
    binding_record,
    hashes,
    inference_server_config,
    keys,
    launcher_config,
    names,
    ports,
    routing_metadata,
    validation_paths,
    vllm_config_annotation,
)
from crds import errors as crds_errors
from kube import resources

__all__ = ["Desired", "LauncherBinding", "desired"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Desired:
    """What a requester wants of a launcher: the instance and the four bound annotations."""

    instance_id: str
    port: int
    vllm: vllm_config_annotation.VllmConfig
    routing: routing_metadata.RoutingMetadata

    def bound_annotations(self) -> dict[str, str]:
        """The launcher annotations that commit it to this instance."""
        return {
            keys.INSTANCE_ID_ANNOTATION: self.instance_id,
            keys.SERVER_PORT_ANNOTATION: ports.format_port(self.port),
            keys.VLLM_CONFIG_ANNOTATION: self.vllm.format(),
            keys.ISC_ROUTING_METADATA_ANNOTATION: self.routing.format(),
        }


def desired(isc: inference_server_config.InferenceServerConfig, gpus: list[str]) -> Desired:
    """The instance a requester of ``isc`` on ``gpus`` needs (pure)."""
    server = isc.spec.model_server_config
    options = (server.options or "") + f" --port {server.port}"
    vllm = vllm_config_annotation.VllmConfig(
        options=options,
        gpu_uuids=list(gpus) or None,
        env_vars=dict(server.env_vars) if server.env_vars else None,
        annotations={
            names.INSTANCE_ISC_NAME: isc.metadata.name,
            names.INSTANCE_INFERENCE_PORT: str(server.port),
            names.INSTANCE_CONFIG_KEY: hashes.config_key(server),
        },
    )
    return Desired(instance_id=hashes.instance_id(server, gpus), port=server.port, vllm=vllm, routing=server.routing())


class LauncherBinding:
    """Chooses and binds a launcher for an unbound launcher-mode requester."""

    def __init__(
        self,
        side: requester_side.RequesterSide,
        *,
        settings: dpc_settings.DPCSettings,
        pods: kube.WatchCache,
        iscs: kube.WatchCache,
        lcs: kube.WatchCache,
    ) -> None:
        self._side = side
        self._settings = settings
        self._pods = pods
        self._iscs = iscs
        self._lcs = lcs

    def resolve(
        self, requester: Mapping[str, Any]
    ) -> tuple[inference_server_config.InferenceServerConfig, dict[str, Any], launcher_config.LauncherConfig]:
        """The requester's ISC, its LC raw and parsed; raises ``UserError`` with the status text."""
        namespace = self._settings.namespace
        isc_name = pod_view.annotations_of(requester).get(keys.INFERENCE_SERVER_CONFIG_ANNOTATION, "")
        if not isc_name:
            raise errors.UserError(f'empty value for annotation "{keys.INFERENCE_SERVER_CONFIG_ANNOTATION}"')
        raw_isc = self._iscs.get_by_name(isc_name, namespace)
        if raw_isc is None:
            raise errors.UserError(f'failed to get InferenceServerConfig "{isc_name}": not found')
        try:
            isc = inference_server_config.InferenceServerConfig.model_validate(raw_isc)
        except pydantic.ValidationError as exc:
            raise errors.UserError(
                f'failed to get InferenceServerConfig "{isc_name}": invalid: {validation_paths.summary(exc)}'
            ) from exc
        lc_name = isc.spec.launcher_config_name
        raw_lc = self._lcs.get_by_name(lc_name, namespace)
        if raw_lc is None:
            raise errors.UserError(
                f'failed to get LauncherConfig "{lc_name}" of InferenceServerConfig "{isc_name}": not found'
            )
        try:
            lc = launcher_config.LauncherConfig.model_validate(raw_lc)
        except pydantic.ValidationError as exc:
            raise errors.UserError(f'LauncherConfig "{lc_name}" is malformed: {validation_paths.summary(exc)}') from exc
        malformed = launcher_template.malformation(raw_lc)
        if malformed:
            raise errors.UserError(f'LauncherConfig "{lc_name}" is malformed: {malformed}')
        return isc, raw_lc, lc

    def _candidate(self, pod: Mapping[str, Any]) -> launcher_selection.Candidate:
        unusable = (
            pod_view.is_failed(pod)
            or pod_view.is_deleting(pod)
            or binding_record.from_annotations(pod_view.annotations_of(pod)) is not None
            or pod_view.labels_of(pod).get(keys.LAUNCHER_STUCK_LABEL) == keys.STUCK_TRUE
        )
        ip = pod_view.pod_ip(pod)
        ready = ip is not None and pod_view.is_ready(pod)
        if unusable or not ready or ip is None:
            return launcher_selection.Candidate(pod_view.name(pod), ready=ready, unusable=unusable)
        try:
            listing = self._side.agents.list_instances(ip)
        except errors.EngineHTTPError as exc:
            # One unreachable launcher must not stall the node: treat it as not ready.
            logger.warning("launcher unreachable", extra={"launcher": pod_view.name(pod), "error": str(exc)})
            return launcher_selection.Candidate(pod_view.name(pod), ready=False, unusable=False)
        views = []
        for state in listing.get("instances") or []:
            notes = state.get("annotations") or {}
            try:
                port: int | None = ports.parse_port(
                    names.INSTANCE_INFERENCE_PORT, str(notes.get(names.INSTANCE_INFERENCE_PORT))
                )
            except crds_errors.CrdsError:
                port = None
            views.append(
                launcher_selection.InstanceView(str(state["instance_id"]), port, state.get("status") == "stopped")
            )
        self._side.state.discover(pod_view.name(pod), [v.instance_id for v in views], self._side.monotonic())
        return launcher_selection.Candidate(pod_view.name(pod), ready=True, unusable=False, instances=tuple(views))

    def _candidates(self, node: str, config_hash: str) -> list[launcher_selection.Candidate]:
        """The node's launchers of this config, each synced and cleaned of garbage instances."""
        candidates: list[launcher_selection.Candidate] = []
        for pod in self._pods.by_index(dpc_indexes.LAUNCHER_NODE, node):
            if pod_view.annotations_of(pod).get(keys.LAUNCHER_CONFIG_HASH_ANNOTATION) != config_hash:
                continue
            candidate = self._candidate(pod)
            garbage = launcher_selection.cleanup_needed(candidate) if not candidate.unusable else ()
            if garbage:
                ip = pod_view.pod_ip(pod)
                assert ip is not None
                for instance in garbage:
                    self._side.agents.delete_instance(ip, instance)
                candidate = self._candidate(pod)
            candidates.append(candidate)
        return candidates

    def bind(self, requester: Mapping[str, Any], gpus: list[str], memo: dpc_state.RequesterMemo) -> float | None:
        """Choose a launcher for the requester and bind it (or create one bound); raises ``UserError``."""
        isc, raw_lc, lc = self.resolve(requester)
        node = str(requester["spec"]["nodeName"])
        config_hash = launcher_template.config_hash(launcher_template.template_hash(raw_lc), node)
        want = desired(isc, gpus)
        backoff = self._side.state.start_backoff(node, hashes.config_key(isc.spec.model_server_config))
        wait = backoff.not_before - self._side.monotonic()
        if wait > 0:
            return wait
        choice = launcher_selection.choose(
            self._candidates(node, config_hash),
            instance_id=want.instance_id,
            port=want.port,
            max_instances=lc.spec.max_instances,
            last_used=self._side.state.last_used(),
        )
        logger.info(
            "launcher chosen",
            extra={"pod": pod_view.name(requester), "node": node, "action": choice.action, "launcher": choice.launcher},
        )
        if choice.action == "wait":
            return None  # a launcher's readiness change re-enqueues us
        if choice.action == "new":
            created = self._create_bound(requester, raw_lc, node, want.bound_annotations())
            memo.path = "cold"
            memo.pending_provider, memo.pending_since = created, self._side.monotonic()
            return None
        assert choice.launcher is not None
        launcher = self._pods.get_by_name(choice.launcher, self._settings.namespace)
        if launcher is None:
            raise errors.RetryableError(f"launcher {choice.launcher!r} vanished from the cache")
        if choice.victims:
            ip = pod_view.pod_ip(launcher)
            assert ip is not None
            for victim in choice.victims:
                self._side.agents.delete_instance(ip, victim)
            memo.instances_deleted += len(choice.victims)
        self._bind_existing(requester, launcher, want.bound_annotations())
        memo.path = "hot" if choice.action == "hot" else "warm"
        memo.pending_provider, memo.pending_since = choice.launcher, self._side.monotonic()
        self._side.state.touch(choice.launcher, want.instance_id, self._side.monotonic())
        return None

    def _create_bound(
        self, requester: Mapping[str, Any], raw_lc: Mapping[str, Any], node: str, bound_notes: dict[str, str]
    ) -> str:
        body = launcher_template.specialise(raw_lc, node, auth_token_secret=self._settings.launcher_token_secret)
        meta = body.setdefault("metadata", {})
        meta.setdefault("annotations", {}).update(
            {keys.REQUESTER_ANNOTATION: binding_record.format_record(pod_view.uid(requester), pod_view.name(requester))}
        )
        meta["annotations"].update(bound_notes)
        meta.setdefault("labels", {})[keys.DUAL_LABEL] = pod_view.name(requester)
        meta["finalizers"] = [*meta.get("finalizers", []), keys.PROVIDER_FINALIZER]
        lc_name = str(raw_lc["metadata"]["name"])
        started = time.monotonic()
        success = "false"
        try:
            created = self._side.api.create(resources.PODS, body, self._settings.namespace)
            success = "true"
        finally:
            self._side.metrics.launcher_create_seconds.labels(
                exported_namespace=self._settings.namespace, lcfg_name=lc_name, success=success
            ).observe(time.monotonic() - started)
        logger.info(
            "created bound launcher", extra={"pod": pod_view.name(requester), "launcher": pod_view.name(created)}
        )
        return pod_view.name(created)

    def _bind_existing(
        self, requester: Mapping[str, Any], launcher: Mapping[str, Any], bound_notes: dict[str, str]
    ) -> None:
        """The bind write: one launcher patch carrying the resourceVersion read."""
        fins = pod_view.finalizers(launcher)
        notes: dict[str, str] = {
            keys.REQUESTER_ANNOTATION: binding_record.format_record(pod_view.uid(requester), pod_view.name(requester)),
            **bound_notes,
        }
        try:
            self._side.api.patch(
                resources.PODS,
                pod_view.name(launcher),
                {
                    "metadata": {
                        "resourceVersion": launcher["metadata"]["resourceVersion"],
                        "annotations": notes,
                        "labels": {keys.DUAL_LABEL: pod_view.name(requester)},
                        "finalizers": fins if keys.PROVIDER_FINALIZER in fins else [*fins, keys.PROVIDER_FINALIZER],
                    }
                },
                self._settings.namespace,
            )
        except kube.errors.Conflict as exc:
            raise errors.RetryableError(f"binding to launcher {pod_view.name(launcher)!r} conflicted") from exc
