"""Turning reports into text: JSON, YAML, and tables that fit 100 columns.

JSON and YAML are the pydantic models dumped as they are, so scripts see the
same fields the tables summarise.  Tables shrink their widest columns (with an
ellipsis) until each line fits ``width``, as kubectl's own printers would not
but an operator's terminal needs.

Pure; no I/O.
"""

from __future__ import annotations

import datetime
import json
import textwrap
from collections.abc import Sequence
from typing import Literal

import pydantic
import yaml

from fmactl import explanation, status_report

__all__ = ["WIDTH", "Format", "duration", "explain_text", "serialise", "status_text", "table"]

WIDTH = 100
"""The default line width of tables."""

Format = Literal["table", "json", "yaml"]

_GAP = "  "


def serialise(report: pydantic.BaseModel, fmt: Literal["json", "yaml"]) -> str:
    """The report as JSON (indented) or YAML, with timestamps in RFC 3339."""
    data = report.model_dump(mode="json")
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def duration(seconds: float | None) -> str:
    """``45s``, ``3m10s``, ``2h5m``, ``3d4h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60}s"
    if total < 86400:
        return f"{total // 3600}h{(total % 3600) // 60}m"
    return f"{total // 86400}d{(total % 86400) // 3600}h"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, width: int = WIDTH) -> list[str]:
    """Aligned columns; the widest columns are clipped until every line fits ``width``."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    floor = [max(3, min(len(h), 6)) for h in header]
    while sum(widths) + len(_GAP) * (len(widths) - 1) > width:
        candidates = [i for i, w in enumerate(widths) if w > floor[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    lines = []
    for row in [list(header), *[list(r) for r in rows]]:
        cells = [_clip(cell, widths[i]).ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append(_GAP.join(cells).rstrip())
    return lines


def _time(value: datetime.datetime | None) -> str:
    return value.astimezone(datetime.UTC).strftime("%H:%M:%S") if value else "-"


def status_text(report: status_report.StatusReport, *, width: int = WIDTH) -> str:
    """The ``status`` tables: GPUs per node, launchers, ISCs."""
    totals = report.actuations
    lines = [
        f"Namespace {report.namespace} at {report.taken_at.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S}Z; "
        f"actuations kept in Events: hot {totals.hot}, warm {totals.warm}, cold {totals.cold}",
        "",
    ]
    rows: list[list[str]] = []
    for node in report.nodes:
        for gpu in node.gpus:
            label = str(gpu.index) if gpu.index is not None else gpu.uuid
            holder = gpu.holder
            if holder is not None:
                ready = "Ready" if holder.ready else "NotReady"
                rows.append(
                    [
                        node.name,
                        label,
                        gpu.state,
                        holder.requester,
                        holder.provider or "-",
                        holder.isc or "-",
                        holder.path or "-",
                        ready,
                    ]
                )
            elif not gpu.sleepers:
                rows.append([node.name, label, gpu.state, "-", "-", "-", "-", "-"])
            for sleeper in gpu.sleepers:
                rows.append(
                    [
                        node.name,
                        label,
                        "asleep" if holder is not None else gpu.state,
                        "-",
                        sleeper.provider,
                        sleeper.isc or "-",
                        "-",
                        "slept " + duration(sleeper.asleep_seconds),
                    ]
                )
    lines += table(["NODE", "GPU", "STATE", "REQUESTER", "PROVIDER", "ISC", "PATH", "SINCE"], rows, width=width)
    launcher_rows = [
        [
            node.name,
            item.name,
            item.launcher_config,
            item.bound_to or "-",
            str(item.instances),
            str(item.asleep),
            str(item.stopped),
            ("stuck" if item.stuck else ("Ready" if item.ready else "NotReady")),
        ]
        for node in report.nodes
        for item in node.launchers
    ]
    lines.append("")
    if launcher_rows:
        lines += table(
            ["NODE", "LAUNCHER", "LC", "BOUND TO", "INST", "ASLEEP", "STOPPED", "STATE"], launcher_rows, width=width
        )
    else:
        lines.append("No launchers.")
    isc_rows = [
        [
            isc.name + ("" if isc.exists else " (missing)"),
            isc.model or "-",
            str(isc.ready),
            str(isc.pending),
            str(isc.paths.hot),
            str(isc.paths.warm),
            str(isc.paths.cold),
        ]
        for isc in report.iscs
    ]
    lines.append("")
    if isc_rows:
        lines += table(["ISC", "MODEL", "READY", "PENDING", "HOT", "WARM", "COLD"], isc_rows, width=width)
    else:
        lines.append("No InferenceServerConfigs.")
    return "\n".join(lines) + "\n"


def _wrapped(prefix: str, text: str, width: int) -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=prefix,
        subsequent_indent=" " * len(prefix),
        break_long_words=True,
        break_on_hyphens=False,
    ) or [prefix.rstrip()]


def explain_text(report: explanation.Explanation, *, width: int = WIDTH) -> str:
    """The ``explain`` story as numbered stages, the state, the reasons and the Events."""
    what = f'ISC "{report.isc}"' + (f" (model {report.model})" if report.model else "") if report.isc else "direct"
    lines = _wrapped("", f"Pod {report.pod} in namespace {report.namespace}: {report.mode} mode, {what}", width)
    lines.append("")
    for number, stage in enumerate(report.stages, start=1):
        prefix = f"{number}. {stage.stage:<16} {stage.state:<8} {_time(stage.at):>8}  "
        lines += _wrapped(prefix, stage.summary, width)
    if report.waiting_for or report.reasons:
        lines.append("")
    if report.waiting_for:
        lines += _wrapped("Waiting for: ", report.waiting_for, width)
    if report.reasons:
        lines.append("Why:")
        for reason in report.reasons:
            lines += _wrapped("  - ", reason, width)
    if report.events:
        lines.append("")
        lines.append("Events:")
        for event in report.events:
            count = f" (x{event.count})" if event.count > 1 else ""
            lines += _wrapped(f"  {_time(event.at)}  {event.type:<7}  {event.reason}{count}: ", event.message, width)
    return "\n".join(lines) + "\n"
