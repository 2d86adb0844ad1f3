"""rendering: tables fit 100 columns and keep the key facts; JSON/YAML carry every field."""

from __future__ import annotations

import json

import pytest
import yaml

from fmactl import explanation, rendering, status_report

from . import objects as o

I1, I2 = "I" + "1" * 43 + "i", "I" + "2" * 43 + "i"
LONG = "requester-with-a-very-long-deployment-name-7d9f8c6b5-abcde"


def _report() -> status_report.StatusReport:
    bound = o.requester(LONG, gpus="GPU-a", ready=True, dual="lc-1", instance=I1)
    lc1 = o.launcher(
        "lc-1-with-a-long-name-xyz12",
        bound_to=bound,
        instance_id=I1,
        sleeping="false",
        instances=[o.instance(I1, "GPU-a"), o.instance(I2, "GPU-b", isc="isc2")],
    )
    lc2 = o.launcher("lc-2", instances=[o.instance(I2, "GPU-b", isc="isc2")], dpc_write_seconds_ago=195)
    return status_report.build(o.snap([bound, lc1, lc2], [o.event(bound, "ActuatedCold", "cold actuation in 3.00s")]))


def test_status_table_fits_100_columns_and_names_the_holders() -> None:
    text = rendering.status_text(_report())
    assert max(len(line) for line in text.splitlines()) <= 100
    rows = [line.split() for line in text.splitlines()]
    bound = next(r for r in rows if r[:3] == ["n1", "0", "bound"])
    assert bound[-2:] == ["cold", "Ready"]
    assert bound[3].startswith("requester-with-a")
    sleeping = next(r for r in rows if r[:3] == ["n1", "1", "sleeping"] and r[4] == "lc-2")
    assert sleeping[-2:] == ["slept", "3m15s"]
    assert next(r for r in rows if r[:2] == ["n2", "0"])[:3] == ["n2", "0", "free"]
    assert any(r[:2] == ["isc1", "tiny"] and r[2:] == ["1", "0", "0", "0", "1"] for r in rows)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_status_serialises_every_field(fmt: str) -> None:
    report = _report()
    text = rendering.serialise(report, fmt)  # type: ignore[arg-type]
    data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    assert status_report.StatusReport.model_validate(data) == report


def test_explain_text_fits_and_numbers_the_stages() -> None:
    problem = "the engine stopped before it ever answered (exit code 2): " + "x" * 150
    pod = o.requester("r3-c", gpus="GPU-b", status=json.dumps({"Errors": [problem]}))
    report = explanation.build(o.snap([pod], [o.event(pod, "ActuationFailed", problem, kind="Warning")]), pod)
    text = rendering.explain_text(report)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert [line.split()[1] for line in lines if line[:2] in {f"{n}." for n in range(1, 8)}] == [
        "admission",
        "scheduling",
        "gpus",
        "binding",
        "actuation",
        "readiness-relay",
        "current",
    ]
    assert "Why:" in lines
    assert "exit code 2" in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (5.9, "5s"), (195, "3m15s"), (7500, "2h5m"), (270000, "3d3h")],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert rendering.duration(seconds) == text


def test_table_clips_the_widest_column_first() -> None:
    lines = rendering.table(["A", "B"], [["x" * 80, "y" * 40]], width=60)
    assert all(len(line) <= 60 for line in lines)
    assert lines[1].endswith("y" * 20) or "…" in lines[1]


def test_explain_text_of_a_ready_requester_keeps_keys_whole_and_has_no_empty_sections() -> None:
    pod = o.requester("r1-a", gpus="GPU-a", ready=True, dual="lc-1", instance=I1)
    lc = o.launcher("lc-1", bound_to=pod, instance_id=I1, sleeping="false")
    text = rendering.explain_text(explanation.build(o.snap([pod, lc], [o.event(pod, "ActuatedHot", "hot in 1s")]), pod))
    assert "(dual-pods.llm-d.ai/converted=v1)" in text
    assert "\n\n\n" not in text
    assert "Why:" not in text
    assert "Waiting for" not in text
