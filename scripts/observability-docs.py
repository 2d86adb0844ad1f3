#!/usr/bin/env python3
"""Fill docs/observability.md from a capture of a dev cluster, and render the dashboard's panels.

Grafana is not available here, so the panels of charts/fma/dashboards/fma-overview.json are
drawn with matplotlib from the same metrics, scraped live from fma-controllers, fma-extender
and fma-webhook by tests/integration/test_kubectl_fma.py:

    FMA_OBSERVABILITY_CAPTURE=docs/observability .venv/bin/pytest tests/integration/test_kubectl_fma.py
    python scripts/observability-docs.py        # needs matplotlib (not a project dependency)

The script writes docs/observability/panels.json (every number drawn) and
docs/observability/dashboard.png, and copies each captured command output into the
Markdown between ``<!-- capture:NAME -->`` and ``<!-- /capture -->``.  A scrape is one
instant, so each panel shows the value a Grafana panel would show over the whole run
(quantiles over all observations since the process started), not a time series.
"""

from __future__ import annotations

import collections
import json
import math
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
CAPTURE = REPO / "docs" / "observability"
DOC = REPO / "docs" / "observability.md"
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Samples = list[tuple[str, dict[str, str], float]]


def parse(text: str) -> Samples:
    """The samples of a Prometheus text exposition."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if line.startswith("#") or match is None:
            continue
        labels = dict(_LABEL.findall(match.group(3) or ""))
        found.append((match.group(1), labels, float(match.group(4))))
    return found


def by(samples: Samples, name: str, label: str) -> dict[str, float]:
    """``sum by (label) (name)``."""
    sums: dict[str, float] = collections.defaultdict(float)
    for sample, labels, value in samples:
        if sample == name:
            sums[labels.get(label, "")] += value
    return dict(sorted(sums.items()))


def quantile(samples: Samples, name: str, q: float, label: str | None = None) -> dict[str, float]:
    """``histogram_quantile(q, sum by (le[, label]) (name_bucket))``, with Prometheus's linear interpolation."""
    buckets: dict[str, dict[float, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    for sample, labels, value in samples:
        if sample == name + "_bucket":
            buckets[labels.get(label, "") if label else "all"][float(labels["le"])] += value
    result = {}
    for key, counts in sorted(buckets.items()):
        bounds = sorted(counts)
        total = counts[math.inf]
        if total == 0:
            continue
        rank, lower, below = q * total, 0.0, 0.0
        for bound in bounds:
            if counts[bound] >= rank:
                if bound == math.inf:
                    result[key] = bounds[-2]
                else:
                    inside = counts[bound] - below
                    result[key] = lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
                break
            lower, below = bound, counts[bound]
    return result


def _read(name: str) -> Samples:
    return parse((CAPTURE / name).read_text())


def panels() -> dict[str, dict[str, object]]:
    """Every panel's numbers, from the captured scrapes."""
    known = _read("metrics-known-state.txt")
    controllers = _read("metrics-controllers.txt")
    webhook = _read("metrics-webhook.txt")
    extender = _read("metrics-extender.txt")
    return {
        "actuation": {
            "source": "fma-controllers, known-state run",
            "p50": quantile(known, "fma_actuation_seconds", 0.5, "path"),
            "p95": quantile(known, "fma_actuation_seconds", 0.95, "path"),
        },
        "share": {
            "source": "fma-controllers, known-state run",
            "count": by(known, "fma_actuation_seconds_count", "path"),
        },
        "requesters": {
            "source": "fma-controllers, known-state run",
            "value": by(known, "fma_requester_count", "isc_name"),
        },
        "bound_gpus": {
            "source": "fma-controllers, known-state run",
            "value": sum(by(known, "fma_duality", "UUID").values()),
        },
        "launcher_phases": {
            "source": "fma-controllers with the populator, metrics run",
            "value": by(controllers, "fma_launcher_pod_count", "phase"),
        },
        "queue_depth": {
            "source": "fma-controllers, known-state run",
            "value": by(known, "fma_dpc_innerqueue_depth", "node"),
        },
        "queue_times": {
            "source": "fma-controllers, known-state run",
            "wait_p95": quantile(known, "fma_dpc_innerqueue_queue_duration_seconds", 0.95),
            "work_p95": quantile(known, "fma_dpc_innerqueue_work_duration_seconds", 0.95),
        },
        "webhook": {
            "source": "fma-webhook, metrics run",
            "p50": quantile(webhook, "fma_webhook_request_duration_seconds", 0.5),
            "p95": quantile(webhook, "fma_webhook_request_duration_seconds", 0.95),
            "requests": by(webhook, "fma_webhook_requests_total", "outcome"),
        },
        "extender": {
            "source": "fma-extender, metrics run",
            "p50": quantile(extender, "fma_extender_request_duration_seconds", 0.5, "verb"),
            "p95": quantile(extender, "fma_extender_request_duration_seconds", 0.95, "verb"),
        },
        "controller_calls": {
            "source": "fma-controllers, known-state run",
            "p95": quantile(known, "fma_http_latency_seconds", 0.95, "purpose"),
        },
    }


def _bars(axis: object, values: dict[str, float], title: str, unit: str, source: str) -> None:
    names = list(values) or ["(none)"]
    heights = [values[n] for n in values] or [0.0]
    axis.barh(names, heights, color="#5794f2")  # type: ignore[attr-defined]
    for index, height in enumerate(heights):
        axis.text(height, index, f" {height:.3g}", va="center", fontsize=7)  # type: ignore[attr-defined]
    axis.set_title(f"{title}\n({source})", fontsize=8)  # type: ignore[attr-defined]
    axis.set_xlabel(unit, fontsize=7)  # type: ignore[attr-defined]
    axis.tick_params(labelsize=7)  # type: ignore[attr-defined]


def render(data: dict[str, dict[str, object]], target: pathlib.Path) -> None:
    import matplotlib  # noqa: PLC0415 - an optional tool of this script only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(5, 2, figsize=(11, 13), dpi=72)
    figure.suptitle("FMA overview - panels rendered with matplotlib from live scrapes (not Grafana)", fontsize=10)
    grid = axes.flatten()
    act = data["actuation"]
    paired = {f"{q} {path}": v for q in ("p50", "p95") for path, v in act[q].items()}  # type: ignore[attr-defined]
    _bars(grid[0], paired, "Actuation time by path (p50, p95)", "seconds", str(act["source"]))
    share = data["share"]["count"]
    grid[1].pie(
        list(share.values()),
        labels=[f"{k} ({int(v)})" for k, v in share.items()],
        autopct="%1.0f%%",
        textprops={"fontsize": 7},
    )  # type: ignore[attr-defined]
    grid[1].set_title(f"Hot / warm / cold share\n({data['share']['source']})", fontsize=8)
    _bars(
        grid[2],
        data["requesters"]["value"],
        "Requesters per InferenceServerConfig",
        "requesters",
        str(data["requesters"]["source"]),
    )  # type: ignore[arg-type]
    grid[3].axis("off")
    grid[3].text(0.5, 0.5, f"{data['bound_gpus']['value']:g}", ha="center", va="center", fontsize=40, color="#73bf69")
    grid[3].set_title(f"Bound GPUs\n({data['bound_gpus']['source']})", fontsize=8)
    _bars(
        grid[4],
        data["launcher_phases"]["value"],
        "Launcher phases",
        "launcher Pods",
        str(data["launcher_phases"]["source"]),
    )  # type: ignore[arg-type]
    _bars(
        grid[5], data["queue_depth"]["value"], "Work-queue depth by node", "items", str(data["queue_depth"]["source"])
    )  # type: ignore[arg-type]
    queue = data["queue_times"]
    _bars(
        grid[6],
        {"wait p95": queue["wait_p95"].get("all", 0.0), "work p95": queue["work_p95"].get("all", 0.0)},
        "Work-queue wait and work time (p95)",
        "seconds",
        str(queue["source"]),
    )  # type: ignore[attr-defined]
    hook = data["webhook"]
    _bars(
        grid[7],
        {"p50": hook["p50"].get("all", 0.0), "p95": hook["p95"].get("all", 0.0)},
        "Webhook latency (p50, p95)",
        "seconds",
        str(hook["source"]),
    )  # type: ignore[attr-defined]
    ext = data["extender"]
    _bars(
        grid[8],
        {f"{q} {verb}": v for q in ("p50", "p95") for verb, v in ext[q].items()},
        "Scheduler extender latency (p50, p95)",
        "seconds",
        str(ext["source"]),
    )  # type: ignore[attr-defined]
    _bars(
        grid[9],
        data["controller_calls"]["p95"],
        "Controller calls (p95) by purpose",
        "seconds",
        str(data["controller_calls"]["source"]),
    )  # type: ignore[arg-type]
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(target, dpi=72)


def fill(doc: str) -> str:
    """Copy each captured file into its ``<!-- capture:NAME -->`` block."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        text = (CAPTURE / name).read_text().rstrip("\n")
        return f"<!-- capture:{name} -->\n```\n{text}\n```\n<!-- /capture -->"

    return re.sub(r"<!-- capture:(\S+) -->.*?<!-- /capture -->", replace, doc, flags=re.DOTALL)


def main() -> int:
    data = panels()
    (CAPTURE / "panels.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    render(data, CAPTURE / "dashboard.png")
    size = (CAPTURE / "dashboard.png").stat().st_size
    DOC.write_text(fill(DOC.read_text()))
    print(f"panels.json, dashboard.png ({size} bytes) and {DOC.name} written")  # noqa: T201
    return 0 if size < 300_000 else 1


if __name__ == "__main__":
    sys.exit(main())
