"""The notifier sidecar: our Pod publisher in sidecar mode, for launcher Pods built by upstream's controller.

Upstream's controller appends a container ``state-change-reflector`` to every
launcher Pod that runs ``python3 /app/launcher_pod_notifier.py`` from the
launcher's image with ``LAUNCHER_BASE_URL=http://127.0.0.1:8001`` and
``POD_NAME``/``NAMESPACE`` from the downward API.  Our image's file of that
name runs ``main`` here.  Every ``poll_seconds`` (2 s) it:

1. reads its own Pod (annotations and resourceVersion);
2. reads ``GET /v2/vllm/instances`` from the launcher (timeout 5 s);
3. computes the two annotations the in-process publisher writes
   (``inventory.pod_annotations``: ``vllm-instance-signature`` and
   ``dual-pods.llm-d.ai/instances``);
4. if the Pod does not carry exactly those, merge-patches them *on the
   resourceVersion read in step 1*.

Our launcher normally publishes in-process already (``pod_publisher``), well
within 1 s of each change; then step 4 finds nothing to do.  Both writers
write the same content for the same state, and the order of the steps keeps
the sidecar from overwriting a newer in-process write with its older view:
the Pod is read before the launcher, so whatever the Pod showed is no newer
than what the sidecar then reads from the launcher, and a write that lands
in between fails the resourceVersion precondition (409) and is simply
looked at again on the next poll.  Any other failure waits ``backoff_seconds``
(5 s) before the next try, as upstream's sidecar does.

Like upstream's, the sidecar exits with status 1 when it cannot run at all:
no in-cluster credentials, or no way to tell which Pod it is in (it finds
its Pod as the launcher does, ``pod_identity``, so ``POD_NAME`` and
``NAMESPACE`` are welcome but not required).

``decide`` is pure; ``Notifier.poll`` does one round of I/O; ``main`` wires
the settings, the clients and the signal handling.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Protocol

import httpx
import pydantic

from crds import log_output, validation_paths
from launcher import apiserver, errors, inventory, pod_identity, schemas
from launcher import settings as settings_mod

__all__ = ["Notifier", "PodClient", "decide", "main", "run"]

logger = logging.getLogger(__name__)

INSTANCES_PATH = "/v2/vllm/instances"


class PodClient(Protocol):
    """Reads and patches the sidecar's own Pod (``apiserver.Client``)."""

    def get(self, path: str) -> bytes:
        """The body of ``GET path``; raises ``errors.ApiServerError``."""
        ...

    def patch_annotations(self, path: str, annotations: dict[str, str], resource_version: str | None = None) -> None:
        """Merge-patch annotations on that resourceVersion; raises ``errors.ApiServerError`` (409 if changed)."""
        ...


class _Meta(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow", populate_by_name=True)

    annotations: dict[str, str] | None = None
    resource_version: str | None = pydantic.Field(default=None, alias="resourceVersion")


class _Pod(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    metadata: _Meta = pydantic.Field(default_factory=_Meta)


def decide(current: dict[str, str], wanted: dict[str, str]) -> dict[str, str] | None:
    """The annotations to write, or None when the Pod already carries all of ``wanted`` (pure)."""
    if all(current.get(key) == value for key, value in wanted.items()):
        return None
    return dict(wanted)


class Notifier:
    """One launcher Pod's sidecar publisher: ``poll`` once, or ``run`` until stopped."""

    def __init__(
        self,
        pod_client: PodClient,
        launcher: httpx.Client,
        pod_path: str,
        poll_seconds: float = 2.0,
        backoff_seconds: float = 5.0,
    ) -> None:
        self._pods = pod_client
        self._launcher = launcher
        self._pod_path = pod_path
        self._poll_seconds = poll_seconds
        self._backoff_seconds = backoff_seconds
        self.patches = 0
        """Successful patches so far."""

    def _wanted(self) -> dict[str, str]:
        try:
            response = self._launcher.get(INSTANCES_PATH, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise errors.LauncherError(f"GET {INSTANCES_PATH} from the launcher failed: {exc!r}") from exc
        if response.status_code != 200:
            raise errors.LauncherError(
                f"GET {INSTANCES_PATH} from the launcher answered {response.status_code}: {response.text[:200]!r}"
            )
        try:
            view = schemas.ListView.model_validate_json(response.content)
        except pydantic.ValidationError as exc:
            raise errors.LauncherError(
                f"the launcher's instance list is malformed: {validation_paths.summary(exc)}"
            ) from exc
        return inventory.pod_annotations(inventory.Snapshot(revision=view.revision, instances=view.instances))

    def poll(self) -> float:
        """One round (read the Pod, read the launcher, patch if they differ); returns the seconds until the next.

        Raises nothing it can recover from: failures are logged and answered
        with the back-off interval.
        """
        try:
            pod = _Pod.model_validate_json(self._pods.get(self._pod_path))
            wanted = self._wanted()
            patch = decide(pod.metadata.annotations or {}, wanted)
            if patch is None:
                return self._poll_seconds
            self._pods.patch_annotations(self._pod_path, patch, pod.metadata.resource_version)
        except errors.ApiServerError as exc:
            if exc.status == 409:
                logger.info("the Pod changed while publishing; looking again", extra={"pod": self._pod_path})
                return self._poll_seconds
            logger.warning("publishing on the Pod failed", extra={"pod": self._pod_path, "error": str(exc)})
            return self._backoff_seconds
        except (errors.LauncherError, pydantic.ValidationError) as exc:
            problem = validation_paths.summary(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
            logger.warning("reading the launcher or the Pod failed", extra={"pod": self._pod_path, "error": problem})
            return self._backoff_seconds
        self.patches += 1
        logger.info("instances published on the Pod", extra={"pod": self._pod_path, "patches": self.patches})
        return self._poll_seconds

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (waiting on it between rounds, so a stop is prompt)."""
        while not stop.is_set():
            try:
                delay = self.poll()
            except Exception:  # supervising loop: a bug must not end publishing for good
                logger.exception("notifier round failed unexpectedly", extra={"pod": self._pod_path})
                delay = self._backoff_seconds
            stop.wait(delay)


def _bearer(settings: settings_mod.LauncherSettings) -> dict[str, str]:
    if settings.auth_token_file is not None:
        token = settings.auth_token_file.read_text().strip()
    elif settings.token is not None:
        token = settings.token.get_secret_value()
    else:
        return {}
    return {"Authorization": f"Bearer {token}"} if token else {}


def run(settings: settings_mod.NotifierSettings, stop: threading.Event) -> int:
    """Run the sidecar until ``stop`` is set; returns the exit status (1 when it cannot run at all)."""
    credentials = apiserver.in_cluster(settings)
    if credentials is None:
        logger.error("no in-cluster credentials: KUBERNETES_SERVICE_HOST, the token or the CA is missing")
        return 1
    identity = pod_identity.discover(settings)
    if identity is None:
        logger.error("cannot tell which Pod this is: no POD_NAME/NAMESPACE, token claims, namespace file or hostname")
        return 1
    try:
        pods = apiserver.Client(credentials)
    except errors.ApiServerError:
        logger.exception("the in-cluster credentials are unusable")
        return 1
    base_url = settings.launcher_base_url.rstrip("/")
    logger.info(
        "notifier started",
        extra={"pod": f"{identity.namespace}/{identity.name}", "launcher": base_url, "poll_s": settings.poll_seconds},
    )
    with (
        pods,
        httpx.Client(
            base_url=base_url, timeout=settings.timeout_seconds, headers=_bearer(settings), trust_env=False
        ) as launcher,
    ):
        notifier = Notifier(
            pods,
            launcher,
            apiserver.pod_path(identity.namespace, identity.name),
            poll_seconds=settings.poll_seconds,
            backoff_seconds=settings.backoff_seconds,
        )
        notifier.run(stop)
    logger.info("notifier stopped")
    return 0


def _stopper(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    return handler


def main() -> int:
    """The sidecar process: settings from the environment, stop on SIGTERM or SIGINT."""
    try:
        settings = settings_mod.NotifierSettings()
    except pydantic.ValidationError as exc:
        log_output.configure("info")
        logger.error("invalid configuration", extra={"error": validation_paths.summary(exc)})
        return 2
    log_output.configure(settings.log_level)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, _stopper(stop))
    signal.signal(signal.SIGINT, _stopper(stop))
    return run(settings, stop)
