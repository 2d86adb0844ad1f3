"""A volume mounted over a directory the container needs (the chart's emptyDir at /tmp while the project
lives under /tmp) must not hide that directory: simnode binds it back at its own path."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

from devcluster.simnode import container_process


def test_outermost_kept_paths_below_a_target() -> None:
    keep = ["/tmp/a", "/tmp/a/b", "/tmp", "/usr/bin", "/tmpx/c"]
    assert container_process._kept_under("/tmp", keep) == ["/tmp/a"]
    assert container_process._kept_under("/srv", keep) == []


def test_needed_directory_under_a_volume_target_stays_visible(tmp_path: pathlib.Path) -> None:
    covered = tmp_path / "covered"
    needed = covered / "project" / "pkg"
    needed.mkdir(parents=True)
    (needed / "module.txt").write_text("still here\n")
    volume = tmp_path / "empty-dir"
    volume.mkdir()
    mounts = [container_process.Mount(source=str(volume), target=str(covered), read_only=False, is_file=False)]
    script = f"cat {needed}/module.txt; touch {covered}/written"
    argv = container_process.launch_argv(
        ["/bin/sh", "-c", script], mounts, shutil.which("unshare") or "unshare", None, [str(covered / "project")]
    )
    result = subprocess.run(argv, capture_output=True, text=True, cwd="/", timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "still here\n"
    # Writes under the target land in the volume, not in the covered host directory.
    assert (volume / "written").exists()
    assert not (covered / "written").exists()


def test_without_keep_the_volume_hides_the_directory(tmp_path: pathlib.Path) -> None:
    covered = tmp_path / "covered"
    (covered / "project").mkdir(parents=True)
    (covered / "project" / "f").write_text("x")
    volume = tmp_path / "empty-dir"
    volume.mkdir()
    mounts = [container_process.Mount(source=str(volume), target=str(covered), read_only=False, is_file=False)]
    argv = container_process.launch_argv(
        ["/bin/sh", "-c", f"test -e {covered}/project/f"], mounts, shutil.which("unshare") or "unshare"
    )
    assert subprocess.run(argv, cwd="/", timeout=30, check=False).returncode != 0
