"""Where FMA's kube-scheduler build goes: a cache path keyed by a hash of the plugin's Go sources, and the
stable name ``fma-kube-scheduler`` on simnode's Pod PATH once it is built."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

from devcluster import binaries
from devcluster.simnode import node_agent


def test_the_hash_covers_every_go_file_by_name_and_content(tmp_path: pathlib.Path) -> None:
    (tmp_path / "main.go").write_text("package main\n")
    (tmp_path / "plugin.go").write_text("package main // v1\n")
    first = binaries.plugin_source_hash(tmp_path)
    assert len(first) == 12
    assert binaries.plugin_source_hash(tmp_path) == first
    (tmp_path / "plugin.go").write_text("package main // v2\n")
    second = binaries.plugin_source_hash(tmp_path)
    assert second != first
    (tmp_path / "README").write_text("not Go")
    assert binaries.plugin_source_hash(tmp_path) == second
    (tmp_path / "plugin.go").rename(tmp_path / "other.go")
    assert binaries.plugin_source_hash(tmp_path) != second


def test_no_go_sources_is_a_build_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(binaries.BuildError, match="no Go sources"):
        binaries.plugin_source_hash(tmp_path)


def test_the_binary_lives_beside_the_stock_ones_keyed_by_the_shipped_sources(tmp_path: pathlib.Path) -> None:
    path = binaries.locate_fma_scheduler(tmp_path)
    assert path.parent == binaries.locate(tmp_path).kube_scheduler.parent
    assert path.name == f"fma-kube-scheduler-{binaries.plugin_source_hash()}"
    assert {p.name for p in binaries.PLUGIN_SOURCES.glob("*.go")} >= {"main.go", "plugin.go"}


def _fake_build(root: pathlib.Path) -> pathlib.Path:
    """A file where the current sources' build would be (so nothing is built)."""
    path = binaries.locate_fma_scheduler(root)
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_the_build_is_on_simnodes_pod_path_as_fma_kube_scheduler(tmp_path: pathlib.Path) -> None:
    build = _fake_build(tmp_path)
    dirs = node_agent.tool_dirs(tmp_path)
    path = node_agent.base_env("/venv", "/usr/bin:/bin", None, dirs)["PATH"]
    assert shutil.which(binaries.FMA_SCHEDULER_COMMAND, path=path) is None, "no link before ensure"
    assert binaries.ensure_fma_scheduler(tmp_path) == build
    found = shutil.which(binaries.FMA_SCHEDULER_COMMAND, path=path)
    assert found is not None
    assert pathlib.Path(found).resolve() == build.resolve()
    assert os.readlink(found) == build.name, "relative: the cache may move"
    assert binaries.ensure_fma_scheduler(tmp_path) == build
    assert os.readlink(found) == build.name
    assert [p.name for p in build.parent.iterdir() if p.name.startswith(".")] == [], "no partial link left"


def test_a_link_to_another_build_is_replaced(tmp_path: pathlib.Path) -> None:
    build = _fake_build(tmp_path)
    old = build.parent / "fma-kube-scheduler-000000000000"
    old.write_text("old")
    (build.parent / binaries.FMA_SCHEDULER_COMMAND).symlink_to(old.name)
    link = binaries.link_fma_scheduler(build)
    assert link == build.parent / binaries.FMA_SCHEDULER_COMMAND
    assert os.readlink(link) == build.name


def test_no_link_without_a_build(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(out_path: pathlib.Path, version: str = binaries.KUBERNETES_VERSION, *, test: bool = False) -> None:
        raise binaries.BuildError("no Go here")

    monkeypatch.setattr(binaries, "build_fma_scheduler", refuse)
    with pytest.raises(binaries.BuildError):
        binaries.ensure_fma_scheduler(tmp_path)
    assert not (binaries.locate(tmp_path).kubectl.parent / binaries.FMA_SCHEDULER_COMMAND).is_symlink()


def test_the_image_entry_point_is_parsed(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    built: list[tuple[pathlib.Path, bool]] = []

    def record(out_path: pathlib.Path, version: str = binaries.KUBERNETES_VERSION, *, test: bool = False) -> None:
        built.append((out_path, test))

    monkeypatch.setattr(binaries, "build_fma_scheduler", record)
    monkeypatch.setattr(binaries, "ensure_all", lambda: pytest.fail("only FMA's scheduler is built"))
    assert binaries.main(["--build-fma-scheduler", str(tmp_path / "out" / "fma-kube-scheduler")]) == 0
    assert built == [(tmp_path / "out" / "fma-kube-scheduler", True)]
