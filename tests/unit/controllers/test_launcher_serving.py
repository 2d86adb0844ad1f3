"""When the bound path may call a launcher: Ready, or it said it serves in its container's first run (a table)."""

from __future__ import annotations

from typing import Any

import pytest

from controllers import launcher_bound
from crds import keys, names

INVENTORY = '{"v":1,"revision":0,"instances":[]}'


def _launcher(
    *,
    ip: str | None = "127.0.20.1",
    ready: bool = False,
    published: bool = False,
    restarts: int = 0,
    running: bool = True,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [
            {
                "name": names.INFERENCE_SERVER_CONTAINER,
                "ready": ready,
                "restartCount": restarts,
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}} if running else {"waiting": {}},
            }
        ],
    }
    if ip is not None:
        status["podIP"] = ip
    notes = {keys.INSTANCES_ANNOTATION: INVENTORY} if published else {}
    return {"metadata": {"name": "launcher-a", "annotations": notes}, "status": status}


@pytest.mark.parametrize(
    ("launcher", "serving"),
    [
        pytest.param(_launcher(ready=True), True, id="ready"),
        pytest.param(_launcher(ready=True, published=True), True, id="ready-and-published"),
        pytest.param(_launcher(), False, id="starting-not-published-waits-for-ready"),
        pytest.param(_launcher(published=True), True, id="published-before-ready-first-run"),
        pytest.param(_launcher(published=True, restarts=1), False, id="published-by-a-previous-run"),
        pytest.param(_launcher(published=True, running=False), False, id="published-but-container-not-running"),
        pytest.param(_launcher(ip=None, ready=True, published=True), False, id="no-ip"),
    ],
)
def test_launcher_serving(launcher: dict[str, Any], serving: bool) -> None:
    assert launcher_bound.launcher_serving(launcher) is serving
