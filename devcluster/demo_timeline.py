"""The demo's GPU timeline: which GPU held which model, awake or asleep, over time.

``Sampler`` asks every Ready launcher of the release namespace for its
instances (``GET /v2/vllm/instances`` with the chart's launcher token) twice
a second, and reads from the launcher Pod which instance is bound (the
``dual`` label and ``instance-id`` annotation the controllers write): the
bound instance serves its requester, or is loading or waking for it; every
other instance of the launcher is asleep.  ``render`` turns the samples into a PNG with one row per
GPU (node/index): a solid bar while a model is bound to a requester there,
a faint hatched bar while a model sleeps there.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import pathlib
import shlex
import threading
import time

import httpx

import kube
from kube import resources

__all__ = ["Sample", "Sampler", "model_of", "render", "segments"]

_P = "dual-pods.llm-d.ai/"
_LAUNCHER_PORT = 8001


@dataclasses.dataclass(frozen=True)
class Sample:
    """One instance seen at one time."""

    t: float
    gpu: str
    """``node/index``"""
    model: str
    awake: bool
    """The launcher's bound instance (serving, or loading or waking for its requester)."""


def model_of(options: str) -> str:
    """The ``--model`` of vLLM-style options (the first bare word otherwise)."""
    words = shlex.split(options)
    for i, word in enumerate(words):
        if word == "--model" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--model="):
            return word.split("=", 1)[1]
    return next((w for w in words if not w.startswith("-")), "?")


class Sampler:
    """Samples the launchers' instances in a background thread."""

    def __init__(self, api: kube.Client, namespace: str, token_secret: str, *, interval_s: float = 0.5) -> None:
        self._api = api
        self._namespace = namespace
        self._token_secret = token_secret
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = time.monotonic()
        self.samples: list[Sample] = []
        self.marks: list[tuple[float, str]] = []
        self._gpu_index: dict[str, str] = {}

    def mark(self, label: str) -> None:
        """A phase of the story starts now (drawn as a vertical line)."""
        self.marks.append((time.monotonic() - self.t0, label))

    def _token(self) -> str | None:
        secret = self._api.get_or_none(resources.SECRETS, self._token_secret, self._namespace)
        return base64.b64decode(secret["data"]["token"]).decode() if secret else None

    def _gpu_names(self) -> dict[str, str]:
        gpu_map = self._api.get_or_none(resources.CONFIG_MAPS, "gpu-map", self._namespace) or {}
        names: dict[str, str] = {}
        for node, value in (gpu_map.get("data") or {}).items():
            for uuid, index in json.loads(value).items():
                names[uuid] = f"{node}/gpu{index}"
        return names

    def sample_once(self, http: httpx.Client) -> None:
        now = time.monotonic() - self.t0
        pods, _ = self._api.list_all(
            resources.PODS, self._namespace, label_selector="app.kubernetes.io/component=launcher"
        )
        for pod in pods:
            ip = (pod.get("status") or {}).get("podIP")
            if not ip or pod["metadata"].get("deletionTimestamp"):
                continue
            labels = pod["metadata"].get("labels") or {}
            notes = pod["metadata"].get("annotations") or {}
            # The bound instance serves (or is loading or waking for) a requester; the others sleep.
            awake_id = notes.get(_P + "instance-id") if labels.get(_P + "dual") else None
            try:
                response = http.get(f"http://{ip}:{_LAUNCHER_PORT}/v2/vllm/instances")
                response.raise_for_status()
            except httpx.HTTPError:
                continue
            for instance in response.json().get("instances", []):
                if instance.get("status") != "running":
                    continue
                for uuid in instance.get("gpu_uuids") or []:
                    gpu = self._gpu_index.get(uuid, uuid[:12])
                    model = model_of(str(instance.get("options", "")))
                    self.samples.append(Sample(now, gpu, model, instance["instance_id"] == awake_id))

    def _run(self) -> None:
        token = self._token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(headers=headers, timeout=3.0) as http:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError, kube.errors.KubeError):
                    self.sample_once(http)
                self._stop.wait(self._interval)

    def start(self) -> None:
        self._gpu_index = self._gpu_names()
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="demo-timeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def segments(samples: list[Sample], *, gap_s: float = 1.5) -> dict[str, list[tuple[float, float, str, bool]]]:
    """Per GPU, (start, end, model, awake) runs of consecutive samples (pure).

    A (gpu, model, awake) run ends when it is not seen for ``gap_s``.
    """
    runs: dict[tuple[str, str, bool], list[list[float]]] = {}
    for s in sorted(samples, key=lambda s: s.t):
        spans = runs.setdefault((s.gpu, s.model, s.awake), [])
        if spans and s.t - spans[-1][1] <= gap_s:
            spans[-1][1] = s.t
        else:
            spans.append([s.t, s.t])
    result: dict[str, list[tuple[float, float, str, bool]]] = {}
    for (gpu, model, awake), spans in runs.items():
        for start, end in spans:
            result.setdefault(gpu, []).append((start, max(end, start + 0.5), model, awake))
    for items in result.values():
        items.sort()
    return result


def render(sampler: Sampler, path: pathlib.Path, gpus: list[str], title: str) -> pathlib.Path:
    """Write the timeline PNG; return its path."""
    import matplotlib  # noqa: PLC0415 -- only the demo draws; importing it costs a second

    matplotlib.use("Agg")
    import matplotlib.patches as mpatches  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415

    runs = segments(sampler.samples)
    rows = sorted(set(gpus) | set(runs))
    models = sorted({m for items in runs.values() for _, _, m, _ in items})
    palette = plt.get_cmap("tab10")
    color = {m: palette(i % 10) for i, m in enumerate(models)}
    end = max([e for items in runs.values() for _, e, _, _ in items] + [t for t, _ in sampler.marks] + [1.0])
    fig, ax = plt.subplots(figsize=(12, 0.55 * len(rows) + 2.2))
    for y, gpu in enumerate(rows):
        asleep = [r for r in runs.get(gpu, []) if not r[3]]
        for start, stop, model, _ in asleep:
            ax.broken_barh([(start, stop - start)], (y - 0.38, 0.3), facecolors=color[model], alpha=0.35, hatch="//")
        for start, stop, model, awake in runs.get(gpu, []):
            if awake:
                ax.broken_barh([(start, stop - start)], (y - 0.05, 0.43), facecolors=color[model])
    for t, label in sampler.marks:
        ax.axvline(t, color="grey", linewidth=0.8, linestyle="--")
        ax.text(t + 0.3, len(rows) - 0.4, label, rotation=90, va="top", fontsize=8, color="dimgrey")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlim(0, end + 2)
    ax.set_xlabel("seconds since the models were created")
    ax.set_title(title)
    handles = [mpatches.Patch(color=color[m], label=f"{m}: bound") for m in models]
    handles += [mpatches.Patch(facecolor="lightgrey", hatch="//", label="asleep (faint, lower half)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
