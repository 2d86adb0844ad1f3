"""Strategic merge of server patches into Pods."""

from __future__ import annotations

from typing import Any

import pytest

from controllers import strategic_merge

POD: dict[str, Any] = {
    "metadata": {"labels": {"app": "a", "keep": "k"}},
    "spec": {
        "containers": [
            {
                "name": "inference-server",
                "image": "requester",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 8080}],
            },
            {"name": "side", "image": "s"},
        ],
        "volumes": [{"name": "v1", "emptyDir": {}}],
        "tolerations": [{"key": "t1"}],
    },
}


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        pytest.param(
            {"spec": {"containers": [{"name": "inference-server", "image": "vllm"}]}},
            lambda p: p["spec"]["containers"][0]["image"] == "vllm" and p["spec"]["containers"][1]["name"] == "side",
            id="containers-merge-by-name",
        ),
        pytest.param(
            {
                "spec": {
                    "containers": [
                        {"name": "inference-server", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}
                    ]
                }
            },
            lambda p: (
                p["spec"]["containers"][0]["env"]
                == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
            ),
            id="env-merges-by-name",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}},
            lambda p: [c["name"] for c in p["spec"]["containers"]] == ["inference-server"],
            id="patch-delete",
        ),
        pytest.param(
            {"spec": {"tolerations": [{"key": "t2"}]}},
            lambda p: p["spec"]["tolerations"] == [{"key": "t2"}],
            id="lists-without-merge-key-replace",
        ),
        pytest.param(
            {"metadata": {"labels": {"app": None, "new": "n"}}},
            lambda p: p["metadata"]["labels"] == {"keep": "k", "new": "n"},
            id="null-deletes-a-key",
        ),
        pytest.param(
            {"spec": {"volumes": [{"name": "v2", "emptyDir": {}}, {"$patch": "replace"}]}},
            lambda p: p["spec"]["volumes"] == [{"name": "v2", "emptyDir": {}}],
            id="patch-replace-list",
        ),
        pytest.param(
            {
                "spec": {
                    "containers": [{"name": "inference-server", "ports": [{"containerPort": 8000, "name": "http"}]}]
                }
            },
            lambda p: (
                p["spec"]["containers"][0]["ports"]
                == [{"containerPort": 8080}, {"containerPort": 8000, "name": "http"}]
            ),
            id="ports-merge-by-containerPort",
        ),
    ],
)
def test_apply(patch: dict[str, Any], check: Any) -> None:
    assert check(strategic_merge.apply(POD, patch))


def test_input_is_not_modified() -> None:
    before = repr(POD)
    strategic_merge.apply(POD, {"spec": {"containers": [{"name": "inference-server", "image": "x"}]}})
    assert repr(POD) == before
