"""The binary builder's pure parts: which modules to replace, where outputs go."""

from __future__ import annotations

import pathlib

import pytest

from devcluster import binaries

KUBERNETES_GO_MOD = """\
module k8s.io/kubernetes

go 1.25.0

require (
\tgithub.com/spf13/cobra v1.10.0
\tk8s.io/api v0.0.0
\tk8s.io/apimachinery v0.0.0
\tk8s.io/client-go v0.0.0 // indirect
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apimachinery => ./staging/src/k8s.io/apimachinery
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/example/pinned => github.com/example/pinned v1.2.3
)
"""

ETCD_GO_MOD = """\
module go.etcd.io/etcd/server/v3

require (
\tgo.etcd.io/etcd/api/v3 v3.6.16
\tgo.etcd.io/etcd/pkg/v3 v3.6.16
)

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/pkg/v3 => ../pkg
)

// Bad imports are sometimes causing attempts to pull that code.
replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY
"""


@pytest.mark.parametrize(
    ("go_mod", "expected"),
    [
        pytest.param(
            KUBERNETES_GO_MOD, ["k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go"], id="kubernetes-staging"
        ),
        pytest.param(ETCD_GO_MOD, ["go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/pkg/v3"], id="etcd-skips-forbidden"),
        pytest.param("module x\n\nrequire a.b/c v1.0.0\n", [], id="no-replaces"),
        pytest.param(
            "module x\nrequire a.b/c v1.0.0\nreplace a.b/c v1.0.0 => ./c\n", ["a.b/c"], id="single-line-versioned"
        ),
    ],
)
def test_local_replaces_of_required_modules(go_mod: str, expected: list[str]) -> None:
    assert binaries.parse_staging_replaces(go_mod) == expected


def test_locate_keys_outputs_by_version(tmp_path: pathlib.Path) -> None:
    located = binaries.locate(tmp_path)
    assert located.kube_apiserver == tmp_path / "k8s" / binaries.KUBERNETES_VERSION / "kube-apiserver"
    assert located.etcd == tmp_path / "etcd" / binaries.ETCD_VERSION / "etcd"
    assert located.helm == tmp_path / "helm" / binaries.HELM_VERSION / "helm"
    assert set(located.missing()) == {
        located.kube_apiserver,
        located.kube_controller_manager,
        located.kube_scheduler,
        located.kubectl,
        located.etcd,
        located.helm,
    }


def test_cache_root_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("FMA_CACHE_DIR", str(tmp_path / "c"))
    assert binaries.cache_root() == tmp_path / "c"
    monkeypatch.delenv("FMA_CACHE_DIR")
    assert binaries.cache_root() == pathlib.Path.home() / ".cache" / "fma"


def test_missing_go_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(binaries.BuildError, match=r"Go toolchain \('go'\) is not on PATH; install Go"):
        binaries.build_helm(tmp_path / "helm")
