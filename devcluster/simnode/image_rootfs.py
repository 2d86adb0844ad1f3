"""Image mode: a container runs inside its image's root file system instead of on the host.

simnode normally runs a container's command with the host's Python (images
ignored: the fast path).  With ``--image-archives DIR`` it also knows the OCI
archives under DIR (``make images`` writes them): a container whose image is
one of them runs from that image.  ``Store`` owns the archives:

* ``lookup`` maps an image reference to an archive by the name recorded in
  the archive's ``index.json`` (``io.containerd.image.name``, as containerd's
  import reads it);
* ``prepare`` unpacks an image once per manifest digest with ``umoci unpack``
  (its root file system, plus the image config: environment, working
  directory, user, entrypoint and cmd), shared read-only by every container
  of that image.

``Root`` is what a container process needs from it; ``container_process``
turns it into an overlay (the image below, a per-container writable layer
above) in the container's own mount namespace, binds the Pod's volumes at
their paths inside, and enters it with ``chroot`` as the container's user
(``enter_code``).

The user is Kubernetes': the ``securityContext`` of the container, else of
the Pod (``runAsUser``, ``runAsGroup``), over the image's ``User``; without
``runAsGroup`` a ``runAsUser`` found in the image's ``/etc/passwd`` gets that
entry's group, else group 0 (containerd's rule).  The Pod's
``supplementalGroups`` and ``fsGroup`` become the process's supplementary
groups (volume ownership is not changed).  ``runAsNonRoot`` is checked as the
kubelet does: a container that would run as root, or whose image names a
user that is not numeric, does not start (``CreateContainerConfigError``).
A container's ``readOnlyRootFilesystem`` makes the image's root read-only
(its volumes stay writable).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from devcluster.simnode import environment, errors, pod

__all__ = [
    "ImageConfig",
    "Root",
    "Store",
    "UnpackError",
    "container_argv",
    "container_root",
    "enter_code",
    "merged_env",
    "run_as",
]

_CONTAINERD_NAME = "io.containerd.image.name"


class UnpackError(Exception):
    """An archive could not be read or unpacked; the message names it."""


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """What the image says about running it (from the OCI runtime config umoci writes)."""

    args: tuple[str, ...]
    """The image's entrypoint followed by its cmd."""
    entrypoint_length: int
    env: tuple[tuple[str, str], ...]
    cwd: str
    uid: int
    gid: int
    user: str = ""
    """The image's ``User`` as written (``65532:65532``, ``fma``; empty: root)."""


@dataclasses.dataclass(frozen=True)
class Root:
    """An unpacked image a container runs in, and where its writable layer goes."""

    rootfs: pathlib.Path
    scratch: pathlib.Path
    """Per-container directory: the overlay's upper and work directories and its mount point."""
    uid: int
    gid: int
    workdir: str
    groups: tuple[int, ...] = ()
    """Supplementary groups (the Pod's ``supplementalGroups`` and ``fsGroup``)."""
    read_only: bool = False
    """``readOnlyRootFilesystem``: the image's root is read-only (volumes keep their own mode)."""


@dataclasses.dataclass(frozen=True)
class _Archive:
    path: pathlib.Path
    digest: str


def _index_of(path: pathlib.Path) -> dict[str, Any] | None:
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("index.json")
            if member is None:
                return None
            result: dict[str, Any] = json.load(member)
            return result
    except (tarfile.TarError, KeyError, OSError, json.JSONDecodeError):
        return None


class Store:
    """The OCI archives simnode may run containers from, unpacked on first use (thread-safe)."""

    def __init__(self, archives: pathlib.Path, unpack_dir: pathlib.Path) -> None:
        self._archives_dir = archives
        self._unpack_dir = unpack_dir
        self._lock = threading.Lock()
        self._names: dict[str, _Archive] | None = None
        self._unpacked: dict[str, tuple[pathlib.Path, ImageConfig]] = {}

    def _scan(self) -> dict[str, _Archive]:
        """The archives found now, added to those found before (a newer archive of a name wins).

        Each archive is kept under the unpack directory (a hard link, else a copy), so that an image stays
        usable when its build is pruned from the cache while simnode runs (another build of the tree).
        """
        names: dict[str, _Archive] = dict(self._names or {})
        for path in sorted(self._archives_dir.rglob("*.tar")):
            index = _index_of(path)
            if index is None:
                continue
            for manifest in index.get("manifests") or []:
                name = (manifest.get("annotations") or {}).get(_CONTAINERD_NAME)
                if name:
                    digest = str(manifest["digest"])
                    names[str(name)] = _Archive(self._keep(path, digest), digest)
        return names

    def _keep(self, archive: pathlib.Path, digest: str) -> pathlib.Path:
        kept = self._unpack_dir / "archives" / f"{digest.replace(':', '-')}.tar"
        if kept.is_file():
            return kept
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        try:
            os.link(archive, partial)
        except OSError:
            try:
                shutil.copyfile(archive, partial)
            except OSError:
                return archive  # gone already (pruned): the next scan finds its successor
        partial.replace(kept)
        return kept

    def lookup(self, image: str) -> pathlib.Path | None:
        """The archive holding ``image`` (an exact name or ``docker.io/`` + name), or None."""
        with self._lock:
            if self._names is None or not any(n in self._names for n in (image, f"docker.io/{image}")):
                self._names = self._scan()  # an archive built after simnode started is found too
            found = self._names.get(image) or self._names.get(f"docker.io/{image}")
        return found.path if found is not None else None

    def prepare(self, image: str) -> tuple[pathlib.Path, ImageConfig]:
        """The image's root file system and config, unpacking it the first time its digest is seen."""
        if self.lookup(image) is None:
            raise UnpackError(f"no archive holds image {image!r}")
        with self._lock:
            assert self._names is not None
            archive = self._names.get(image) or self._names[f"docker.io/{image}"]
            cached = self._unpacked.get(archive.digest)
            if cached is not None:
                return cached
            target = self._unpack_dir / archive.digest.replace(":", "-")
            if not (target / "image-config.json").is_file():
                _unpack(archive.path, target)
            rootfs = target / "rootfs"
            result = (rootfs, _read_config(json.loads((target / "image-config.json").read_text()), rootfs))
            self._unpacked[archive.digest] = result
            return result


def _unpack(archive: pathlib.Path, target: pathlib.Path) -> None:
    """``umoci unpack`` the (only) image of ``archive`` into ``target`` (made atomically)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="unpack-", dir=target.parent) as tmp:
        layout = pathlib.Path(tmp) / "layout"
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(layout, filter="tar")
        except (tarfile.TarError, OSError) as exc:
            raise UnpackError(f"cannot read the OCI archive {str(archive)!r}: {exc}") from exc
        refs = subprocess.run(["umoci", "ls", f"--layout={layout}"], capture_output=True, text=True, check=False)
        tags = refs.stdout.split()
        if refs.returncode != 0 or len(tags) != 1:
            raise UnpackError(f"{str(archive)!r} should hold one tagged image: {refs.stderr.strip() or tags}")
        bundle = pathlib.Path(tmp) / "bundle"
        result = subprocess.run(
            ["umoci", "unpack", f"--image={layout}:{tags[0]}", str(bundle)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise UnpackError(f"umoci unpack of {str(archive)!r} failed: {result.stderr.strip()[-2000:]}")
        (bundle / "image-config.json").write_text(json.dumps(_image_config(layout)))
        shutil.rmtree(target, ignore_errors=True)
        bundle.rename(target)


def _blob(layout: pathlib.Path, digest: str) -> dict[str, Any]:
    algorithm, _, value = digest.partition(":")
    result: dict[str, Any] = json.loads((layout / "blobs" / algorithm / value).read_text())
    return result


def _image_config(layout: pathlib.Path) -> dict[str, Any]:
    """The OCI image config (Env, Entrypoint, Cmd, WorkingDir, User) of the layout's only image."""
    index = json.loads((layout / "index.json").read_text())
    manifest = _blob(layout, index["manifests"][0]["digest"])
    config: dict[str, Any] = _blob(layout, manifest["config"]["digest"]).get("config") or {}
    return config


def _user_ids(user: str, rootfs: pathlib.Path) -> tuple[int, int]:
    """``uid[:gid]`` or a name from the image's passwd; root when empty."""
    name, _, group = user.partition(":")
    if not name:
        return 0, 0
    if name.isdigit():
        uid, gid = int(name), int(name)
        found = None
    else:
        found = next(
            (f for f in _passwd(rootfs / "etc" / "passwd") if f[0] == name),
            None,
        )
        if found is None:
            raise UnpackError(f"the image's user {name!r} is not in its /etc/passwd")
        uid, gid = int(found[2]), int(found[3])
    if group.isdigit():
        gid = int(group)
    return uid, gid


def _passwd(path: pathlib.Path) -> list[list[str]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [fields for fields in (line.split(":") for line in lines) if len(fields) >= 7]


def _read_config(config: Mapping[str, Any], rootfs: pathlib.Path) -> ImageConfig:
    env: list[tuple[str, str]] = []
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        env.append((key, value))
    entrypoint = [str(a) for a in config.get("Entrypoint") or []]
    cmd = [str(a) for a in config.get("Cmd") or []]
    user = str(config.get("User") or "")
    uid, gid = _user_ids(user, rootfs)
    return ImageConfig(
        args=(*entrypoint, *cmd),
        entrypoint_length=len(entrypoint),
        env=tuple(env),
        cwd=str(config.get("WorkingDir") or "/"),
        uid=uid,
        gid=gid,
        user=user,
    )


def container_argv(container: pod.Container, config: ImageConfig, env: Mapping[str, str]) -> list[str]:
    """Kubernetes' rule: ``command`` replaces the entrypoint, ``args`` the cmd; ``$(VAR)`` expanded.  Pure."""
    if container.command:
        parts: Sequence[str] = (*container.command, *container.args)
    elif container.args:
        parts = (*config.args[: config.entrypoint_length], *container.args)
    else:
        parts = config.args
    return [environment.expand(part, env.get) for part in parts]


def _security_context(owner: pydantic.BaseModel) -> dict[str, Any]:
    """The ``securityContext`` of a Pod spec or container (kept by the model as an unknown field)."""
    value = (owner.model_extra or {}).get("securityContext")
    return value if isinstance(value, dict) else {}


def _id_field(context: Mapping[str, Any], field: str, where: str) -> int | None:
    value = context.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.PodConfigError(
            "CreateContainerConfigError", f"{where} securityContext.{field} {value!r} is not a UID/GID"
        )
    return value


def run_as(
    the_pod: pod.Pod, container: pod.Container, config: ImageConfig, passwd: pathlib.Path
) -> tuple[int, int, tuple[int, ...]]:
    """The (uid, gid, supplementary groups) the container runs as, with Kubernetes' precedence (module docstring).

    Raises ``errors.PodConfigError`` (``CreateContainerConfigError``) where ``runAsNonRoot`` forbids starting.
    """
    pod_context = _security_context(the_pod.spec)
    own = _security_context(container)
    where = f"container {container.name!r}"
    uid = _id_field(own, "runAsUser", where)
    if uid is None:
        uid = _id_field(pod_context, "runAsUser", "the Pod's")
    gid = _id_field(own, "runAsGroup", where)
    if gid is None:
        gid = _id_field(pod_context, "runAsGroup", "the Pod's")
    non_root = own.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    names = f"(pod: {the_pod.key}, container: {container.name})"
    if non_root is True:
        if uid is None and config.user.partition(":")[0] and not config.user.partition(":")[0].isdigit():
            raise errors.PodConfigError(
                "CreateContainerConfigError",
                f"container has runAsNonRoot and image has non-numeric user ({config.user}), "
                f"cannot verify user is non-root {names}",
            )
        if uid == 0:
            raise errors.PodConfigError(
                "CreateContainerConfigError", f"container's runAsUser breaks non-root policy {names}"
            )
        if uid is None and config.uid == 0:
            raise errors.PodConfigError(
                "CreateContainerConfigError", f"container has runAsNonRoot and image will run as root {names}"
            )
    if uid is None:
        uid, image_gid = config.uid, config.gid
    else:
        image_gid = next((int(f[3]) for f in _passwd(passwd) if f[2] == str(uid) and f[3].isdigit()), 0)
    groups: list[int] = []
    for item in [*(pod_context.get("supplementalGroups") or []), pod_context.get("fsGroup")]:
        if isinstance(item, int) and not isinstance(item, bool) and item >= 0 and item not in groups:
            groups.append(item)
    return uid, gid if gid is not None else image_gid, tuple(groups)


def container_root(
    the_pod: pod.Pod, container: pod.Container, rootfs: pathlib.Path, config: ImageConfig, scratch: pathlib.Path
) -> Root:
    """The ``Root`` the container runs in: the image, its user as the security context says, its working directory."""
    uid, gid, groups = run_as(the_pod, container, config, rootfs / "etc" / "passwd")
    read_only = _security_context(container).get("readOnlyRootFilesystem") is True
    return Root(rootfs, scratch, uid, gid, container.working_dir or config.cwd, groups, read_only)


def merged_env(
    config: ImageConfig, container_env: Mapping[str, str], passwd: pathlib.Path, uid: int | None = None
) -> dict[str, str]:
    """The image's environment under the container's own (which wins), with HOME from the image's passwd.

    ``uid``: the user the container runs as (default: the image's).
    """
    env = dict(config.env)
    if "HOME" not in env:
        env["HOME"] = _home_of(config.uid if uid is None else uid, passwd)
    env.update(container_env)
    return env


def _home_of(uid: int, passwd: pathlib.Path) -> str:
    return next((fields[5] or "/" for fields in _passwd(passwd) if fields[2] == str(uid)), "/")


def resolve_in_root(rootfs: pathlib.Path, target: str) -> str:
    """``target`` with the image's symlinks followed inside the image (``/var/run`` -> ``/run``).

    A mount point must be resolved against the image's root, not the host's: an absolute symlink in the
    image (Debian's ``/var/run``) would otherwise lead a bind mount out of the container.  Reads the file
    system only; raises ``OSError`` (ELOOP) on a symlink loop, as the container start would.
    """
    parts = [p for p in target.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = rootfs.joinpath(*resolved, part)
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, f"too many symbolic links under {target!r} in the image")
            link = os.readlink(candidate)
            if link.startswith("/"):
                resolved = []
            parts = [p for p in link.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return "/" + "/".join(resolved)


def enter_code() -> str:
    """The Python program that enters a prepared root and execs the command.

    Its argv: root, uid, gid, the supplementary groups (comma-separated, possibly empty), workdir, command...

    Run as root with ``-I -S`` by the host's interpreter inside the container's mount namespace; it exits 127
    with a message (as a runtime does) when the command is not found in the image.
    """
    return (
        "import os,sys,warnings  # os.execvp imports warnings; after the chroot it could not\n"
        "root,uid,gid,wd=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),sys.argv[5]\n"
        "groups=[int(g) for g in sys.argv[4].split(',') if g]\n"
        "argv=sys.argv[6:]\n"
        "os.chroot(root)\n"
        "os.makedirs(wd,exist_ok=True)\n"
        "os.chdir(wd)\n"
        "os.setgroups(groups);os.setgid(gid);os.setuid(uid)\n"
        "try:\n"
        "    os.execvp(argv[0],argv)\n"
        "except OSError as e:\n"
        "    sys.stderr.write('simnode: cannot run %r in the image: %s\\n'%(argv[0],e.strerror));sys.exit(127)\n"
    )
