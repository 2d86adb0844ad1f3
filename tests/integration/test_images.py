"""The images ``make images`` builds without an engine: real OCI archives that start, and are clean inside.

The session fixture builds both images (``devcluster.image_build``; cached, so
only the first session on a machine pays the build) and unpacks each with
simnode's own image code (``image_rootfs``, the same path image mode takes),
then runs commands inside the image's root file system as its user.  It never
skips: without mmdebstrap, umoci or root the build fails and says which.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import subprocess
import tarfile
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from devcluster import binaries, image_build
from devcluster.simnode import container_process, image_rootfs

# The integration tier: the first test pays the build (about 8 minutes from an empty cache on a loaded
# 2-core machine, 1.5-3 minutes when only the sources changed, under a second when nothing did).
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1500)]

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "tcc", "x86_64-linux-gnu-gcc")


@pytest.fixture(scope="session")
def built_images() -> image_build.BuildResult:
    return image_build.build()


@pytest.fixture(scope="module")
def store(built_images: image_build.BuildResult, tmp_path_factory: pytest.TempPathFactory) -> image_rootfs.Store:
    return image_rootfs.Store(built_images.directory, tmp_path_factory.mktemp("unpacked"))


def run_in_image(
    store: image_rootfs.Store, image: str, argv: list[str], scratch: pathlib.Path
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside ``image`` as its user, the way simnode's image mode does."""
    rootfs, config = store.prepare(image)
    root = image_rootfs.Root(rootfs, scratch, config.uid, config.gid, config.cwd)
    env = image_rootfs.merged_env(config, {}, rootfs / "etc" / "passwd")
    return subprocess.run(
        container_process.launch_argv(argv, [], shutil.which("unshare") or "unshare", root),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_images_writes_two_oci_archives_with_their_names_and_digests(
    built_images: image_build.BuildResult,
) -> None:
    names = [image.name for image in built_images.images]
    assert names == ["ghcr.io/llm-d/fma:0.1.0", "ghcr.io/llm-d/fma-launcher:0.1.0"]
    for image in built_images.images:
        with tarfile.open(image.archive) as tar:
            layout = json.load(tar.extractfile("oci-layout"))  # type: ignore[arg-type]
            index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        assert layout == {"imageLayoutVersion": "1.0.0"}
        (manifest,) = index["manifests"]
        assert manifest["digest"] == image.digest
        assert manifest["annotations"]["io.containerd.image.name"] == image.name
    # A second build of the same sources only reads the recorded result; sources edited in between
    # (a shared working tree) make a new build in a directory of its own.
    again = image_build.build()
    if again.directory == built_images.directory:
        assert again.reused
        assert [i.digest for i in again.images] == [i.digest for i in built_images.images]
        assert again.seconds < 5
    else:
        assert not again.reused
        assert (again.directory / "images.json").is_file()


def test_runs_as_non_root_with_every_console_script(
    built_images: image_build.BuildResult, store: image_rootfs.Store, tmp_path: pathlib.Path
) -> None:
    result = run_in_image(store, built_images.fma.name, ["id", "-u"], tmp_path / "a")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(image_build.IMAGE_UID)
    scripts = ["fma-controllers", "fma-webhook", "fma-extender", "fma-certs", "fma-launcher", "fma-requester"]
    scripts += ["fma-engine-sim", "kubectl-fma"]
    lookup = f"for s in {' '.join(scripts)}; do command -v $s; done"
    found = run_in_image(store, built_images.fma.name, ["sh", "-c", lookup], tmp_path / "b")
    assert found.stdout.split() == [f"/opt/fma/bin/{name}" for name in scripts], found.stderr
    launcher = run_in_image(store, built_images.launcher.name, ["fma-launcher", "--help"], tmp_path / "c")
    assert launcher.returncode == 0, launcher.stderr
    assert "--engine" in launcher.stdout


def test_the_launcher_image_carries_the_notifier_at_app(
    built_images: image_build.BuildResult, store: image_rootfs.Store
) -> None:
    rootfs, config = store.prepare(built_images.launcher.name)
    notifier = rootfs / "app" / "launcher_pod_notifier.py"
    assert notifier.read_bytes() == (ROOT / "images" / "launcher" / "app" / "launcher_pod_notifier.py").read_bytes()
    assert config.cwd == "/app"
    assert config.args == ("fma-launcher",)
    # /app is not on the import path: a future /app/launcher.py must not hide the launcher package.
    assert not any(key == "PYTHONPATH" for key, _ in config.env)


def test_no_shell_history_no_pip_cache_no_compilers(
    built_images: image_build.BuildResult, store: image_rootfs.Store
) -> None:
    for image in built_images.images:
        rootfs, config = store.prepare(image.name)
        assert config.uid != 0
        found = []
        for directory, subdirs, files in os.walk(rootfs):
            for name in files:
                if name.endswith("_history") or name == ".python_history":
                    found.append(os.path.join(directory, name))
            for name in subdirs:
                if name in ("pip", "wheels") and os.path.basename(directory) == ".cache":
                    found.append(os.path.join(directory, name))
        assert found == [], f"{image.name}: leftovers {found}"
        assert not (rootfs / "opt" / "fma" / "bin" / "pip").exists(), "pip itself stays out of the image"
        assert not (rootfs / "opt" / "fma-wheels").exists()
        path_dirs = dict(config.env)["PATH"].split(":")
        compilers = [f"{d}/{c}" for d in path_dirs for c in COMPILERS if (rootfs / d.lstrip("/") / c).exists()]
        assert compilers == [], f"{image.name}: compilers {compilers}"
        assert not list((rootfs / "usr" / "lib" / "gcc").glob("*/*/cc1")), "no compiler back ends either"


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[_canonical(name)] = version.strip()
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_closure() -> set[str]:
    """The project's runtime dependencies, transitively, as this (locked) virtualenv resolves them."""
    names: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    pending: list[tuple[str, frozenset[str]]] = [
        (text, frozenset()) for text in importlib.metadata.requires("fast-model-actuation") or []
    ]
    while pending:
        text, extras_of_parent = pending.pop()
        requirement = Requirement(text)
        environments = [{"extra": extra} for extra in extras_of_parent] or [{"extra": ""}]
        if requirement.marker is not None and not any(requirement.marker.evaluate(e) for e in environments):
            continue
        key = (_canonical(requirement.name), frozenset(requirement.extras))
        if key in visited:
            continue
        visited.add(key)
        names.add(key[0])
        pending.extend((sub, key[1]) for sub in importlib.metadata.requires(requirement.name) or [])
    return names


def test_the_python_packages_are_the_lock_files_runtime_part(
    built_images: image_build.BuildResult, store: image_rootfs.Store, tmp_path: pathlib.Path
) -> None:
    listing = run_in_image(
        store,
        built_images.fma.name,
        [
            "python3",
            "-c",
            "import importlib.metadata as m, json; print(json.dumps(sorted((d.metadata['Name'], d.version) "
            "for d in m.distributions())))",
        ],
        tmp_path / "s",
    )
    assert listing.returncode == 0, listing.stderr
    installed = {_canonical(name): version for name, version in json.loads(listing.stdout)}
    assert installed.pop("fast-model-actuation") == "0.1.0"
    lock = _lock()
    assert installed == {name: lock[name] for name in _runtime_closure()}


def _pod_specs(node: object) -> list[dict[str, Any]]:
    """Every Pod spec (a mapping with ``containers``) inside a rendered object, at any depth."""
    if isinstance(node, list):
        return [spec for item in node for spec in _pod_specs(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if isinstance(node.get("containers"), list) else []
    return found + [spec for key, value in node.items() if key != "containers" for spec in _pod_specs(value)]


def test_the_users_the_chart_runs_our_images_as_exist_in_them(
    built_images: image_build.BuildResult, store: image_rootfs.Store
) -> None:
    chart = str(ROOT / "charts" / "fma")
    kube_version = binaries.KUBERNETES_VERSION.lstrip("v")
    rendered = subprocess.run(
        [str(binaries.locate().helm), "template", "fma", chart, "-n", "fma-system", "--kube-version", kube_version],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    ours = {image.name: image for image in built_images.images}
    seen: set[tuple[str, int, int]] = set()
    for spec in _pod_specs([doc for doc in yaml.safe_load_all(rendered) if doc]):
        pod_context = spec.get("securityContext") or {}
        for box in spec["containers"]:
            if box["image"] not in ours:
                continue
            context = {**pod_context, **(box.get("securityContext") or {})}
            assert context.get("runAsNonRoot") is True, box["name"]
            seen.add((box["image"], context["runAsUser"], context["runAsGroup"]))
    assert {image for image, _, _ in seen} == {built_images.fma.name}, "the chart's Pods run the FMA image"
    for image, uid, gid in seen:
        rootfs, config = store.prepare(image)
        users = [line.split(":") for line in (rootfs / "etc" / "passwd").read_text().splitlines()]
        groups = [line.split(":") for line in (rootfs / "etc" / "group").read_text().splitlines()]
        # The chart's user is the image's own, with a passwd entry (a home, no login shell) and its group.
        assert (uid, gid) == (config.uid, config.gid) != (0, 0)
        (entry,) = [u for u in users if u[2] == str(uid)]
        assert entry[3] == str(gid)
        assert (rootfs / entry[5].lstrip("/")).is_dir()
        assert entry[6] == "/usr/sbin/nologin"
        assert [g[0] for g in groups if g[2] == str(gid)] == [entry[0]]
