"""Pure parts of the control plane: config merging and the state record."""

from __future__ import annotations

import pathlib

from devcluster import control_plane, processes


def test_merge_config_deep_merges_mappings_and_replaces_the_rest() -> None:
    base = {"kind": "KubeSchedulerConfiguration", "leaderElection": {"leaderElect": False}, "profiles": [1]}
    overlay = {"leaderElection": {"resourceName": "x"}, "profiles": [2], "extenders": [{"urlPrefix": "u"}]}
    merged = control_plane.merge_config(base, overlay)
    assert merged == {
        "kind": "KubeSchedulerConfiguration",
        "leaderElection": {"leaderElect": False, "resourceName": "x"},
        "profiles": [2],
        "extenders": [{"urlPrefix": "u"}],
    }
    assert base["leaderElection"] == {"leaderElect": False}, "the base must not be modified"


def test_state_round_trips_through_json(tmp_path: pathlib.Path) -> None:
    state = control_plane.ClusterState(
        state_dir=tmp_path,
        server="https://127.0.0.1:6443",
        kubeconfig=tmp_path / "admin.kubeconfig",
        ca_cert=tmp_path / "ca.crt",
        admin_cert=tmp_path / "admin.crt",
        admin_key=tmp_path / "admin.key",
        scheduler_config=tmp_path / "s.yaml",
        ports={"apiserver": 6443},
        processes=[processes.ProcessRecord(name="etcd", pid=12, start_time=34, log="/x.log")],
    )
    assert control_plane.ClusterState.from_json(state.to_json()) == state


def test_load_of_an_empty_directory_is_none(tmp_path: pathlib.Path) -> None:
    assert control_plane.load(tmp_path) is None
    assert control_plane.down(tmp_path) is False
