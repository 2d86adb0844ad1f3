"""Where FMA's kube-scheduler build goes: a cache path keyed by a hash of the plugin's Go sources."""

from __future__ import annotations

import pathlib

import pytest

from devcluster import binaries


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
