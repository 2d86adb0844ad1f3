"""The webhook's cost: Pod creates through the real apiserver with and without it, and its own service time.

Why: the webhook sits in the path of every FMA Pod create, with
``failurePolicy: Fail``.  It must add little to a create and answer fast
under load.  Both parts run side by side in one run:

1. **Pod-create latency through the apiserver.**  A fresh development
   cluster; ``fma-webhook`` runs as its own process (TLS, ISC lookups on)
   and is registered by URL with a caBundle from ``certs``, scoped by a
   namespaceSelector to namespace ``with-webhook``.  An open-loop generator
   creates the same launcher-mode Pod at ``--rate`` creates/s in total for
   ``--seconds``, alternating between ``with-webhook`` and
   ``without-webhook`` (not selected: the webhook is never called), so both
   series see the same apiserver load at the same time.  A third,
   diagnostic series (``webhook-no-patch``) is called but not patched.
   Then ``--sequential`` creates per series one at a time (alternating),
   which shows the added latency without any queueing.
   Latency is POST → 201 as seen by the client.  Pods carry a scheduler
   name nobody serves, so no scheduler work competes.
   Targets: added latency <= 10 % at p50, <= 20 % at p99.
2. **Service time of the webhook.**  AdmissionReviews (the same Pod) sent
   straight to the webhook over TLS (keep-alive) at ``--review-rate``/s
   for ``--review-seconds``, open loop.  Reported: the server-side service
   time from the webhook's own histogram (``fma_webhook_request_duration_
   seconds``, as bucket upper bounds) and the client-observed round trip.
   Target: server-side p99 <= 10 ms.

Host: everything (etcd, apiserver, controller manager, scheduler, webhook,
load generator) shares the machine's CPUs.  Prints a table and writes
``benchmarks/results/webhook.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import pathlib
import platform
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import run_record  # a sibling module: imported before the path below drops this directory

# This script is named like the package it measures: drop its own directory from the import path
# (Python puts it first when the script is run) so that ``import webhook`` finds the package.
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).resolve().parent]

import httpx  # noqa: E402

from certs import issuer, renewal, rotation_plan, store  # noqa: E402
from crds import keys, manifests  # noqa: E402
from devcluster import control_plane, waiting  # noqa: E402
from webhook import configuration  # noqa: E402

RESULT = pathlib.Path(__file__).parent / "results" / "webhook.json"
WITH, WITHOUT = "with-webhook", "without-webhook"
CALLED_UNCHANGED = "webhook-no-patch"
"""A diagnostic series: Pods in ``with-webhook`` with an empty ``server-patch`` annotation match the
configuration's conditions, so the apiserver calls the webhook, which answers without a patch.  It
separates the cost of the call itself from the cost of applying a patch (and of the apiserver's
re-invocation of its built-in mutating plugins after a change)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pod(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    if annotations is None:
        annotations = {keys.INFERENCE_SERVER_CONFIG_ANNOTATION: "llama"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "bench-", "annotations": annotations},
        "spec": {
            "schedulerName": "fma-bench-nobody",
            "containers": [
                {
                    "name": "inference-server",
                    "image": "vllm/vllm-openai:v0.10.0",
                    "command": ["vllm", "serve", "meta-llama/Llama-3.1-8B"],
                    "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "4", "memory": "32Gi"}},
                }
            ],
        },
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50_ms": round(_percentile(values, 0.50) * 1000, 2),
        "p90_ms": round(_percentile(values, 0.90) * 1000, 2),
        "p99_ms": round(_percentile(values, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2) if values else float("nan"),
    }


async def _open_loop(rate: float, seconds: float, send: Any) -> tuple[list[float], int]:
    """Start one ``send()`` every 1/rate s (never waiting for answers); return latencies and failures."""
    latencies: list[float] = []
    failures = 0
    total = int(rate * seconds)
    start = time.perf_counter()

    async def one() -> None:
        nonlocal failures
        began = time.perf_counter()
        try:
            ok = await send()
        except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError):
            ok = False
        if ok:
            latencies.append(time.perf_counter() - began)
        else:
            failures += 1

    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies, failures


async def _pod_creates(state: control_plane.ClusterState, rate: float, seconds: float) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(state.ca_cert))
    context.load_cert_chain(str(state.admin_cert), str(state.admin_key))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    series = [
        (WITHOUT, WITHOUT, _pod()),
        (WITH, WITH, _pod()),
        (CALLED_UNCHANGED, WITH, _pod({keys.SERVER_PATCH_ANNOTATION: ""})),
    ]
    latencies: dict[str, list[float]] = {name: [] for name, _, _ in series}
    failures: dict[str, int] = dict.fromkeys(latencies, 0)
    async with httpx.AsyncClient(base_url=state.server, verify=context, timeout=30, limits=limits) as client:
        turn = 0

        async def send(record: bool = True) -> bool:
            nonlocal turn
            name, namespace, body = series[turn % len(series)]
            turn += 1
            began = time.perf_counter()
            try:
                response = await client.post(f"/api/v1/namespaces/{namespace}/pods", json=body)
                ok = response.status_code == 201
            except httpx.HTTPError:
                ok = False
            if record and ok:
                latencies[name].append(time.perf_counter() - began)
            elif record:
                failures[name] += 1
            return ok

        await _open_loop(10, 2, lambda: send(record=False))  # warm connections and the apiserver's webhook client
        await _open_loop(rate, seconds, send)
    results: dict[str, Any] = {name: {**_summary(latencies[name]), "failures": failures[name]} for name in latencies}
    for q in ("p50", "p99"):
        base = results[WITHOUT][f"{q}_ms"]
        results[f"added_{q}_percent"] = round((results[WITH][f"{q}_ms"] - base) / base * 100, 1)
        results[f"added_{q}_ms"] = round(results[WITH][f"{q}_ms"] - base, 2)
        results[f"call_only_added_{q}_ms"] = round(results[CALLED_UNCHANGED][f"{q}_ms"] - base, 2)
    return results


def _sequential_creates(state: control_plane.ClusterState, count: int) -> dict[str, Any]:
    """One create at a time, alternating: the added latency without any queueing."""
    latencies: dict[str, list[float]] = {WITHOUT: [], WITH: []}
    with state.http_client(timeout=30) as api:
        for i in range(2 * count):
            namespace = (WITHOUT, WITH)[i % 2]
            began = time.perf_counter()
            api.post(f"/api/v1/namespaces/{namespace}/pods", json=_pod()).raise_for_status()
            latencies[namespace].append(time.perf_counter() - began)
    results: dict[str, Any] = {name: _summary(values) for name, values in latencies.items()}
    for q in ("p50", "p99"):
        base = results[WITHOUT][f"{q}_ms"]
        results[f"added_{q}_ms"] = round(results[WITH][f"{q}_ms"] - base, 2)
        results[f"added_{q}_percent"] = round((results[WITH][f"{q}_ms"] - base) / base * 100, 1)
    return results


def _histogram(text: str) -> list[tuple[float, float]]:
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("fma_webhook_request_duration_seconds_bucket{"):
            labels, value = line.rsplit(" ", 1)
            le = labels.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return sorted(buckets.items())


def _histogram_quantile(before: str, after: str, q: float) -> float:
    start = dict(_histogram(before))
    second = _histogram(after)
    cumulative = [(bound, count - start.get(bound, 0.0)) for bound, count in second]
    total = cumulative[-1][1] if cumulative else 0.0
    for bound, count in cumulative:
        if count >= q * total:
            return bound
    return float("inf")


class _RawConnection:
    """One keep-alive HTTP/1.1 connection over TLS with a minimal client: the load generator must stay
    cheaper than the server it measures (httpx costs several times the webhook's CPU per request)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, verify: ssl.SSLContext) -> _RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=verify, server_hostname="127.0.0.1")
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _reviews(port: int, cafile: pathlib.Path, rate: float, seconds: float) -> dict[str, Any]:
    verify = ssl.create_default_context(cafile=str(cafile))
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": "CREATE",
            "namespace": WITH,
            "object": _pod(),
        },
    }
    pool: asyncio.Queue[_RawConnection] = asyncio.Queue()
    for _ in range(16):
        pool.put_nowait(await _RawConnection.open(port, verify))

    async def send() -> bool:
        review["request"]["uid"] = str(uuid.uuid4())
        body = json.dumps(review).encode()
        connection = await pool.get()
        try:
            status, answer = await connection.request("POST", "/mutate", body)
        finally:
            pool.put_nowait(connection)
        return status == 200 and b'"allowed": true' in answer

    async def metrics_text() -> str:
        connection = await pool.get()
        try:
            return (await connection.request("GET", "/metrics"))[1].decode()
        finally:
            pool.put_nowait(connection)

    await _open_loop(50, 1, send)
    before = await metrics_text()
    latencies, failures = await _open_loop(rate, seconds, send)
    after = await metrics_text()
    while not pool.empty():
        pool.get_nowait().close()
    return {
        "client_round_trip": {**_summary(latencies), "failures": failures},
        "server_p50_ms_le": _histogram_quantile(before, after, 0.50) * 1000,
        "server_p99_ms_le": _histogram_quantile(before, after, 0.99) * 1000,
    }


def _setup(state: control_plane.ClusterState, cert_dir: pathlib.Path, port: int) -> None:
    with state.http_client() as api:
        for document in manifests.documents():
            api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=document)
        for namespace in (WITH, WITHOUT):
            api.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).raise_for_status()
            waiting.wait_for(
                lambda ns=namespace: api.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default").status_code == 200,
                timeout=30,
                what=f"the default ServiceAccount of {namespace}",
            )
        document = configuration.render(
            (cert_dir / store.BUNDLE).read_bytes(),
            url=f"https://127.0.0.1:{port}/mutate",
            namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": WITH}},
        )
        api.post(
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", json=document
        ).raise_for_status()

        def converted() -> bool:
            response = api.post(f"/api/v1/namespaces/{WITH}/pods", params={"dryRun": "All"}, json=_pod())
            annotations = response.json().get("metadata", {}).get("annotations", {})
            return response.status_code == 201 and keys.CONVERTED_ANNOTATION in annotations

        waiting.wait_for(converted, timeout=30, what="the apiserver to call the webhook")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="Pod creates/s, both series together (50)")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of the create series (30)")
    parser.add_argument("--sequential", type=int, default=150, help="one-at-a-time creates per series (150)")
    parser.add_argument("--review-rate", type=float, default=300.0, help="AdmissionReviews/s sent directly (300)")
    parser.add_argument("--review-seconds", type=float, default=10.0, help="duration of the direct series (10)")
    args = parser.parse_args()
    run = run_record.start()
    load_before = os.getloadavg()[0]
    work = pathlib.Path(tempfile.mkdtemp(prefix="fma-bench-webhook-"))
    cert_dir = work / "certs"
    policy = rotation_plan.Policy(identity=issuer.ServingIdentity("fma-webhook", ip_addresses=("127.0.0.1",)))
    renewal.run(store.FileStore(cert_dir), policy, datetime.datetime.now(datetime.UTC))
    state = control_plane.up(control_plane.ClusterOptions(state_dir=work / "cluster", apiserver_port=None))
    port = _free_port()
    webhook_process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webhook",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tls-cert-file",
            str(cert_dir / store.TLS_CERT),
            "--tls-key-file",
            str(cert_dir / store.TLS_KEY),
            "--kubeconfig",
            str(state.kubeconfig),
            "--scheduler-name",
            "",
            "--log-level",
            "warning",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        _setup(state, cert_dir, port)
        creates = asyncio.run(_pod_creates(state, args.rate, args.seconds))
        sequential = _sequential_creates(state, args.sequential)
        reviews = asyncio.run(_reviews(port, cert_dir / store.BUNDLE, args.review_rate, args.review_seconds))
    finally:
        webhook_process.send_signal(signal.SIGTERM)
        webhook_process.wait(30)
        control_plane.down(state.state_dir, grace_seconds=5.0)
    result = {
        "benchmark": "webhook",
        "run": run_record.finish(run),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "load_average_1m_before": load_before,
            "load_average_1m_after": os.getloadavg()[0],
        },
        "parameters": vars(args),
        "pod_creates": creates,
        "sequential_pod_creates": sequential,
        "direct_reviews": reviews,
        "targets": {"added_p50_percent_max": 10, "added_p99_percent_max": 20, "server_p99_ms_max": 10},
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    w, wo = creates[WITH], creates[WITHOUT]
    print(f"Pod creates through the apiserver, {args.rate:g}/s alternating between the series for {args.seconds:g} s")
    print(f"{'series':<18}{'count':>7}{'fail':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for name, row in ((WITHOUT, wo), (WITH, w), (CALLED_UNCHANGED, creates[CALLED_UNCHANGED])):
        print(f"{name:<18}{row['count']:>7}{row['failures']:>6}{row['p50_ms']:>9}{row['p90_ms']:>9}{row['p99_ms']:>9}")
    print(
        f"added by the webhook: p50 {creates['added_p50_ms']:+} ms ({creates['added_p50_percent']:+}%), "
        f"p99 {creates['added_p99_ms']:+} ms ({creates['added_p99_percent']:+}%); "
        f"the call alone (no patch): p50 {creates['call_only_added_p50_ms']:+} ms, "
        f"p99 {creates['call_only_added_p99_ms']:+} ms"
    )
    print(
        f"one create at a time ({args.sequential} per series): p50 {sequential[WITHOUT]['p50_ms']} ms without, "
        f"{sequential[WITH]['p50_ms']} ms with the webhook ({sequential['added_p50_ms']:+} ms, "
        f"{sequential['added_p50_percent']:+}%); "
        f"p99 {sequential['added_p99_ms']:+} ms ({sequential['added_p99_percent']:+}%)"
    )
    client = reviews["client_round_trip"]
    print(f"\nAdmissionReviews straight to the webhook, {args.review_rate:g}/s for {args.review_seconds:g} s over TLS")
    print(f"server service time: p50 <= {reviews['server_p50_ms_le']:g} ms, p99 <= {reviews['server_p99_ms_le']:g} ms")
    print(
        f"client round trip:   p50 {client['p50_ms']} ms, p99 {client['p99_ms']} ms "
        f"({client['count']} ok, {client['failures']} failed)"
    )
    print(f"\nwrote {RESULT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
