"""The running Service proxy: watches Services and Pods, listens on ClusterIPs, forwards TCP.

It plays kube-proxy (and, for names, cluster DNS) in the development
cluster.  Two watch threads keep a ``Snapshot`` of the Services and Pods
current; whenever it changes the asyncio loop is woken, opens a listener on
every ``(ClusterIP, port)`` of ``routes.listeners``, closes those whose
Service port went away, and rewrites the shared hosts file.  Each accepted
connection picks its backend at that moment (``routes.backends``, rotated
so that several ready Pods share the load), trying the next one when a
connect fails, and then copies bytes both ways until either side closes.
With no backend the client's connection is closed at once, as kube-proxy
rejects connections to a Service without endpoints.

The hosts file is bind-mounted read-only at ``/etc/hosts`` in every simnode
Pod, so it is rewritten in place (never replaced: a bind mount keeps the
inode it was made with): the new text first, then truncated to its length.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import kube
from devcluster.service_proxy import routes
from kube import resources

__all__ = ["Proxy", "Snapshot", "write_in_place"]

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 3.0
_RETRY_S = 2.0
_CHUNK = 65536


@dataclasses.dataclass
class Snapshot:
    """The latest Services and Pods, keyed by UID; guarded by ``lock``."""

    services: dict[str, routes.Service] = dataclasses.field(default_factory=dict)
    pods: dict[str, routes.Backend] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def copy(self) -> tuple[list[routes.Service], list[routes.Backend]]:
        """Consistent lists of both."""
        with self.lock:
            return list(self.services.values()), list(self.pods.values())


def write_in_place(path: pathlib.Path, text: str) -> None:
    """Rewrite ``path`` keeping its inode (readers through a bind mount see the change)."""
    data = text.encode()
    path.touch(exist_ok=True)
    with path.open("r+b") as handle:
        if handle.read() == data:
            return
        handle.seek(0)
        handle.write(data)
        handle.truncate(len(data))


class Proxy:
    """One dev cluster's Service routing (see the module docstring)."""

    def __init__(
        self,
        api: kube.Client,
        *,
        apiserver: routes.Address,
        hosts_file: pathlib.Path,
        hosts_base: str,
    ) -> None:
        self._api = api
        self._apiserver = apiserver
        self._hosts_file = hosts_file
        self._hosts_base = hosts_base
        self._snapshot = Snapshot()
        self._synced = {"services": threading.Event(), "pods": threading.Event()}
        self._servers: dict[routes.Address, asyncio.Server] = {}
        self._serving: dict[routes.Address, routes.Listener] = {}
        self._turn: dict[routes.Address, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._stop = threading.Event()

    # -- watches (threads) -------------------------------------------------------------

    def _watch(
        self, kind: str, resource: resources.Resource, parse: Callable[[dict[str, Any]], Any], store: dict[str, Any]
    ) -> None:
        while not self._stop.is_set():
            try:
                listing = self._api.request("GET", resource.path())
                with self._snapshot.lock:
                    store.clear()
                    for item in listing.get("items") or []:
                        parsed = parse(item)
                        if parsed is not None:
                            store[str(item["metadata"]["uid"])] = parsed
                self._synced[kind].set()
                self._wake()
                version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
                for event, obj in self._api.watch(resource, resource_version=version, timeout_seconds=240):
                    if event == "BOOKMARK":
                        continue
                    uid = str((obj.get("metadata") or {}).get("uid") or "")
                    parsed = None if event == "DELETED" else parse(obj)
                    with self._snapshot.lock:
                        if parsed is None:
                            store.pop(uid, None)
                        else:
                            store[uid] = parsed
                    self._wake()
                    if self._stop.is_set():
                        return
            except kube.errors.KubeError as exc:
                if self._stop.is_set():
                    return
                logger.warning("watch interrupted; listing again", extra={"kind": kind, "error": str(exc)})
                self._stop.wait(_RETRY_S)
            except Exception:  # supervising code: a dead watch would freeze the routes
                logger.exception("watch failed; listing again", extra={"kind": kind})
                self._stop.wait(_RETRY_S)

    def _wake(self) -> None:
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(changed.set)

    # -- listeners (asyncio) ---------------------------------------------------------------

    async def _sync(self) -> bool:
        """Match the listeners and hosts file to the snapshot; False while some listener failed."""
        services, _ = self._snapshot.copy()
        wanted = routes.listeners(services)
        for address in list(self._servers):
            if address not in wanted:
                server = self._servers.pop(address)
                self._serving.pop(address, None)
                server.close()
                logger.info("stopped listening", extra={"address": f"{address[0]}:{address[1]}"})
        complete = True
        for address, listener in wanted.items():
            self._serving[address] = listener
            if address in self._servers:
                continue
            try:
                self._servers[address] = await asyncio.start_server(
                    self._connection(address), host=address[0], port=address[1], reuse_address=True
                )
            except OSError as exc:
                complete = False
                where = f"{address[0]}:{address[1]}"
                service = "/".join(listener.service)
                logger.warning(
                    "cannot listen; retrying", extra={"address": where, "service": service, "error": str(exc)}
                )
                continue
            logger.info(
                "listening", extra={"address": f"{address[0]}:{address[1]}", "service": "/".join(listener.service)}
            )
        write_in_place(self._hosts_file, routes.hosts_text(self._hosts_base, services))
        return complete

    def _pick(self, address: routes.Address) -> list[routes.Address]:
        listener = self._serving.get(address)
        if listener is None:
            return []
        services, pods = self._snapshot.copy()
        service = next((s for s in services if s.key == listener.service), None)
        if service is None:
            return []
        found = routes.backends(service, listener.port, pods, apiserver=self._apiserver)
        if not found:
            return []
        turn = self._turn.get(address, 0) % len(found)
        self._turn[address] = turn + 1
        return found[turn:] + found[:turn]

    def _connection(self, address: routes.Address) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self._forward(address, reader, writer)
            finally:
                writer.close()
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await writer.wait_closed()

        return handle

    async def _forward(
        self, address: routes.Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for backend in self._pick(address):
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(backend[0], backend[1]), _CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                continue
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
                with contextlib.suppress(OSError):
                    await up_writer.wait_closed()
            return
        logger.info("no ready backend; connection closed", extra={"address": f"{address[0]}:{address[1]}"})

    async def _run(self, stopped: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._changed.set()
        while not stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), _RETRY_S)
            self._changed.clear()
            if all(e.is_set() for e in self._synced.values()):
                await self._sync()
        for server in self._servers.values():
            server.close()

    def run(self, stopped: threading.Event) -> None:
        """Watch and serve until ``stopped`` is set."""
        threads = [
            threading.Thread(
                target=self._watch,
                args=("services", resources.SERVICES, routes.parse_service, self._snapshot.services),
                name="watch-services",
                daemon=True,
            ),
            threading.Thread(
                target=self._watch,
                args=("pods", resources.PODS, routes.parse_pod, self._snapshot.pods),
                name="watch-pods",
                daemon=True,
            ),
        ]
        for thread in threads:
            thread.start()
        try:
            asyncio.run(self._run(stopped))
        finally:
            self._stop.set()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close ``sink`` so the other side sees the end too."""
    try:
        while True:
            chunk = await source.read(_CHUNK)
            if not chunk:
                break
            sink.write(chunk)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        sink.close()
