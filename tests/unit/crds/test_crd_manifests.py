"""The CRD manifests: committed files equal the generator's output, and the schemas are structural."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from crds import __main__ as cli
from crds import kinds, manifests

_REPO = pathlib.Path(__file__).resolve().parents[3]


def _by_kind() -> dict[str, dict[str, Any]]:
    return {document["spec"]["names"]["kind"]: document for document in manifests.documents()}


def _schema(kind: str) -> dict[str, Any]:
    schema = _by_kind()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


@pytest.mark.parametrize(
    "directory",
    [pytest.param(manifests.package_dir(), id="crds-manifests"), pytest.param(manifests.chart_dir(), id="chart-crds")],
)
def test_committed_yaml_equals_generator_output(directory: pathlib.Path) -> None:
    assert manifests.stale([directory]) == [], "run 'python -m crds generate' and commit the result"
    assert sorted(path.name for path in directory.glob("*.yaml")) == sorted(
        manifests.file_name(document) for document in manifests.documents()
    )


def test_generation_is_deterministic() -> None:
    first = [manifests.render(document) for document in manifests.documents()]
    second = [manifests.render(document) for document in manifests.documents()]
    assert first == second
    assert all(text.startswith(manifests.HEADER) for text in first)


def test_cli_generate_then_check(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--output", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert cli.main(["generate", "--output", str(tmp_path)]) == 0
    assert cli.main(["check", "--output", str(tmp_path)]) == 0
    target = tmp_path / "fma.llm-d.ai_launcherconfigs.yaml"
    target.write_text(target.read_text() + "# edited\n")
    assert cli.main(["check", "--output", str(tmp_path)]) == 1
    assert str(target) in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crds", "generate", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=_REPO,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("*.yaml"))) == 3


@pytest.mark.parametrize("kind", [pytest.param(k, id=k.kind) for k in kinds.ALL])
def test_names_scope_and_subresource(kind: kinds.ResourceKind) -> None:
    document = _by_kind()[kind.kind]
    assert document["metadata"]["name"] == kind.crd_name
    spec = document["spec"]
    assert spec["group"] == "fma.llm-d.ai"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == [kind.short_name]
    assert spec["names"]["categories"] == ["fma"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"][-1]["name"] == "Age"


def test_printer_columns() -> None:
    columns = {
        kind: [c["name"] for c in doc["spec"]["versions"][0]["additionalPrinterColumns"]]
        for kind, doc in _by_kind().items()
    }
    assert columns == {
        "InferenceServerConfig": ["LauncherConfig", "Port", "Accepted", "Age"],
        "LauncherConfig": ["MaxInstances", "Accepted", "Age"],
        "LauncherPopulationPolicy": ["LauncherConfigs", "Accepted", "Age"],
    }


def test_apiserver_side_rules_are_in_the_schema() -> None:
    port = _schema("InferenceServerConfig")["properties"]["spec"]["properties"]["modelServerConfig"]["properties"][
        "port"
    ]
    assert (port["minimum"], port["maximum"], port["format"]) == (1, 65535, "int32")
    max_instances = _schema("LauncherConfig")["properties"]["spec"]["properties"]["maxInstances"]
    assert max_instances["minimum"] == 1
    counts = _schema("LauncherPopulationPolicy")["properties"]["spec"]["properties"]["countForLauncher"]
    assert counts["x-kubernetes-list-type"] == "map"
    assert counts["x-kubernetes-list-map-keys"] == ["launcherConfigName"]
    assert counts["items"]["properties"]["launcherCount"]["minimum"] == 0
    assert set(counts["items"]["required"]) == {"launcherConfigName", "launcherCount"}
    selector = _schema("LauncherPopulationPolicy")["properties"]["spec"]["properties"]["enhancedNodeSelector"]
    assert selector["properties"]["labelSelector"]["x-kubernetes-map-type"] == "atomic"
    msc = _schema("InferenceServerConfig")["properties"]["spec"]["properties"]["modelServerConfig"]["properties"]
    assert set(msc) == {"port", "options", "env_vars", "labels", "annotations"}


def test_pod_spec_is_the_full_core_v1_schema_with_containers_required() -> None:
    pod_spec = _schema("LauncherConfig")["properties"]["spec"]["properties"]["podTemplate"]["properties"]["spec"]
    assert "x-kubernetes-preserve-unknown-fields" not in pod_spec, "unknown template fields are pruned, as upstream"
    assert pod_spec["required"] == ["containers"]
    container = pod_spec["properties"]["containers"]["items"]
    assert {"name", "image", "imagePullPolicy", "env", "resources", "readinessProbe"} <= set(container["properties"])
    assert container["required"] == ["name"]
    assert pod_spec["properties"]["containers"]["x-kubernetes-list-map-keys"] == ["name"]
    metadata = _schema("LauncherConfig")["properties"]["spec"]["properties"]["podTemplate"]["properties"]["metadata"]
    assert set(metadata["properties"]) == {"labels", "annotations"}


def test_status_has_conditions_as_list_map() -> None:
    for kind in kinds.ALL:
        conditions = _schema(kind.kind)["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert set(conditions["items"]["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", [pytest.param(k.kind, id=k.kind) for k in kinds.ALL])
def test_schema_is_structural(kind: str) -> None:
    for path, node in _nodes(_schema(kind)):
        assert "$ref" not in node, path
        assert "title" not in node, path
        if "default" in node:  # only the scalar defaults the apiserver's own Pod schema has (e.g. protocol: TCP)
            assert kind == "LauncherConfig", path
            assert path.startswith(".spec.podTemplate.spec."), path
            assert isinstance(node["default"], str | bool | int), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path
        else:
            assert "type" in node, path
        assert node.get("type") != "null", path


def test_yaml_files_parse_back_to_the_documents() -> None:
    for document in manifests.documents():
        text = (manifests.package_dir() / manifests.file_name(document)).read_text()
        assert yaml.safe_load(text) == document
