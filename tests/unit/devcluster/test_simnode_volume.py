"""Volumes become directories with the files a real kubelet would write."""

from __future__ import annotations

import base64
import pathlib
from typing import Any

import pytest

from devcluster.simnode import environment, errors, pod, volume

FACTS = environment.PodFacts(pod_ip="127.1.0.2", host_ip="127.1.0.1", node_allocatable={"cpu": "4"})


def _pod(volumes: list[dict[str, Any]]) -> pod.Pod:
    return pod.Pod.model_validate(
        {
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "b"}},
            "spec": {"serviceAccountName": "sa", "containers": [{"name": "c"}], "volumes": volumes},
        }
    )


def _sources(tokens: list[tuple[str, str | None, int]]) -> volume.Sources:
    def request(account: str, audience: str | None, seconds: int) -> tuple[str, float]:
        tokens.append((account, audience, seconds))
        return f"token-{len(tokens)}", 1000.0

    return volume.Sources(
        config_maps={"cm": {"a": "1", "b": "2"}, "kube-root-ca.crt": {"ca.crt": "CA"}}.get,
        secrets={"s": {"pw": "hunter2"}}.get,
        request_token=request,
        facts=FACTS,
    )


def _files(directory: pathlib.Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_config_map_items_and_modes(tmp_path: pathlib.Path) -> None:
    the_pod = _pod(
        [{"name": "v", "configMap": {"name": "cm", "items": [{"key": "b", "path": "sub/bee", "mode": 0o600}]}}]
    )
    volume.materialize(the_pod, the_pod.spec.volumes[0], tmp_path, _sources([]), 0.0)
    assert _files(tmp_path) == {"sub/bee": "2"}
    assert (tmp_path / "sub" / "bee").stat().st_mode & 0o777 == 0o600


def test_secret_and_downward_api(tmp_path: pathlib.Path) -> None:
    the_pod = _pod(
        [
            {"name": "s", "secret": {"secretName": "s"}},
            {
                "name": "d",
                "downwardAPI": {
                    "items": [
                        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                        {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}},
                    ]
                },
            },
        ]
    )
    volume.materialize(the_pod, the_pod.spec.volumes[0], tmp_path / "s", _sources([]), 0.0)
    volume.materialize(the_pod, the_pod.spec.volumes[1], tmp_path / "d", _sources([]), 0.0)
    assert _files(tmp_path / "s") == {"pw": "hunter2"}
    assert _files(tmp_path / "d") == {"labels": 'a="b"', "cpu": "4"}


def test_projected_service_account_volume_and_refresh(tmp_path: pathlib.Path) -> None:
    requested: list[tuple[str, str | None, int]] = []
    the_pod = _pod(
        [
            {
                "name": "kube-api-access",
                "projected": {
                    "defaultMode": 0o644,
                    "sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {
                            "downwardAPI": {
                                "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                            }
                        },
                    ],
                },
            }
        ]
    )
    sources = _sources(requested)
    tokens = volume.materialize(the_pod, the_pod.spec.volumes[0], tmp_path, sources, 100.0)
    assert _files(tmp_path) == {"token": "token-1", "ca.crt": "CA", "namespace": "ns"}
    assert requested == [("sa", None, 3607)]
    assert tokens[0].refresh_at == pytest.approx(100.0 + 800.0)
    volume.refresh_token(tokens[0], sources, 900.0)
    assert (tmp_path / "token").read_text() == "token-2"


def test_missing_sources_wait_unless_optional(tmp_path: pathlib.Path) -> None:
    the_pod = _pod(
        [
            {"name": "gone", "configMap": {"name": "absent"}},
            {"name": "maybe", "secret": {"secretName": "absent", "optional": True}},
            {"name": "nokey", "configMap": {"name": "cm", "items": [{"key": "zzz", "path": "z"}]}},
        ]
    )
    with pytest.raises(errors.VolumeNotReady, match="configmap 'absent' not found"):
        volume.materialize(the_pod, the_pod.spec.volumes[0], tmp_path / "a", _sources([]), 0.0)
    volume.materialize(the_pod, the_pod.spec.volumes[1], tmp_path / "b", _sources([]), 0.0)
    assert _files(tmp_path / "b") == {}
    with pytest.raises(errors.VolumeNotReady, match="no key 'zzz'"):
        volume.materialize(the_pod, the_pod.spec.volumes[2], tmp_path / "c", _sources([]), 0.0)


def test_decode_secret() -> None:
    assert volume.decode_secret({"k": base64.b64encode(b"v").decode()}) == {"k": "v"}


def test_resync_follows_config_map_changes(tmp_path: pathlib.Path) -> None:
    data = {"cm": {"a": "1", "b": "2"}}
    sources = volume.Sources(config_maps=data.get, secrets={}.get, request_token=lambda *_: ("t", 1.0), facts=FACTS)
    the_pod = _pod([{"name": "v", "configMap": {"name": "cm"}}, {"name": "e", "emptyDir": {}}])
    target = tmp_path / "v"
    volume.materialize(the_pod, the_pod.spec.volumes[0], target, sources, 0.0)
    assert not volume.resync(the_pod, the_pod.spec.volumes[0], target, sources, tmp_path / "scratch")
    data["cm"] = {"a": "1", "c": "3"}
    assert volume.resync(the_pod, the_pod.spec.volumes[0], target, sources, tmp_path / "scratch")
    assert _files(target) == {"a": "1", "c": "3"}
    assert not (tmp_path / "scratch").exists()
    assert not volume.resync(the_pod, the_pod.spec.volumes[1], tmp_path / "e", sources, tmp_path / "scratch")
