"""Builds the FMA image and the launcher image as OCI archives, without a container engine.

This machine (and many CI machines) has no docker, podman or daemon and
reaches no image registry, but Debian's packages carry everything it takes
to build OCI images: ``mmdebstrap`` makes a minimal Debian root file system
from Debian's packages, and ``umoci`` writes OCI image layouts.  The images
built here follow the Containerfiles in ``images/`` (which stay the reference
for users with an engine):

* layer 1, the base: Debian ``bookworm`` (``essential`` variant: no apt, no
  compilers) plus ``python3`` (3.11, the version of the lock file), without
  documentation, manual pages or locales;
* layer 2, the application: a virtual environment at ``/opt/fma`` holding
  this project's wheel and exactly the runtime part of
  ``requirements/lock.txt`` (installed from wheels with pip run from its own
  wheel, so pip itself, its cache and the wheels stay outside the image),
  plus the non-root user 65532 the chart runs every Pod as;
* the launcher image adds layer 3: ``images/launcher/app/`` at ``/app``
  (upstream's controller runs ``python3 /app/launcher_pod_notifier.py``).

Outputs go to ``<cache>/images/<version>-<key>/`` (``$FMA_CACHE_DIR`` or
``~/.cache/fma``), where the key hashes every input (sources, lock file,
this builder, the Debian release and package list): a second build of the
same inputs only reads the recorded result.  The Debian base and the wheels
have their own caches, so changing a source file rebuilds only layer 2 and 3.

Usable as ``python -m devcluster.image_build`` (``make images`` runs it when
no container engine is installed).  Needs root (mmdebstrap's root mode,
chroot), ``mmdebstrap`` and ``umoci`` (``scripts/image-tools.sh`` installs
them).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Sequence

from devcluster import binaries

__all__ = [
    "DEBIAN_PACKAGES",
    "DEBIAN_SUITE",
    "IMAGE_GID",
    "IMAGE_UID",
    "BuildResult",
    "ImageBuildError",
    "ImageInfo",
    "build",
    "main",
]

logger = logging.getLogger(__name__)

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = ("python3",)
IMAGE_UID = 65532
IMAGE_GID = 65532
_VENV = "/opt/fma"
_STAGE = "/opt/fma-wheels"  # the wheels while they are installed (removed before the layer is taken)
_PATH = f"{_VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SOURCE_PACKAGES = ("crds", "kube", "certs", "webhook", "extender", "controllers", "launcher", "devcluster", "fmactl")
_SOURCE_SUFFIXES = (".py", ".yaml", ".json", ".typed")
_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Paths dpkg never unpacks into the base (documentation except the copyright files, manuals, locales).
_DPKG_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
# Left behind by the Debian tools in the base; not part of a running system.
_BASE_CLEANUP = ("var/cache/*", "var/lib/apt/lists/*", "var/log/*", "tmp/*")
_KEEP_BUILDS = 3  # builds of other source trees kept in the cache (each about 170 MB)
_EPOCH = 1700000000  # the modification time of every file in the layers we write (reproducible digests)


class ImageBuildError(Exception):
    """An image could not be built; the message says which step and why."""


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """One built image: its name, its OCI archive and the digest of its manifest."""

    name: str
    archive: pathlib.Path
    digest: str
    size_bytes: int

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "archive": str(self.archive), "digest": self.digest, "size_bytes": self.size_bytes}


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """Both images of one build; ``reused`` when they came from the cache."""

    directory: pathlib.Path
    fma: ImageInfo
    launcher: ImageInfo
    reused: bool
    seconds: float

    @property
    def images(self) -> tuple[ImageInfo, ImageInfo]:
        return (self.fma, self.launcher)


def _project_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (_ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    if match is None:
        raise ImageBuildError("pyproject.toml has no version line")
    return match.group(1)


def _snapshot() -> dict[str, bytes]:
    """Every file that goes into the project's wheel or the images, read once (relative path -> content).

    The build works from this snapshot, so the key and the images always describe the same sources even
    while the working tree is being edited.
    """
    files = [_ROOT / "pyproject.toml", _ROOT / "README.md", _ROOT / "requirements" / "lock.txt"]
    for package in _SOURCE_PACKAGES:
        files.extend(
            path
            for path in (_ROOT / package).rglob("*")
            if path.is_file() and path.suffix in _SOURCE_SUFFIXES and "__pycache__" not in path.parts
        )
    files.extend(path for path in (_ROOT / "images").rglob("*") if path.is_file() and "__pycache__" not in path.parts)
    return {str(path.relative_to(_ROOT)): path.read_bytes() for path in sorted(files)}


def _digest(items: Iterable[tuple[str, bytes]], *extra: str) -> str:
    sha = hashlib.sha256()
    for item in extra:
        sha.update(item.encode() + b"\0")
    for name, content in items:
        sha.update(name.encode() + b"\0" + content + b"\0")
    return sha.hexdigest()


def _write_snapshot(snapshot: dict[str, bytes], target: pathlib.Path) -> None:
    for name, content in snapshot.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _base_key() -> str:
    recipe = [DEBIAN_SUITE, DEBIAN_MIRROR, *DEBIAN_PACKAGES, *_DPKG_EXCLUDES, *_BASE_CLEANUP, str(IMAGE_UID)]
    return hashlib.sha256("\0".join(recipe).encode()).hexdigest()[:16]


def _run(argv: Sequence[str], step: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    logger.debug("running", extra={"argv": list(argv)})
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]  # kwargs are subprocess options
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{step}: {argv[0]!r} is not installed (scripts/image-tools.sh installs it)") from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout or "")[-3000:]
        raise ImageBuildError(f"{step} failed (exit {result.returncode}): {' '.join(argv[:3])} ...\n{tail}")
    return result  # type: ignore[no-any-return]  # the overload above is untyped


def _check_tools() -> None:
    missing = [tool for tool in ("mmdebstrap", "umoci", "chroot") if shutil.which(tool) is None]
    if missing:
        raise ImageBuildError(
            f"missing tools: {', '.join(missing)} (run scripts/image-tools.sh, or install them from Debian's packages)"
        )
    if os.geteuid() != 0:
        raise ImageBuildError("building images without an engine needs root (mmdebstrap's root mode and chroot)")


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = _EPOCH
    return info


def _base_tar(images_root: pathlib.Path) -> pathlib.Path:
    """The Debian base layer (an uncompressed tar), built once per recipe."""
    target = images_root / "base" / f"{DEBIAN_SUITE}-{_base_key()}.tar"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    cleanup = " ".join(f'"$1"/{pattern}' for pattern in _BASE_CLEANUP)
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=essential",
        "--format=tar",
        f"--include={','.join(DEBIAN_PACKAGES)}",
        *(f"--dpkgopt={option}" for option in _DPKG_EXCLUDES),
        # The non-root user every Pod of the chart runs as; no shell, a home that exists.
        "--customize-hook="
        f'echo "fma:x:{IMAGE_UID}:{IMAGE_GID}:fma:/home/fma:/usr/sbin/nologin" >> "$1/etc/passwd"'
        f' && echo "fma:x:{IMAGE_GID}:" >> "$1/etc/group"'
        f' && mkdir -p "$1/home/fma" && chown {IMAGE_UID}:{IMAGE_GID} "$1/home/fma"',
        f'--customize-hook=rm -rf {cleanup} && find "$1/root" -mindepth 1 -delete',
        DEBIAN_SUITE,
        str(partial),
        DEBIAN_MIRROR,
    ]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(_EPOCH)}
    _run(argv, "mmdebstrap (the Debian base)", env=env)
    partial.replace(target)
    return target


def _project_wheel(work: pathlib.Path, source: pathlib.Path) -> pathlib.Path:
    """This project's wheel, built from the snapshot of the sources."""
    out = work / "project-wheel"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--quiet", "-w", str(out), str(source)],
        "building the project's wheel",
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    wheels = list(out.glob("*.whl"))
    if len(wheels) != 1:
        raise ImageBuildError(f"building the project's wheel gave {len(wheels)} wheels, not one")
    return wheels[0]


def _wheels(images_root: pathlib.Path, source: pathlib.Path, project_wheel: pathlib.Path) -> pathlib.Path:
    """The locked runtime wheels (and pip's own wheel, used to install them), downloaded once per lock file."""
    lock = source / "requirements" / "lock.txt"
    key = _digest([("lock.txt", lock.read_bytes())], "cp311-manylinux-x86_64")[:16]
    target = images_root / "wheels" / key
    if not (target / ".complete").is_file():
        target.mkdir(parents=True, exist_ok=True)
        common = ["--only-binary=:all:", "--python-version=3.11", "--implementation=cp", "--no-cache-dir", "--quiet"]
        _run(
            [sys.executable, "-m", "pip", "download", *common, "-c", str(lock), "-d", str(target), str(project_wheel)],
            "downloading the locked wheels",
        )
        _run(
            [sys.executable, "-m", "pip", "download", *common, "--no-deps", "-d", str(target / "pip"), "pip"],
            "downloading pip's wheel",
        )
        (target / ".complete").write_text("")
    for stale in target.glob("fast_model_actuation-*.whl"):
        stale.unlink()  # the project's wheel is always the one just built
    return target


def _app_layer(
    work: pathlib.Path, source: pathlib.Path, base: pathlib.Path, wheels: pathlib.Path, project_wheel: pathlib.Path
) -> pathlib.Path:
    """Layer 2: the virtual environment at /opt/fma, installed inside the base by chroot."""
    root = work / "rootfs"
    root.mkdir()
    _run(["tar", "-x", "-f", str(base), "-C", str(root)], "unpacking the base")
    stage = root / _STAGE.lstrip("/")
    shutil.copytree(wheels, stage, ignore=shutil.ignore_patterns(".complete"))
    shutil.copy2(project_wheel, stage / project_wheel.name)
    shutil.copy2(source / "requirements" / "lock.txt", stage / "lock.txt")
    pip_wheels = sorted((stage / "pip").glob("pip-*.whl"))
    if not pip_wheels:
        raise ImageBuildError("pip's wheel is missing from the wheel cache")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/nonexistent",
        "PIP_CONFIG_FILE": "/dev/null",
        "LANG": "C.UTF-8",
    }
    _run(["chroot", str(root), "python3", "-m", "venv", "--without-pip", _VENV], "creating the venv", env=env)
    _run(
        [
            "chroot",
            str(root),
            f"{_VENV}/bin/python",
            f"{_STAGE}/pip/{pip_wheels[-1].name}/pip",
            "install",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            f"--find-links={_STAGE}",
            f"--constraint={_STAGE}/lock.txt",
            f"{_STAGE}/{project_wheel.name}",
        ],
        "installing the wheels",
        env=env,
    )
    shutil.rmtree(stage)
    layer = work / "app.tar"
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root / _VENV.lstrip("/"), arcname=_VENV.lstrip("/"), filter=_tar_filter)
    return layer


def _launcher_layer(work: pathlib.Path, snapshot_root: pathlib.Path) -> pathlib.Path:
    """Layer 3 of the launcher image: ``images/launcher/app/`` at ``/app``."""
    layer = work / "launcher-app.tar"
    source = snapshot_root / "images" / "launcher" / "app"

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if "__pycache__" in info.name:
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o755 if info.isdir() or info.name.endswith(".py") else 0o644
        return _tar_filter(info)

    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname="app", filter=owned_by_root)
    return layer


def _umoci(*args: str) -> str:
    return _run(["umoci", *args], f"umoci {args[0]}").stdout


def _configure(layout: pathlib.Path, tag: str, *, title: str, cmd: Sequence[str], workdir: str) -> None:
    argv = [
        "config",
        f"--image={layout}:{tag}",
        f"--config.user={IMAGE_UID}:{IMAGE_GID}",
        f"--config.workingdir={workdir}",
        "--clear=config.env",
        f"--config.env=PATH={_PATH}",
        "--config.env=PYTHONDONTWRITEBYTECODE=1",
        "--config.env=PYTHONUNBUFFERED=1",
        "--config.env=LANG=C.UTF-8",
        "--clear=config.cmd",
        *(f"--config.cmd={part}" for part in cmd),
        f"--config.label=org.opencontainers.image.title={title}",
        f"--config.label=org.opencontainers.image.version={_project_version()}",
        "--created=2023-11-14T22:13:20Z",
        "--no-history",
    ]
    _umoci(*argv)


def _export(layout: pathlib.Path, tag: str, name: str, archive: pathlib.Path) -> ImageInfo:
    """An OCI archive holding only ``tag`` of ``layout``, named ``name`` (containerd's import reads the name)."""
    single = archive.with_suffix(".layout")
    shutil.rmtree(single, ignore_errors=True)
    shutil.copytree(layout, single)
    for other in _umoci("ls", f"--layout={single}").split():
        if other != tag:
            _umoci("rm", f"--image={single}:{other}")
    _umoci("gc", f"--layout={single}")
    index_path = single / "index.json"
    index = json.loads(index_path.read_text())
    (manifest,) = index["manifests"]
    manifest["annotations"] = {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
    }
    index_path.write_text(json.dumps(index, separators=(",", ":")))
    partial = archive.with_suffix(".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(single.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(single)), recursive=False, filter=_tar_filter)
    partial.replace(archive)
    shutil.rmtree(single)
    return ImageInfo(name=name, archive=archive, digest=str(manifest["digest"]), size_bytes=archive.stat().st_size)


def _read_result(directory: pathlib.Path, seconds: float) -> BuildResult | None:
    record = directory / "images.json"
    if not record.is_file():
        return None
    data = json.loads(record.read_text())
    infos = [
        ImageInfo(
            name=item["name"],
            archive=pathlib.Path(item["archive"]),
            digest=item["digest"],
            size_bytes=item["size_bytes"],
        )
        for item in data["images"]
    ]
    if not all(info.archive.is_file() for info in infos):
        return None
    return BuildResult(directory=directory, fma=infos[0], launcher=infos[1], reused=True, seconds=seconds)


def _prune(images_root: pathlib.Path, keep: pathlib.Path, count: int = _KEEP_BUILDS) -> None:
    """Remove all but the newest ``count`` builds (``keep`` always stays); the base and wheels stay."""
    builds = sorted(
        (d for d in images_root.iterdir() if (d / "images.json").is_file() and d != keep),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    for old in builds[count - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def build(repo: str = "ghcr.io/llm-d/fma", tag: str | None = None, cache: pathlib.Path | None = None) -> BuildResult:
    """Build (or reuse) both images; see the module docstring for what goes in."""
    started = time.monotonic()
    version = _project_version()
    tag = tag or version
    images_root = (cache or binaries.cache_root()) / "images"
    snapshot = _snapshot()
    key = _digest(snapshot.items(), repo, tag, _base_key(), pathlib.Path(__file__).read_text())[:12]
    directory = images_root / f"{version}-{key}"
    reused = _read_result(directory, time.monotonic() - started)
    if reused is not None:
        return reused
    _check_tools()
    images_root.mkdir(parents=True, exist_ok=True)
    # One build at a time per cache (two test sessions may ask at once); the second then reuses the first's.
    with (images_root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        reused = _read_result(directory, time.monotonic() - started)
        if reused is not None:
            return reused
        return _build_locked(
            repo=repo,
            tag=tag,
            version=version,
            key=key,
            snapshot=snapshot,
            images_root=images_root,
            directory=directory,
            started=started,
        )


def _build_locked(
    *,
    repo: str,
    tag: str,
    version: str,
    key: str,
    snapshot: dict[str, bytes],
    images_root: pathlib.Path,
    directory: pathlib.Path,
    started: float,
) -> BuildResult:
    """The build itself, under the cache's lock."""
    directory.mkdir(parents=True, exist_ok=True)
    base = _base_tar(images_root)
    with tempfile.TemporaryDirectory(prefix="fma-images-", dir=images_root) as tmp:
        work = pathlib.Path(tmp)
        source = work / "source"
        _write_snapshot(snapshot, source)
        project_wheel = _project_wheel(work, source)
        wheels = _wheels(images_root, source, project_wheel)
        app = _app_layer(work, source, base, wheels, project_wheel)
        launcher_app = _launcher_layer(work, source)
        layout = work / "layout"
        _umoci("init", f"--layout={layout}")
        _umoci("new", f"--image={layout}:fma")
        _umoci("raw", "add-layer", "--no-history", f"--image={layout}:fma", str(base))
        _umoci("raw", "add-layer", "--no-history", f"--image={layout}:fma", str(app))
        _umoci("raw", "add-layer", "--no-history", f"--image={layout}:fma", "--tag=launcher", str(launcher_app))
        _configure(layout, "fma", title="fma", cmd=["fma-controllers", "--help"], workdir="/tmp")  # noqa: S108 - the image's own /tmp, as in images/fma/Containerfile
        _configure(layout, "launcher", title="fma-launcher", cmd=["fma-launcher"], workdir="/app")
        fma = _export(layout, "fma", f"{repo}:{tag}", directory / "fma.tar")
        launcher = _export(layout, "launcher", f"{repo}-launcher:{tag}", directory / "fma-launcher.tar")
    record = {"version": version, "key": key, "images": [fma.to_json(), launcher.to_json()]}
    (directory / "images.json").write_text(json.dumps(record, indent=2) + "\n")
    _prune(images_root, keep=directory)
    return BuildResult(
        directory=directory, fma=fma, launcher=launcher, reused=False, seconds=time.monotonic() - started
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.image_build", description="Build the FMA and launcher images as OCI archives."
    )
    parser.add_argument("--repo", default=os.environ.get("IMAGE_REPO", "ghcr.io/llm-d/fma"))
    parser.add_argument("--tag", default=os.environ.get("IMAGE_TAG") or None)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        result = build(args.repo, args.tag)
    except ImageBuildError as exc:
        sys.stderr.write(f"make images: {exc}\n")
        return 1
    if args.json:
        sys.stdout.write(
            json.dumps(
                {
                    "directory": str(result.directory),
                    "reused": result.reused,
                    "images": [i.to_json() for i in result.images],
                }
            )
            + "\n"
        )
        return 0
    how = "reused from the cache" if result.reused else "built"
    sys.stdout.write(f"==> images {how} in {result.seconds:.1f} s: {result.directory}\n")
    for image in result.images:
        sys.stdout.write(f"{image.name}  {image.digest}  {image.size_bytes / 1e6:.1f} MB  {image.archive}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
