"""The ``kubectl-fma`` command line: ``status`` and ``explain``, with kubectl's connection flags.

kubectl runs a plugin named ``kubectl-fma`` found on ``PATH`` with the rest of
the command line, so this module resolves ``--kubeconfig``, ``--context`` and
``-n`` the way kubectl does (``$KUBECONFIG``, then ``~/.kube/config``; the
context's namespace, then ``default``), reads one snapshot, builds the report
with a pure builder and prints it.  Every operator-facing failure is an
``fmactl.errors.FmactlError``: printed as ``error: ...`` on stderr with exit
status 1.  Usage errors exit 2 (argparse).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import yaml

from crds import names
from fmactl import errors, explanation, rendering, snapshot, status_report
from kube import client as kube_client

__all__ = ["default_namespace", "main", "parser"]


def default_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig context in use (kubectl's rule), else ``default``."""
    path = kubeconfig or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or "~/.kube/config"
    try:
        document = yaml.safe_load(pathlib.Path(path).expanduser().read_text())
    except (OSError, yaml.YAMLError):
        return "default"
    if not isinstance(document, dict):
        return "default"
    wanted = context or document.get("current-context")
    for entry in document.get("contexts") or []:
        if isinstance(entry, dict) and entry.get("name") == wanted:
            inner = entry.get("context") or {}
            return str(inner.get("namespace") or "default") if isinstance(inner, dict) else "default"
    return "default"


def _common(defaults: bool) -> argparse.ArgumentParser:
    """Connection and output flags, accepted before or after the subcommand.

    The subcommands' copies default to ``SUPPRESS`` so that a flag given before
    the subcommand is not overwritten by the subcommand's default.
    """
    common = argparse.ArgumentParser(add_help=False)
    none = None if defaults else argparse.SUPPRESS
    common.add_argument(
        "--kubeconfig", default=none, help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    common.add_argument("--context", default=none, help="the kubeconfig context to use")
    common.add_argument("-n", "--namespace", default=none, help="the FMA namespace (default: the context's)")
    common.add_argument(
        "-o",
        "--output",
        choices=("table", "json", "yaml"),
        default="table" if defaults else argparse.SUPPRESS,
        help="output format (default: table)",
    )
    common.add_argument(
        "--gpu-map-namespace", default=none, help="where the gpu-map ConfigMap lives (default: the namespace)"
    )
    return common


def parser() -> argparse.ArgumentParser:
    """The argument parser (``kubectl fma --help``)."""
    main_parser = argparse.ArgumentParser(
        prog="kubectl fma",
        description="See what fast model actuation (FMA) does: GPUs, sleepers, launchers and one requester's story.",
        parents=[_common(defaults=True)],
    )
    sub = main_parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser(
        "status", parents=[_common(defaults=False)], help="GPUs per node, launchers and requesters per ISC"
    )
    status.add_argument("--node", help="show only this node")
    status.add_argument("-w", "--watch", action="store_true", help="print again whenever the status changes")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between reads with --watch (default 2)")
    explain = sub.add_parser(
        "explain", parents=[_common(defaults=False)], help="one requester's story, and why it is not Ready"
    )
    explain.add_argument("pod", metavar="POD", help="the requester Pod's name")
    explain.add_argument(
        "--fma-scheduler",
        default=names.SCHEDULER_NAME_DEFAULT,
        help=f"the FMA scheduler's name, for sleeper-aware placement (default {names.SCHEDULER_NAME_DEFAULT})",
    )
    return main_parser


def _render_status(report: status_report.StatusReport, fmt: str) -> str:
    if fmt == "table":
        return rendering.status_text(report)
    return rendering.serialise(report, "json" if fmt == "json" else "yaml")


def _fingerprint(report: status_report.StatusReport) -> str:
    """The report without what changes by itself (the time, sleep ages), for ``--watch``."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("taken_at", "asleep_seconds")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(report.model_dump(mode="json")), sort_keys=True)


def _status(
    api: kube_client.Client, args: argparse.Namespace, namespace: str, out: TextIO, sleep: Callable[[float], None]
) -> None:
    last = None
    while True:
        snap = snapshot.read(api, namespace, gpu_map_namespace=args.gpu_map_namespace)
        report = status_report.build(snap, node=args.node)
        fingerprint = _fingerprint(report)
        if fingerprint != last:
            if last is not None and args.output == "table":
                out.write("\n")
            text = _render_status(report, args.output)
            if args.watch and args.output == "json":
                text = json.dumps(report.model_dump(mode="json")) + "\n"
            elif args.watch and args.output == "yaml":
                text = "---\n" + text
            out.write(text)
            out.flush()
            last = fingerprint
        if not args.watch:
            return
        sleep(args.interval)


def _explain(api: kube_client.Client, args: argparse.Namespace, namespace: str, out: TextIO) -> None:
    snap = snapshot.read(api, namespace, gpu_map_namespace=args.gpu_map_namespace)
    pod = snapshot.find_pod(snap, args.pod)
    report = explanation.build(snap, pod, fma_scheduler=args.fma_scheduler)
    if args.output == "table":
        out.write(rendering.explain_text(report))
    else:
        out.write(rendering.serialise(report, "json" if args.output == "json" else "yaml"))


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run ``kubectl fma``; returns the exit status."""
    stdout = out or sys.stdout
    stderr = err or sys.stderr
    args = parser().parse_args(argv)
    if args.command == "status" and args.interval <= 0:
        stderr.write(f"error: --interval must be positive, got {args.interval!r}\n")
        return 2
    try:
        api = snapshot.connect(args.kubeconfig, args.context)
        namespace = args.namespace or default_namespace(args.kubeconfig, args.context)
        try:
            if args.command == "status":
                _status(api, args, namespace, stdout, sleep)
            else:
                _explain(api, args, namespace, stdout)
        finally:
            api.close()
    except errors.FmactlError as exc:
        stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    return 0
