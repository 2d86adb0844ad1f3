"""``make images`` (scripts/build-images.sh): which engine it uses, what it builds, and its message without one."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

import pytest
import yaml

from devcluster import binaries

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "build-images.sh"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )


def fake_engine(directory: pathlib.Path, name: str, log: pathlib.Path) -> None:
    """An executable named like an engine that records its arguments ('info' succeeds)."""
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    path.chmod(0o755)


def test_without_an_engine_it_says_so_and_builds_nothing(tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    if any((pathlib.Path(d) / e).exists() for d in SYSTEM_PATH.split(":") for e in ("docker", "podman", "buildah")):
        pytest.skip("an engine is installed in the system directories; cannot hide it from the script")
    result = run({"PATH": f"{empty}:{SYSTEM_PATH}", "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "no container engine found (looked for docker, podman and buildah on PATH)" in result.stderr
    assert "nothing was built" in result.stderr


def test_a_named_engine_that_is_missing_is_reported(tmp_path: pathlib.Path) -> None:
    result = run({"PATH": SYSTEM_PATH, "CONTAINER_ENGINE": "no-such-engine", "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "CONTAINER_ENGINE=no-such-engine is not on PATH; nothing was built." in result.stderr


def run_podman(tmp_path: pathlib.Path, **extra: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The script run with a recording podman, images named registry.example.com/fma:t1; its result and calls."""
    log = tmp_path / "calls"
    fake_engine(tmp_path, "podman", log)
    env = {
        "PATH": f"{tmp_path}:{SYSTEM_PATH}",
        "HOME": str(tmp_path),
        "CONTAINER_ENGINE": "podman",
        "IMAGE_REPO": "registry.example.com/fma",
        "IMAGE_TAG": "t1",
        **extra,
    }
    result = run(env)
    assert result.returncode == 0, result.stderr
    return result, log.read_text().splitlines()


def test_podman_builds_both_images_from_the_repository_root(tmp_path: pathlib.Path) -> None:
    result, calls = run_podman(tmp_path, VLLM_IMAGE="vllm/vllm-openai:v0.0.1")
    assert calls[0] == "info"
    assert calls[1] == "build -f images/fma/Containerfile -t registry.example.com/fma:t1 ."
    assert calls[2] == (
        "build -f images/launcher/Containerfile -t registry.example.com/fma-launcher:t1 "
        "--build-arg VLLM_IMAGE=vllm/vllm-openai:v0.0.1 ."
    )
    assert "built registry.example.com/fma:t1 and registry.example.com/fma-launcher:t1 with podman" in result.stdout
    assert len(calls) == 3, "no scheduler image unless SCHEDULER_IMAGE=1"
    assert "only with SCHEDULER_IMAGE=1" in result.stdout


def test_the_scheduler_image_is_built_on_request(tmp_path: pathlib.Path) -> None:
    result, calls = run_podman(tmp_path, SCHEDULER_IMAGE="1")
    assert calls[-1] == "build -f images/fma-scheduler/Containerfile -t registry.example.com/fma-scheduler:t1 ."
    assert "registry.example.com/fma-scheduler:t1 with podman" in result.stdout
    # The chart's default plugin image is that name under the default repository.
    values = yaml.safe_load((ROOT / "charts" / "fma" / "values.yaml").read_text())
    assert values["scheduler"]["plugin"]["image"]["repository"] == "ghcr.io/llm-d/fma" + "-scheduler"


def test_buildah_uses_bud_and_the_project_version(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "calls"
    fake_engine(tmp_path, "buildah", log)
    result = run({"PATH": f"{tmp_path}:{SYSTEM_PATH}", "HOME": str(tmp_path), "CONTAINER_ENGINE": "buildah"})
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "bud --layers -f images/fma/Containerfile -t ghcr.io/llm-d/fma:0.1.0 ."
    assert calls[1].startswith("bud --layers -f images/launcher/Containerfile -t ghcr.io/llm-d/fma-launcher:0.1.0")


def test_an_engine_without_its_daemon_is_reported(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "docker"
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(0o755)
    result = run({"PATH": f"{tmp_path}:{SYSTEM_PATH}", "HOME": str(tmp_path), "CONTAINER_ENGINE": "docker"})
    assert result.returncode == 2
    assert "docker is installed but cannot reach its daemon" in result.stderr


def test_the_launcher_image_carries_app() -> None:
    text = (ROOT / "images" / "launcher" / "Containerfile").read_text()
    assert "COPY images/launcher/app/ /app/" in text
    assert os.path.isdir(ROOT / "images" / "launcher" / "app")


def test_the_fma_scheduler_image_is_the_dev_clusters_build_as_non_root() -> None:
    """images/fma-scheduler (never built here: no engine) builds with binaries.py's entry point into the path
    and name the chart's scheduler.plugin.command finds, and copies only sources that exist."""
    text = (ROOT / "images" / "fma-scheduler" / "Containerfile").read_text()
    command = binaries.FMA_SCHEDULER_COMMAND
    assert f"python3 -m devcluster.binaries --build-fma-scheduler /out/{command}" in text
    assert f"COPY --from=build /out/{command} /usr/local/bin/{command}" in text
    assert "USER 65532:65532" in text
    assert f'ENTRYPOINT ["/usr/local/bin/{command}"]' in text
    values = yaml.safe_load((ROOT / "charts" / "fma" / "values.yaml").read_text())
    assert values["scheduler"]["plugin"]["command"] == [command]
    copied = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ") and "--from" not in line]
    sources = [src for sources in copied for src in sources]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
    assert binaries.PLUGIN_SOURCES.relative_to(ROOT).as_posix() in sources
    # The Go stage's toolchain meets the wrapper module's go directive (binaries._kubernetes_module: go 1.25).
    go = re.search(r"golang:(\d+)\.(\d+)", text)
    assert go is not None
    assert (int(go.group(1)), int(go.group(2))) >= (1, 25)
