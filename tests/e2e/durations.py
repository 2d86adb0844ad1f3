"""Turn an e2e run's JUnit XML into the results JSON behind docs/e2e.md's table.

    .venv/bin/pytest tests/e2e --junitxml=/tmp/e2e.xml
    .venv/bin/python tests/e2e/durations.py /tmp/e2e.xml > tests/e2e/results/durations.json

Each test's time is pytest's JUnit duration (setup + call + teardown, so
the first test also carries the session fixture's start: cluster, simnode
and ``helm install``).  The scenario ID comes from the test name
(``test_a5_…`` is A5, ``test_c11_…`` is C11).  The JSON records when the
run started and the commit that was HEAD then, so a figure in the docs can
be traced to its run.  ``--table`` prints the Markdown table
from such a JSON instead.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

_SCENARIO = re.compile(r"^test_([abc])(\d+)_")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()


def results(junit_path: str) -> dict[str, Any]:
    """The run's per-test outcome and duration, plus the run's identity."""
    root = ET.parse(junit_path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None, f"no testsuite in {junit_path}"
    tests = []
    for case in suite.iter("testcase"):
        name = case.get("name", "")
        match = _SCENARIO.match(name)
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
        tests.append(
            {
                "scenario": f"{match.group(1).upper()}{match.group(2)}" if match else "",
                "test": f"{case.get('classname', '').replace('.', '/')}.py::{name}",
                "seconds": round(float(case.get("time") or 0.0), 1),
                "outcome": outcome,
            }
        )
    started = suite.get("timestamp") or ""
    return {
        "run": {
            "started_utc": started,
            # HEAD when the run started; other work in the tree may have been uncommitted.
            "commit": _git("rev-list", "-1", "--abbrev-commit", f"--before={started}", "HEAD") if started else "",
            "tier_seconds": round(float(suite.get("time") or 0.0), 1),
            "machine": "2 CPU cores shared with other sessions",
        },
        "tests": tests,
    }


def table(data: dict[str, Any]) -> str:
    """The Markdown table of docs/e2e.md."""
    lines = ["| scenario | test | seconds | outcome |", "|---|---|---:|---|"]
    for test in data["tests"]:
        lines.append(f"| {test['scenario'] or '-'} | `{test['test']}` | {test['seconds']:.1f} | {test['outcome']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--table":
        with open(argv[1]) as handle:
            print(table(json.load(handle)))
        return 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(results(argv[0]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
