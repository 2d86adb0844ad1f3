"""docs/install.md's values table is the one scripts/chart-values-doc.py generates from the schema."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "chart-values-doc.py"


def test_values_table_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_value_has_a_row_with_a_description() -> None:
    doc = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    table = doc[doc.index("<!-- values-table:begin") : doc.index("<!-- values-table:end -->")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    keys = {row.split("`")[1] for row in rows}
    for key in (
        "certs.mode",
        "webhook.failurePolicy",
        "extender.ignorable",
        "launcherAuth.enabled",
        "policies.enabled",
    ):
        assert key in keys
    for row in rows:
        description = row.rstrip(" |").rsplit(" | ", 1)[-1]
        assert description.strip(), row
