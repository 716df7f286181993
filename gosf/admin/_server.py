"""The server side of the official Socket.IO Admin UI (npm ``@socket.io/admin-ui``),
on namespace ``/admin``: what the reference server (its ``lib/index.ts``) sends
and the actions it takes, built on the observer seam and the cluster-wide
socket queries.

How it works:

* An :class:`Admin` is an :class:`gosf.Observer` of the server: it hears of
  sockets connecting and leaving, rooms joined and left, packets in and out,
  in every namespace, in its own process. What it hears it turns into the
  UI's events (``socket_connected``, ``room_joined``, ``event_received``...)
  and broadcasts them to ``/admin``, which reaches the UI pages connected to
  any process of the cluster: each process reports its own sockets.
* Observer methods are called synchronously on the hot path, so they only
  put a small job in a bounded queue; one task of the admin (a
  :attr:`gosf.SocketIOServer.services` entry, run while the server runs)
  carries the jobs out in order. A full queue drops the job and counts it
  (:attr:`Admin.dropped`): a slow broker never holds a client up.
* The UI's actions (``emit``, ``join``, ``leave``, ``_disconnect``, each with
  an optional room filter; the UI passes a socket's id as the filter to act
  on one socket) go through :meth:`gosf.SocketIOServer.emit`,
  :meth:`~gosf.SocketIOServer.sockets_join`,
  :meth:`~gosf.SocketIOServer.sockets_leave` and
  :meth:`~gosf.SocketIOServer.disconnect_sockets`: they reach every process.
* Every ``stats_interval`` seconds each process broadcasts its
  ``server_stats``: its Engine.IO clients, sockets per namespace, memory,
  uptime and the events of the last seconds counted per second.

What differs from the reference: packets and bytes are counted per
Socket.IO packet (as the observer sees them), not per Engine.IO packet; a
socket's transport is the one it connected with (no ``socket_updated`` on
an upgrade); a broadcast is counted, not reported as ``event_sent`` per
socket (Node's ``onAnyOutgoing`` does not see broadcasts either).
"""

from __future__ import annotations

import logging
import os
import socket as _socket_module
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup

from .._errors import ConnectionRefused
from .._socketio.observer import Observer
from .._socketio.queries import describe
from .._socketio.server import SocketIOServer
from .._socketio.socket import DisconnectReason, Socket
from ..brokers import SocketInfo
from ..protocol.session import CloseReason
from ..protocol.socketio import Packet, PacketType
from ._auth import BasicAuth, Sessions
from ._stats import IN, OUT, EventCounts, memory_rss

__all__ = ("Admin", "Mode")

log = logging.getLogger("gosf.admin")

Mode = Literal["development", "production"]
"""``development``: every socket, room and event is reported to the UI;
``production``: only the aggregated counts of ``server_stats``."""

QUEUE_SIZE = 1024
"""The jobs (events for the UI) waiting for the admin's task at most."""

PASSWORD_CHECKS = 2
"""Password checks (bcrypt, slow on purpose) running at once; more logins wait:
a flood of them takes two threads, not the whole CPU."""

_ACTIONS = ("EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")
_EVENTS = (PacketType.EVENT, PacketType.BINARY_EVENT)

Job = Callable[[], Awaitable[object]]


def _now() -> str:
    """The time as JavaScript's ``Date`` travels in JSON."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _serialize(info: SocketInfo) -> dict[str, Any]:
    """A socket as the UI reads it (the reference's ``serialize``)."""
    data = dict(info.data)
    admin = data.pop("_admin", None)
    admin = admin if isinstance(admin, dict) else {}
    headers = dict(info.headers)
    address = (
        headers.get("cf-connecting-ip")
        or headers.get("x-forwarded-for")
        or (info.address[0] if info.address is not None else None)
    )
    issued = admin.get("issued")
    return {
        "id": info.sid,
        "clientId": admin.get("clientId"),
        "transport": admin.get("transport"),
        "nsp": info.namespace,
        "data": data,
        "handshake": {
            "address": address,
            "headers": headers,
            "query": dict(info.query),
            "issued": issued,
            "secure": admin.get("secure"),
            "time": admin.get("time"),
            "url": admin.get("url"),
            "xdomain": "origin" in headers,
        },
        "rooms": sorted(info.rooms),
    }


class Admin(Observer):
    """The Admin UI's server on ``server``: :meth:`install` it (or use
    :func:`gosf.admin.instrument`, which does).

    ``auth`` is a :class:`BasicAuth`, or ``False`` spelled out to let anyone
    in (never a default). ``read_only`` leaves the UI's actions out. ``mode``
    says how much it reports (:data:`Mode`). ``server_id`` names this process
    in the UI (the host name and pid by default).

    Raises:
        TypeError: ``auth`` is neither a :class:`BasicAuth` nor ``False``.
        ValueError: ``namespace`` does not start with ``/``, ``mode`` is unknown
            or ``stats_interval`` is not positive.
    """

    def __init__(
        self,
        server: SocketIOServer,
        *,
        auth: BasicAuth | Literal[False],
        read_only: bool = False,
        mode: Mode = "development",
        namespace: str = "/admin",
        server_id: str | None = None,
        stats_interval: float = 2.0,
        sessions: Sessions | None = None,
    ) -> None:
        if auth is not False and not isinstance(auth, BasicAuth):
            raise TypeError("auth must be a gosf.admin.BasicAuth, or False to let anyone in")
        if not namespace.startswith("/"):
            raise ValueError(f"a namespace starts with '/': {namespace!r}")
        if mode not in ("development", "production"):
            raise ValueError(f"mode must be 'development' or 'production', not {mode!r}")
        if stats_interval <= 0:
            raise ValueError("stats_interval must be positive")
        self.server = server
        self.auth = auth
        self.read_only = read_only
        self.mode: Mode = mode
        self.namespace = namespace
        self.stats_interval = stats_interval
        self.sessions = sessions if sessions is not None else Sessions()
        """The session ids issued to logged-in pages (bounded, expiring)."""
        hostname = _socket_module.gethostname()
        self.server_id = server_id or f"{hostname}#{os.getpid()}"
        self._base_stats = {"serverId": self.server_id, "hostname": hostname, "pid": os.getpid()}
        self.features = [] if read_only else list(_ACTIONS)
        self.features.append("AGGREGATED_EVENTS")
        if mode == "development":
            self.features.append("ALL_EVENTS")
        self.counts = EventCounts()
        """The events counted per second since the last ``server_stats``."""
        self.dropped = 0
        """Events for the UI dropped because the admin's queue was full."""
        self._started = time.monotonic()
        self._clients: set[str] = set()  # Engine.IO sessions seen, for rawConnection
        self._send, self._jobs = anyio.create_memory_object_stream[Job](QUEUE_SIZE)
        self._tg: TaskGroup | None = None
        self._checks: anyio.CapacityLimiter | None = None  # made in the event loop
        self._uninstall: list[Callable[[], None]] = []

    # -- installing -----------------------------------------------------------------

    def install(self) -> Admin:
        """Register the namespace, its auth and actions, the observer and the
        admin's task on the server; returns itself.

        Raises:
            ValueError: the namespace has handlers for the UI's events already.
        """
        server = self.server
        ns = server.namespace(self.namespace)
        ns.connect_handlers.append(self._on_connect)
        if not self.read_only:
            server.on("emit", namespace=self.namespace)(self._emit_action)
            server.on("join", namespace=self.namespace)(self._join_action)
            server.on("leave", namespace=self.namespace)(self._leave_action)
            server.on("_disconnect", namespace=self.namespace)(self._disconnect_action)
        server.services.append(self.run)
        self._uninstall.append(server.observe(self))
        if self.auth is False:
            log.warning("the Admin UI on %s lets anyone in (auth=False)", self.namespace)
        return self

    async def run(self) -> None:
        """Carry out the queued jobs and send ``server_stats`` every
        ``stats_interval`` seconds, until cancelled (the server stopping)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                tg.start_soon(self._report_stats)
                async for job in self._jobs:
                    try:
                        await job()
                    except Exception:
                        log.exception("admin job failed; the admin goes on")
            finally:
                self._tg = None

    def _queue(self, job: Job) -> None:
        try:
            self._send.send_nowait(job)
        except anyio.WouldBlock:
            self.dropped += 1

    def _to_ui(self, event: str, *args: Any) -> None:
        self._queue(partial(self.server.emit, event, *args, namespace=self.namespace))

    # -- the UI's connection -----------------------------------------------------------

    async def _on_connect(self, socket: Socket, auth: dict[str, Any]) -> None:
        if isinstance(self.auth, BasicAuth):
            if not self.sessions.valid(auth.get("sessionId")):
                checked = partial(self.auth.check, auth.get("username"), auth.get("password"))
                if self._checks is None:
                    self._checks = anyio.CapacityLimiter(PASSWORD_CHECKS)
                if not await anyio.to_thread.run_sync(checked, limiter=self._checks):
                    raise ConnectionRefused("invalid credentials")
                await socket.emit("session", self.sessions.issue())
        await socket.emit("config", {"supportedFeatures": self.features})

    async def _send_all_sockets(self, socket: Socket) -> None:
        sockets: list[dict[str, Any]] = []
        for name in list(self.server.namespaces):
            infos = await self.server.fetch_sockets(namespace=name)
            sockets.extend(_serialize(info) for info in infos)
        await socket.emit("all_sockets", sockets)

    # -- the UI's actions (not registered in read-only mode) ---------------------------

    async def _emit_action(
        self, socket: Socket, nsp: object, room: object, event: object, *args: Any
    ) -> None:
        if isinstance(nsp, str) and isinstance(event, str) and isinstance(room, str | None):
            await self.server.emit(event, *args, to=room or None, namespace=nsp)

    async def _join_action(
        self, socket: Socket, nsp: object, room: object, filter_: object = None
    ) -> None:
        if isinstance(nsp, str) and isinstance(room, str) and isinstance(filter_, str | None):
            await self.server.sockets_join(room, rooms=filter_ or None, namespace=nsp)

    async def _leave_action(
        self, socket: Socket, nsp: object, room: object, filter_: object = None
    ) -> None:
        if isinstance(nsp, str) and isinstance(room, str) and isinstance(filter_, str | None):
            await self.server.sockets_leave(room, rooms=filter_ or None, namespace=nsp)

    async def _disconnect_action(
        self, socket: Socket, nsp: object, close: object = False, filter_: object = None
    ) -> None:
        if isinstance(nsp, str) and isinstance(filter_, str | None):
            await self.server.disconnect_sockets(
                filter_ or None, close=close is True, namespace=nsp
            )

    # -- what the server tells (Observer) ----------------------------------------------

    def socket_connected(self, socket: Socket) -> None:
        if socket.engine_sid not in self._clients:
            self._clients.add(socket.engine_sid)
            self.counts.add("rawConnection")
        scope = socket.session.scope
        socket.state["_admin"] = {
            # Part of the Engine.IO id only: the whole would let one take the session over.
            "clientId": socket.engine_sid[:12],
            "transport": socket.transport,
            "issued": int(time.time() * 1000),
            "time": _now(),
            "secure": scope.get("scheme") in ("https", "wss"),
            "url": scope.get("path", ""),
        }
        if self.mode != "development":
            return
        if socket.namespace.name == self.namespace and self._tg is not None:
            self._tg.start_soon(self._send_all_sockets, socket)
        info = describe(socket, self.server.broker.node_id)
        self._to_ui("socket_connected", _serialize(info), _now())

    def socket_disconnected(self, socket: Socket, reason: CloseReason | DisconnectReason) -> None:
        if isinstance(reason, CloseReason) and socket.engine_sid in self._clients:
            self._clients.discard(socket.engine_sid)
            self.counts.add("rawDisconnection", str(reason))
        if self.mode == "development":
            self._to_ui(
                "socket_disconnected", socket.namespace.name, socket.sid, str(reason), _now()
            )

    def room_joined(self, socket: Socket, room: str) -> None:
        if self.mode == "development":
            self._to_ui("room_joined", socket.namespace.name, room, socket.sid, _now())

    def room_left(self, socket: Socket, room: str) -> None:
        if self.mode == "development":
            self._to_ui("room_left", socket.namespace.name, room, socket.sid, _now())

    def packet_received(self, socket: Socket | None, packet: Packet, size: int) -> None:
        self.counts.traffic(IN, 1, size)
        if (
            self.mode == "development"
            and socket is not None
            and packet.type in _EVENTS
            and packet.namespace != self.namespace
        ):
            self._to_ui("event_received", packet.namespace, socket.sid, packet.data, _now())

    def packet_sent(self, socket: Socket | None, packet: Packet, size: int) -> None:
        self.counts.traffic(OUT, 1, size)
        if (
            self.mode == "development"
            and socket is not None
            and packet.type in _EVENTS
            and packet.namespace != self.namespace
        ):
            self._to_ui("event_sent", packet.namespace, socket.sid, packet.data, _now())

    def broadcast_sent(
        self, packet: Packet, size: int, rooms: tuple[str, ...] | None, recipients: int
    ) -> None:
        if recipients:
            self.counts.traffic(OUT, recipients, size * recipients)

    # -- server_stats ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """This process's ``server_stats`` (the counts since the last are taken)."""
        sessions = self.server.engine.sessions
        # A client whose last namespace disconnected (its session then ends
        # with no socket left to say why) is counted here.
        gone = [sid for sid in self._clients if sid not in sessions]
        for sid in gone:
            self._clients.discard(sid)
            self.counts.add("rawDisconnection", "server disconnect")
        return {
            **self._base_stats,
            "uptime": time.monotonic() - self._started,
            "clientsCount": len(sessions),
            "pollingClientsCount": sum(
                1 for session in sessions.values() if session.transport == "polling"
            ),
            "aggregatedEvents": self.counts.take(),
            "namespaces": [
                {"name": ns.name, "socketsCount": len(ns.sockets)}
                for ns in self.server.namespaces.values()
            ],
            "memoryUsage": {"rss": memory_rss()},
            "droppedEvents": self.dropped,
        }

    async def _report_stats(self) -> None:
        while True:
            self._queue(self._send_stats)
            await anyio.sleep(self.stats_interval)

    async def _send_stats(self) -> None:
        # Taken when sent, not when queued: the counts are those up to now.
        await self.server.emit("server_stats", self.stats(), namespace=self.namespace)
