"""The notifier sidecar (launcher.pod_notifier): what it writes, when, and how it fails.

The launcher is an ``httpx.MockTransport`` answering its list view and the
Pod is our own ``PodClient`` seam holding one Pod object; the real apiserver
and the real launcher are exercised by the cluster test
(tests/integration/test_upstream_interop.py).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

import certifi
import httpx
import pytest

from launcher import errors, inventory, pod_notifier, schemas
from launcher import settings as settings_mod

POD = "/api/v1/namespaces/ns/pods/launcher-1"
SCRIPT = pathlib.Path(__file__).resolve().parents[3] / "images" / "launcher" / "app" / "launcher_pod_notifier.py"


def _state(instance_id: str, status: str, revision: int) -> dict[str, Any]:
    return {
        "status": status,
        "instance_id": instance_id,
        "revision": revision,
        "options": "--model m --port 8005",
        "gpu_uuids": ["GPU-1"],
        "annotations": {"isc-name": "isc-a", "inference-port": "8005"},
    }


def _list_view(revision: int, *states: dict[str, Any]) -> dict[str, Any]:
    running = sum(1 for s in states if s["status"] == "running")
    return {
        "revision": revision,
        "total_instances": len(states),
        "running_instances": running,
        "instances": list(states),
    }


def _expected(view: dict[str, Any]) -> dict[str, str]:
    parsed = schemas.ListView.model_validate(view)
    return inventory.pod_annotations(inventory.Snapshot(revision=parsed.revision, instances=parsed.instances))


class FakePod:
    """One Pod object with a resourceVersion that rises on every write; patches honour the precondition."""

    def __init__(self, annotations: dict[str, str] | None = None) -> None:
        self.annotations = dict(annotations or {})
        self.resource_version = 1
        self.patches: list[tuple[dict[str, str], str | None]] = []
        self.fail_get: errors.ApiServerError | None = None
        self.before_patch: list[dict[str, str]] = []

    def get(self, path: str) -> bytes:
        assert path == POD
        if self.fail_get is not None:
            raise self.fail_get
        meta = {"name": "launcher-1", "resourceVersion": str(self.resource_version), "annotations": self.annotations}
        return json.dumps({"metadata": meta, "spec": {}}).encode()

    def patch_annotations(self, path: str, annotations: dict[str, str], resource_version: str | None = None) -> None:
        assert path == POD
        if self.before_patch:  # someone else (the in-process publisher) writes between our read and our patch
            self.annotations.update(self.before_patch.pop(0))
            self.resource_version += 1
        self.patches.append((dict(annotations), resource_version))
        if resource_version is not None and resource_version != str(self.resource_version):
            raise errors.ApiServerError("conflict", status=409)
        self.annotations.update(annotations)
        self.resource_version += 1


def _launcher(answers: list[httpx.Response | Exception]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v2/vllm/instances"
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(base_url="http://127.0.0.1:8001", transport=httpx.MockTransport(handler))


def _notifier(pod: FakePod, answers: list[httpx.Response | Exception]) -> pod_notifier.Notifier:
    return pod_notifier.Notifier(pod, _launcher(answers), POD, poll_seconds=2.0, backoff_seconds=5.0)


def test_decide_ignores_other_annotations_and_writes_only_on_a_difference() -> None:
    wanted = {"a": "1", "b": "2"}
    assert pod_notifier.decide({"a": "1", "b": "2", "other": "x"}, wanted) is None
    assert pod_notifier.decide({"a": "1"}, wanted) == wanted
    assert pod_notifier.decide({"a": "1", "b": "3"}, wanted) == wanted


def test_first_poll_writes_both_annotations_on_the_resource_version_it_read_then_stays_quiet() -> None:
    view = _list_view(1, _state("I-a", "running", 1))
    pod = FakePod({"unrelated": "kept"})
    notifier = _notifier(pod, [httpx.Response(200, json=view)])
    assert notifier.poll() == 2.0
    assert pod.patches == [(_expected(view), "1")]
    assert pod.annotations == {"unrelated": "kept", **_expected(view)}
    assert notifier.poll() == 2.0
    assert len(pod.patches) == 1, "nothing changed, so nothing is written"


def test_a_crash_seen_in_the_list_is_written_on_the_next_poll() -> None:
    running = _list_view(1, _state("I-a", "running", 1))
    stopped = _list_view(2, {**_state("I-a", "stopped", 2), "exit_code": -9})
    pod = FakePod()
    notifier = _notifier(pod, [httpx.Response(200, json=running), httpx.Response(200, json=stopped)])
    notifier.poll()
    notifier.poll()
    assert pod.annotations == _expected(stopped)
    assert pod.annotations != _expected(running)


def test_a_write_that_lands_between_read_and_patch_is_not_overwritten() -> None:
    stale_view = _list_view(1, _state("I-a", "running", 1))
    newer = _expected(_list_view(2, _state("I-a", "stopped", 2)))
    pod = FakePod()
    pod.before_patch.append(newer)  # the in-process publisher writes the crash first
    notifier = _notifier(pod, [httpx.Response(200, json=stale_view)])
    assert notifier.poll() == 2.0, "a conflict is looked at again at the normal interval"
    assert pod.annotations == newer
    assert notifier.patches == 0


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(httpx.ConnectError("refused"), id="launcher-not-listening"),
        pytest.param(httpx.ReadTimeout("slow"), id="launcher-timeout"),
        pytest.param(httpx.Response(500, text="boom"), id="launcher-500"),
        pytest.param(httpx.Response(200, json={"revision": "x"}), id="malformed-list"),
    ],
)
def test_launcher_failures_back_off_without_writing(answer: httpx.Response | Exception) -> None:
    pod = FakePod()
    assert _notifier(pod, [answer]).poll() == 5.0
    assert pod.patches == []


def test_an_apiserver_failure_backs_off() -> None:
    pod = FakePod()
    pod.fail_get = errors.ApiServerError("GET answered 403", status=403)
    assert _notifier(pod, [httpx.Response(200, json=_list_view(0))]).poll() == 5.0
    assert pod.patches == []


def test_run_stops_promptly_when_told() -> None:
    pod = FakePod()
    notifier = pod_notifier.Notifier(
        pod, _launcher([httpx.Response(200, json=_list_view(0))]), POD, poll_seconds=60.0, backoff_seconds=60.0
    )
    stop = threading.Event()
    thread = threading.Thread(target=notifier.run, args=(stop,))
    thread.start()
    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    assert len(pod.patches) <= 1


def test_run_exits_1_without_in_cluster_credentials(tmp_path: pathlib.Path) -> None:
    settings = settings_mod.NotifierSettings(pod_name="p", namespace="ns", service_account_dir=tmp_path)
    assert pod_notifier.run(settings, threading.Event()) == 1


def test_run_exits_1_when_the_pod_cannot_be_identified(tmp_path: pathlib.Path) -> None:
    (tmp_path / "token").write_text("not-a-jwt")
    shutil.copy(certifi.where(), tmp_path / "ca.crt")
    settings = settings_mod.NotifierSettings(
        kubernetes_service_host="10.0.0.1", service_account_dir=tmp_path, hostname="h"
    )
    assert pod_notifier.run(settings, threading.Event()) == 1, "no NAMESPACE, no claim, no namespace file"


def test_upstreams_sidecar_command_runs_our_notifier_even_beside_a_launcher_py(tmp_path: pathlib.Path) -> None:
    """``python3 /app/launcher_pod_notifier.py``: the file imports our package, not a ``launcher.py`` beside it."""
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(SCRIPT, app / "launcher_pod_notifier.py")
    (app / "launcher.py").write_text("raise SystemExit('the wrong launcher was imported')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBERNETES_SERVICE_HOST", "POD_NAME", "NAMESPACE")}
    env["PYTHONPATH"] = str(app)
    done = subprocess.run(
        [sys.executable, str(app / "launcher_pod_notifier.py")],
        env={**env, "LAUNCHER_BASE_URL": "http://127.0.0.1:8001"},
        capture_output=True,
        timeout=60,
        check=False,
        cwd=app,
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 1, output
    assert "no in-cluster credentials" in output
    assert "wrong launcher" not in output
