"""Builds the control-plane binaries the development cluster runs.

Nothing can be downloaded from release sites here, so every binary is built
from its Go module through the Go module proxy:

* kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from
  ``k8s.io/kubernetes``.  That module replaces its ``k8s.io/*`` staging
  modules with ``./staging/...`` paths, which do not exist in the module
  zip, so a throwaway wrapper module requires ``k8s.io/kubernetes`` and
  replaces each of those modules with its published ``v0.X.Y`` release.  The
  list of replaced modules is read from the published ``go.mod``, never
  hard-coded.
* etcd from ``go.etcd.io/etcd/server/v3`` (its ``etcdmain`` package) the same
  way: its ``go.mod`` replaces sibling modules with ``../...`` paths.
* helm with ``go install helm.sh/helm/v3/cmd/helm@VERSION``.

Outputs go into a cache outside the repository keyed by version
(``$FMA_CACHE_DIR`` or ``~/.cache/fma``); a binary that is already there is
not rebuilt.  The Go module and build caches make a rebuild on the same
machine cheap too.

This module is usable as ``python -m devcluster.binaries`` (``fma-dev build``
calls the same functions); ``--build-fma-scheduler PATH`` builds only FMA's
kube-scheduler (images/fma-scheduler/Containerfile's build stage).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

__all__ = [
    "ETCD_VERSION",
    "FMA_SCHEDULER_COMMAND",
    "HELM_VERSION",
    "KUBERNETES_VERSION",
    "PLUGIN_SOURCES",
    "Binaries",
    "BuildError",
    "build_fma_scheduler",
    "cache_root",
    "ensure_all",
    "ensure_fma_scheduler",
    "link_fma_scheduler",
    "locate",
    "locate_fma_scheduler",
    "parse_staging_replaces",
    "plugin_source_hash",
]

logger = logging.getLogger(__name__)

KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.19.5"

_KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


class BuildError(Exception):
    """A binary could not be built; the message says what is missing and how to get it."""


@dataclasses.dataclass(frozen=True)
class Binaries:
    """Paths of every binary the development cluster needs."""

    kube_apiserver: pathlib.Path
    kube_controller_manager: pathlib.Path
    kube_scheduler: pathlib.Path
    kubectl: pathlib.Path
    etcd: pathlib.Path
    helm: pathlib.Path

    def missing(self) -> list[pathlib.Path]:
        """Return the paths that do not exist yet."""
        return [p for p in dataclasses.astuple(self) if not pathlib.Path(p).is_file()]


def cache_root() -> pathlib.Path:
    """Return the cache directory: ``$FMA_CACHE_DIR`` or ``~/.cache/fma``."""
    configured = os.environ.get("FMA_CACHE_DIR")
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path.home() / ".cache" / "fma"


def locate(root: pathlib.Path | None = None) -> Binaries:
    """Return where the pinned binaries live (pure; they may not exist yet)."""
    base = root if root is not None else cache_root()
    kube = base / "k8s" / KUBERNETES_VERSION
    return Binaries(
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kube_scheduler=kube / "kube-scheduler",
        kubectl=kube / "kubectl",
        etcd=base / "etcd" / ETCD_VERSION / "etcd",
        helm=base / "helm" / HELM_VERSION / "helm",
    )


_REPLACE_LINE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\.\.?/\S+)\s*$")


def parse_staging_replaces(go_mod: str) -> list[str]:
    """Return the required modules that a ``go.mod`` replaces with local directories.

    Pure.  Handles single-line ``replace a => ./x`` and ``replace ( ... )``
    blocks; replaces that point at another module version are ignored.
    """
    modules: list[str] = []
    in_block = False
    for raw in go_mod.splitlines():
        line = raw.split("//", 1)[0].rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("replace") and stripped.endswith("("):
            in_block = True
            continue
        if in_block and stripped == ")":
            in_block = False
            continue
        if in_block or stripped.startswith("replace "):
            match = _REPLACE_LINE.match(stripped)
            if match:
                modules.append(match.group(1))
    required = _required_modules(go_mod)
    return sorted({m for m in modules if m in required})


_REQUIRE_LINE = re.compile(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s+//.*)?$")


def _required_modules(go_mod: str) -> set[str]:
    """Return every module a ``go.mod`` requires (pure).

    Replaces of modules that are not required (upstream etcd replaces
    ``go.etcd.io/etcd`` with ``./FORBIDDEN_DEPENDENCY`` as a guard) are not
    ones the build needs.
    """
    required: set[str] = set()
    in_block = False
    for raw in go_mod.splitlines():
        stripped = raw.split("//", 1)[0].strip()
        if stripped.startswith("require") and stripped.endswith("("):
            in_block = True
            continue
        if in_block and stripped == ")":
            in_block = False
            continue
        if in_block or stripped.startswith("require "):
            match = _REQUIRE_LINE.match(stripped)
            if match:
                required.add(match.group(1))
    return required


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "the Go toolchain ('go') is not on PATH; install Go >= 1.25 "
            "(Debian: apt-get install golang, or https://go.dev/doc/install) and retry"
        )
    return go


def _run(args: list[str], cwd: pathlib.Path, env: dict[str, str] | None = None) -> str:
    logger.info("running", extra={"cmd": " ".join(args), "cwd": str(cwd)})
    proc = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise BuildError(f"command {' '.join(args)!r} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def _download_go_mod(module: str, version: str, workdir: pathlib.Path) -> str:
    out = _run([_go(), "mod", "download", "-json", f"{module}@{version}"], cwd=workdir)
    info = json.loads(out)
    if "Error" in info:
        raise BuildError(f"cannot download {module}@{version}: {info['Error']}")
    return pathlib.Path(info["GoMod"]).read_text()


def _staging_version(kube_version: str) -> str:
    match = re.fullmatch(r"v1\.(\d+)\.(\d+)", kube_version)
    if match is None:
        raise BuildError(f"unsupported Kubernetes version {kube_version!r}; expected v1.X.Y")
    return f"v0.{match.group(1)}.{match.group(2)}"


def _progress(message: str) -> None:
    print(f"[fma-build] {message}", file=sys.stderr, flush=True)


def _wrapper_module(workdir: pathlib.Path, name: str, require: tuple[str, str], replaces: dict[str, str]) -> None:
    (workdir / "go.mod").write_text(f"module {name}\n\ngo 1.25\n")
    _run([_go(), "mod", "edit", f"-require={require[0]}@{require[1]}"], cwd=workdir)
    for module, version in replaces.items():
        _run([_go(), "mod", "edit", f"-replace={module}={module}@{version}"], cwd=workdir)


def _kubernetes_module(work: pathlib.Path, name: str, version: str, sources: dict[str, bytes]) -> None:
    """Lay out in ``work`` a wrapper module ``name`` requiring k8s.io/kubernetes ``version`` with its staging
    modules pinned to their published releases and ``sources`` (file name -> content) as its main package."""
    staging = _staging_version(version)
    (work / "go.mod").write_text(f"module {name}\n\ngo 1.25\n")
    _progress(f"reading the published go.mod of k8s.io/kubernetes@{version}")
    modules = parse_staging_replaces(_download_go_mod("k8s.io/kubernetes", version, work))
    if not modules:
        raise BuildError(f"k8s.io/kubernetes@{version} go.mod lists no staging replaces; cannot build")
    _wrapper_module(work, name, ("k8s.io/kubernetes", version), {m: staging for m in modules})
    for file_name, content in sources.items():
        (work / file_name).write_bytes(content)
    _progress(f"resolving modules ({len(modules)} staging modules pinned to {staging})")
    _run([_go(), "mod", "tidy", "-e"], cwd=work, env={"GOFLAGS": "-mod=mod"})


def _kube_ldflags(version: str) -> str:
    """The version stamps of every Kubernetes binary we build (what ``kube-apiserver --version`` reports)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return " ".join(
        f"-X {pkg}.{key}={value}"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in (
            ("gitVersion", version),
            ("gitMajor", "1"),
            ("gitMinor", version.split(".")[1]),
            ("gitTreeState", "clean"),
            ("gitCommit", "0000000000000000000000000000000000000000"),
            ("buildDate", now),
        )
    )


def build_kubernetes(out_dir: pathlib.Path, version: str = KUBERNETES_VERSION) -> None:
    """Build the control-plane binaries and kubectl of ``version`` into ``out_dir`` (missing ones only)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fma-k8s-build-") as tmp:
        work = pathlib.Path(tmp)
        tools = (
            "//go:build tools\n\npackage tools\n\nimport (\n"
            + "".join(f'\t_ "k8s.io/kubernetes/cmd/{c}"\n' for c in _KUBE_COMMANDS)
            + ")\n"
        )
        _kubernetes_module(work, "fma.local/k8sbuild", version, {"tools.go": tools.encode()})
        ldflags = _kube_ldflags(version)
        out_dir.mkdir(parents=True, exist_ok=True)
        for command in _KUBE_COMMANDS:
            if (out_dir / command).is_file():
                continue
            _progress(f"building {command} {version} (a cold build takes many minutes on 2 cores)")
            partial = out_dir / f".{command}.partial"
            _run(
                [
                    _go(),
                    "build",
                    "-trimpath",
                    "-ldflags",
                    f"-s -w {ldflags}",
                    "-o",
                    str(partial),
                    f"k8s.io/kubernetes/cmd/{command}",
                ],
                cwd=work,
                env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
            )
            partial.replace(out_dir / command)
    _progress(f"kubernetes binaries ready in {out_dir} after {time.monotonic() - started:.0f}s")


def build_etcd(out_path: pathlib.Path, version: str = ETCD_VERSION) -> None:
    """Build etcd ``version`` from ``go.etcd.io/etcd/server/v3`` into ``out_path``."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fma-etcd-build-") as tmp:
        work = pathlib.Path(tmp)
        (work / "go.mod").write_text("module fma.local/etcdbuild\n\ngo 1.25\n")
        _progress(f"reading the published go.mod of go.etcd.io/etcd/server/v3@{version}")
        modules = parse_staging_replaces(_download_go_mod("go.etcd.io/etcd/server/v3", version, work))
        _wrapper_module(
            work, "fma.local/etcdbuild", ("go.etcd.io/etcd/server/v3", version), {m: version for m in modules}
        )
        (work / "main.go").write_text(
            'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
            "func main() { etcdmain.Main(os.Args) }\n"
        )
        _run([_go(), "mod", "tidy", "-e"], cwd=work, env={"GOFLAGS": "-mod=mod"})
        out_path.parent.mkdir(parents=True, exist_ok=True)
        partial = out_path.parent / ".etcd.partial"
        _progress(f"building etcd {version}")
        _run(
            [_go(), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "."],
            cwd=work,
            env={"CGO_ENABLED": "0"},
        )
        partial.replace(out_path)
    _progress(f"etcd ready in {out_path} after {time.monotonic() - started:.0f}s")


def build_helm(out_path: pathlib.Path, version: str = HELM_VERSION) -> None:
    """``go install`` helm ``version`` and move it to ``out_path``."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fma-helm-build-") as tmp:
        gobin = pathlib.Path(tmp)
        _progress(f"building helm {version}")
        _run(
            [
                _go(),
                "install",
                "-trimpath",
                "-ldflags",
                f"-s -w -X helm.sh/helm/v3/internal/version.version={version}",
                f"helm.sh/helm/v3/cmd/helm@{version}",
            ],
            cwd=gobin,
            env={"CGO_ENABLED": "0", "GOBIN": str(gobin)},
        )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(gobin / "helm"), str(out_path))
    _progress(f"helm ready in {out_path} after {time.monotonic() - started:.0f}s")


PLUGIN_SOURCES = pathlib.Path(__file__).resolve().parents[1] / "extender" / "scheduler_plugin"
"""The Go sources of FMA's kube-scheduler build (the stock scheduler plus the NominatedNode PreFilter plugin
and the PacedBinder bind plugin)."""


def plugin_source_hash(sources: pathlib.Path = PLUGIN_SOURCES) -> str:
    """The first 12 hex digits of a SHA-256 over the plugin's ``*.go`` files (names and contents)."""
    digest = hashlib.sha256()
    files = sorted(sources.glob("*.go"))
    if not files:
        raise BuildError(f"no Go sources in {str(sources)!r}")
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


FMA_SCHEDULER_COMMAND = "fma-kube-scheduler"
"""The stable name of FMA's kube-scheduler build: the chart's ``scheduler.plugin.command``, the binary's path in
images/fma-scheduler, and a symlink beside the cached builds (the directory simnode puts on its Pods' PATH)."""


def locate_fma_scheduler(root: pathlib.Path | None = None, version: str = KUBERNETES_VERSION) -> pathlib.Path:
    """Where FMA's kube-scheduler for the current plugin sources lives (it may not exist yet)."""
    base = root if root is not None else cache_root()
    return base / "k8s" / version / f"fma-kube-scheduler-{plugin_source_hash()}"


def build_fma_scheduler(out_path: pathlib.Path, version: str = KUBERNETES_VERSION, *, test: bool = False) -> None:
    """Build kube-scheduler ``version`` with FMA's plugins (NominatedNode, PacedBinder) into ``out_path``.

    ``test`` runs the plugin's Go tests in the same module first.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fma-scheduler-build-") as tmp:
        work = pathlib.Path(tmp)
        _progress(f"preparing FMA's kube-scheduler {version} from {PLUGIN_SOURCES}")
        plugin = {path.name: path.read_bytes() for path in sorted(PLUGIN_SOURCES.glob("*.go"))}
        _kubernetes_module(work, "fma.local/fmascheduler", version, plugin)
        env = {"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
        if test:
            _progress("running the plugin's Go tests")
            _run([_go(), "test", "-count=1", "."], cwd=work, env=env)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        partial = out_path.parent / f".{out_path.name}.partial"
        _progress("building FMA's kube-scheduler (warm Go build cache: minutes)")
        _run(
            [_go(), "build", "-trimpath", "-ldflags", f"-s -w {_kube_ldflags(version)}", "-o", str(partial), "."],
            cwd=work,
            env=env,
        )
        partial.replace(out_path)
    _progress(f"FMA kube-scheduler ready in {out_path} after {time.monotonic() - started:.0f}s")


def ensure_fma_scheduler(root: pathlib.Path | None = None, *, test: bool = False) -> pathlib.Path:
    """Build FMA's kube-scheduler for the current plugin sources unless cached; return its path.  Idempotent.

    ``test`` runs the plugin's Go tests before a build (not when the binary is cached).  The symlink
    ``FMA_SCHEDULER_COMMAND`` beside it is pointed at it (only once it is built), so a Pod on simnode whose
    command is ``fma-kube-scheduler``, as in the chart with ``placementNominate: plugin``, runs this build."""
    path = locate_fma_scheduler(root)
    if not path.is_file():
        build_fma_scheduler(path, test=test)
    link_fma_scheduler(path)
    return path


def link_fma_scheduler(build: pathlib.Path) -> pathlib.Path:
    """Point the symlink ``FMA_SCHEDULER_COMMAND`` in ``build``'s directory at ``build`` (relative, replaced
    atomically; left alone when it already points there); return the link's path."""
    link = build.parent / FMA_SCHEDULER_COMMAND
    if link.is_symlink() and os.readlink(link) == build.name:
        return link
    partial = build.parent / f".{FMA_SCHEDULER_COMMAND}.{os.getpid()}.link"
    partial.unlink(missing_ok=True)
    partial.symlink_to(build.name)
    partial.replace(link)
    return link


def ensure_all(root: pathlib.Path | None = None) -> Binaries:
    """Build every missing binary; return their paths.  Idempotent."""
    binaries = locate(root)
    if not binaries.missing():
        return binaries
    if not binaries.etcd.is_file():
        build_etcd(binaries.etcd)
    if not binaries.helm.is_file():
        build_helm(binaries.helm)
    kube = (binaries.kube_apiserver, binaries.kube_controller_manager, binaries.kube_scheduler, binaries.kubectl)
    if not all(p.is_file() for p in kube):
        build_kubernetes(binaries.kube_apiserver.parent)
    return binaries


def main(argv: list[str] | None = None) -> int:
    """Entry point: build what is missing and print where it is.

    ``--build-fma-scheduler PATH`` builds only FMA's kube-scheduler (its Go tests first) into ``PATH``, with
    the module layout, flags and Kubernetes version of the dev cluster's build (images/fma-scheduler uses it).
    """
    parser = argparse.ArgumentParser(prog="python -m devcluster.binaries", description=main.__doc__)
    parser.add_argument(
        "--build-fma-scheduler",
        metavar="PATH",
        type=pathlib.Path,
        help=f"build only FMA's kube-scheduler {KUBERNETES_VERSION} (NominatedNode and PacedBinder plugins) into PATH",
    )
    args = parser.parse_args(argv)
    try:
        if args.build_fma_scheduler is not None:
            build_fma_scheduler(args.build_fma_scheduler.resolve(), test=True)
            print(args.build_fma_scheduler)
            return 0
        binaries = ensure_all()
        # The cluster tests of the NominatedNode plugin run this scheduler: build it (with its Go tests) here,
        # once per plugin source hash, rather than inside a test's time limit.
        fma_scheduler = ensure_fma_scheduler(test=True)
    except BuildError as exc:
        print(f"fma-build: {exc}", file=sys.stderr)
        return 1
    for path in dataclasses.astuple(binaries):
        print(path)
    print(fma_scheduler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
