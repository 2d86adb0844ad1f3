"""Ports in annotations are plain decimal numbers in 1..65535."""

from __future__ import annotations

import pytest

from crds import errors, keys, ports


@pytest.mark.parametrize(("value", "port"), [pytest.param("1", 1, id="min"), pytest.param("65535", 65535, id="max")])
def test_parse_valid(value: str, port: int) -> None:
    assert ports.parse_port(keys.SERVER_PORT_ANNOTATION, value) == port


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("0", id="zero"),
        pytest.param("65536", id="too-big"),
        pytest.param("http", id="named"),
        pytest.param("+80", id="signed"),
        pytest.param(" 80", id="space"),
        pytest.param("", id="empty"),
        pytest.param("٨٠", id="non-ascii-digits"),
    ],
)
def test_parse_invalid(value: str) -> None:
    with pytest.raises(errors.InvalidAnnotation) as caught:
        ports.parse_port(keys.SERVER_PORT_ANNOTATION, value)
    assert caught.value.key == keys.SERVER_PORT_ANNOTATION


def test_admin_port_defaults_to_8081() -> None:
    assert ports.admin_port(None) == 8081
    assert ports.admin_port({keys.ADMIN_PORT_ANNOTATION: "9000"}) == 9000


def test_format_round_trip_and_range() -> None:
    assert ports.parse_port("k", ports.format_port(8005)) == 8005
    with pytest.raises(ValueError, match="outside"):
        ports.format_port(0)
