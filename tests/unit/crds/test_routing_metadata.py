"""Routing metadata: the committed-record annotation and the key and value rules."""

from __future__ import annotations

import pytest

from crds import errors, routing_metadata


def test_format_omits_empty_members() -> None:
    assert routing_metadata.RoutingMetadata().format() == "{}"
    assert routing_metadata.RoutingMetadata(labels={"a": "1"}).format() == '{"labels":{"a":"1"}}'
    both = routing_metadata.RoutingMetadata(labels={"a": "1"}, annotations={"b": "x y"})
    assert both.format() == '{"annotations":{"b":"x y"},"labels":{"a":"1"}}'


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(routing_metadata.RoutingMetadata(), id="empty"),
        pytest.param(routing_metadata.RoutingMetadata(labels={"pool": "p"}), id="labels"),
        pytest.param(routing_metadata.RoutingMetadata(annotations={"example.com/a": "ü"}), id="annotations"),
    ],
)
def test_round_trip(metadata: routing_metadata.RoutingMetadata) -> None:
    assert routing_metadata.parse(metadata.format()) == metadata


def test_absent_means_none() -> None:
    assert routing_metadata.parse(None) == routing_metadata.RoutingMetadata()


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("nope", id="not-json"),
        pytest.param('{"labels":{"a":1}}', id="non-string-value"),
        pytest.param('{"extra":{}}', id="unknown-member"),
    ],
)
def test_parse_rejects_malformed(value: str) -> None:
    with pytest.raises(errors.InvalidAnnotation, match="isc-routing-metadata"):
        routing_metadata.parse(value)


@pytest.mark.parametrize(
    ("labels", "annotations"),
    [
        pytest.param({"app": "vllm"}, None, id="plain-label"),
        pytest.param({"example.com/pool": ""}, None, id="prefixed-label-empty-value"),
        pytest.param({"inference.networking.x-k8s.io/pool": "p"}, None, id="x-k8s-io-is-not-reserved"),
        pytest.param(None, {"Example.com/Note": "any value at all: yes"}, id="annotation-any-value"),
    ],
)
def test_usable_metadata(labels: dict[str, str] | None, annotations: dict[str, str] | None) -> None:
    assert routing_metadata.problems(labels, annotations) == []


@pytest.mark.parametrize(
    ("labels", "annotations", "fragment"),
    [
        pytest.param({"dual-pods.llm-d.ai/x": "v"}, None, "reserved prefix", id="fma-prefix-label"),
        pytest.param({"kubernetes.io/x": "v"}, None, "reserved prefix", id="kubernetes-io-label"),
        pytest.param(None, {"k8s.io/x": "v"}, "reserved prefix", id="k8s-io-annotation"),
        pytest.param({"bad key": "v"}, None, "name part", id="space-in-key"),
        pytest.param({"-a": "v"}, None, "name part", id="leading-dash"),
        pytest.param({"a" * 64: "v"}, None, "at most 63", id="name-too-long"),
        pytest.param({"UPPER.com/a": "v"}, None, "DNS subdomain", id="uppercase-prefix"),
        pytest.param({"/a": "v"}, None, "must not be empty", id="empty-prefix"),
        pytest.param({"a/b/c": "v"}, None, "at most one", id="two-slashes"),
        pytest.param({"a": "bad value"}, None, "value", id="label-value-space"),
        pytest.param({"a": "x" * 64}, None, "at most 63", id="label-value-too-long"),
        pytest.param({"a": "-x"}, None, "value", id="label-value-leading-dash"),
    ],
)
def test_unusable_metadata(labels: dict[str, str] | None, annotations: dict[str, str] | None, fragment: str) -> None:
    found = routing_metadata.problems(labels, annotations)
    assert found
    assert any(fragment in message for message in found), found
