"""Kubernetes quantities parse to exact values."""

from __future__ import annotations

import fractions

import pytest

from crds import quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param(4, fractions.Fraction(4), id="int"),
        pytest.param("4", fractions.Fraction(4), id="plain"),
        pytest.param("1Gi", fractions.Fraction(2**30), id="Gi"),
        pytest.param("1073741824", fractions.Fraction(2**30), id="bytes-equal-Gi"),
        pytest.param("100m", fractions.Fraction(1, 10), id="milli"),
        pytest.param("0.1", fractions.Fraction(1, 10), id="decimal"),
        pytest.param("1.5k", fractions.Fraction(1500), id="kilo"),
        pytest.param("2E", fractions.Fraction(2 * 10**18), id="exa"),
        pytest.param("1e3", fractions.Fraction(1000), id="exponent"),
        pytest.param("5E-1", fractions.Fraction(1, 2), id="negative-exponent"),
        pytest.param("-2", fractions.Fraction(-2), id="negative"),
        pytest.param(".5", fractions.Fraction(1, 2), id="leading-dot"),
        pytest.param("3n", fractions.Fraction(3, 10**9), id="nano"),
    ],
)
def test_parse(text: int | str, value: fractions.Fraction) -> None:
    assert quantity.parse(text) == value


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("1 Gi", id="space"),
        pytest.param("1GB", id="unknown-suffix"),
        pytest.param("Gi", id="no-number"),
        pytest.param("1.2.3", id="two-dots"),
        pytest.param("1e", id="bare-exponent"),
        pytest.param(True, id="bool"),
    ],
)
def test_parse_rejects(text: int | str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        quantity.parse(text)
