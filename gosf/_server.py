"""The Socket.IO server: packets from Engine.IO sessions to namespace handlers.

Per Engine.IO session the server keeps a :class:`~gosf._connection.Connection`
(on the session, ``EngineSession.upper``): the packet decoder, the namespaces
the client joined and the handler slots that bound how many handlers the
client may run at once.
Inbound packets are dispatched in the transport's reader, in order: CONNECT is
answered before the next packet is read, and an EVENT's handler is handed to a
worker task of its socket (in the session's task group) in a free handler slot.

Backpressure, the rule: an EVENT that finds every slot taken waits in the
connection's queue (at most ``MAX_QUEUED_EVENTS``, in the order read), and the
reader goes on reading, so the client's PONGs, CLOSE and ACKs are still read.
A slot that frees goes to the queue's first event. Only when the queue is full
too does the reader wait (for room in it), so a client's events cost at most
``max_concurrent_handlers + MAX_QUEUED_EVENTS`` messages of ``max_payload``
bytes; while it waits, the session's heartbeat is told (``hold_reading``) not
to blame the client for the PONGs left unread. Queued events of a namespace
the client leaves, or of a session that closes, are dropped: their handlers
would have been cancelled.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, TypeVar, assert_never

import anyio

from ._config import ServerOptions
from ._connection import ENGINE_QUERY, Connection, auth_of
from ._logs import Throttled
from ._namespace import ConnectHandler, DisconnectHandler, Dispatcher, EventHandler, Namespace
from ._observer import Observer, Observers, size_of
from ._socket import DisconnectReason, Socket, to_engine
from ._transport._asgi import EngineASGI, serve_lifespan
from ._transport._engine import EngineServer
from ._transport._forward import Forwarder
from ._transport._http import query_params
from ._transport._session import EngineSession
from .brokers import (
    DEFAULT_QUERY_TIMEOUT,
    AnyAnswer,
    AnyQuery,
    Broadcast,
    Broker,
    CommandResult,
    CountQuery,
    LocalBroker,
    RoomCounts,
    RoomsQuery,
    SocketCommand,
    SocketCount,
)
from .protocol.errors import LocalProtocolError, RemoteProtocolError
from .protocol.session import CloseReason
from .protocol.socketio import Packet, PacketType
from .types import ASGIApp, Receive, Scope, Send

__all__ = ("SocketIOServer",)

log = logging.getLogger("gosf")

F = TypeVar("F", bound=Callable[..., Any])

MAX_QUEUED_EVENTS = 16
"""Events one client may have waiting for a handler slot before the server
stops reading it (see the module's docstring)."""

UNENCODABLE_LOG_INTERVAL = 10.0
"""Seconds between WARNING lines about answers that cannot be encoded (the rest go to DEBUG)."""


class SocketIOServer:
    """A Socket.IO server (protocol 5, and 4 for socket.io 2.x clients) as an ASGI app.

    >>> server = SocketIOServer()
    >>> @server.on("echo")
    ... async def echo(socket, data):
    ...     return data
    >>> asgi = server.asgi   # hypercorn module:asgi --worker-class trio

    Options are the fields of :class:`ServerOptions`, given as an object or as
    keyword arguments (validated at once: a bad value raises
    :class:`pydantic.ValidationError`).
    """

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        other_app: ASGIApp | None = None,
        broker: Broker | None = None,
        **option_values: Any,
    ) -> None:
        if options is None:
            options = ServerOptions(**option_values)
        elif option_values:
            options = ServerOptions(**{**options.model_dump(), **option_values})
        self.options = options
        self.broker: Broker = broker if broker is not None else LocalBroker()
        """Carries broadcasts to the other processes of a cluster (local: none)."""
        self.namespaces: dict[str, Namespace] = {"/": Namespace("/", self._publish)}
        self.engine = EngineServer(options, self, node_id=self.broker.node_id)
        self._asgi = EngineASGI(self.engine, other_app)
        self._inflight = 0
        self._idle: anyio.Event | None = None
        self._unencodable_log = Throttled(log, UNENCODABLE_LOG_INTERVAL)
        self._observers = Observers()
        self._observer: Observers | None = None  # the same while there are observers

    # -- registration -----------------------------------------------------------

    def namespace(self, name: str = "/") -> Namespace:
        """The namespace ``name``, created on first use."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = Namespace(name, self._publish)
            ns.observer = self._observer
        return ns

    def on(self, event: str, *, namespace: str = "/") -> Callable[[F], F]:
        """Decorator: register an ``async def handler(socket, *args)`` for ``event``.

        The handler's return value is sent as the ack when the client asked
        for one (``None`` = an empty ack, a tuple = several arguments).

        Raises:
            ValueError: the event already has a handler.
        """

        def register(handler: F) -> F:
            self.namespace(namespace).on(event, handler)
            return handler

        return register

    def on_any(self, handler: Dispatcher, *, namespace: str = "/") -> Dispatcher:
        """Register ``async def handler(socket, event, args, ack_id)`` for every event
        of ``namespace`` that has no handler of its own (python-socketio's ``"*"``;
        unlike Node's ``socket.onAny`` it does not see the others: an
        :class:`Observer` sees every packet).

        It answers the ack itself, ``await socket.ack(ack_id, ...)`` when
        ``ack_id`` is not ``None``; it runs in a handler slot as handlers do.

        Raises:
            ValueError: the namespace has one already.
            TypeError: ``handler`` is not an ``async def`` function.
        """
        self.namespace(namespace).on_any(handler)
        return handler

    def observe(self, observer: Observer) -> Callable[[], None]:
        """Tell ``observer`` what happens, from now on (see :class:`Observer`);
        returns what stops it. Several observers may be registered."""
        return self._observers.add(observer, self._observers_changed)

    def _observers_changed(self) -> None:
        observer = self._observers if self._observers.observers else None
        self._observer = observer
        for ns in self.namespaces.values():
            ns.observer = observer

    def on_connect(self, handler: ConnectHandler, *, namespace: str = "/") -> ConnectHandler:
        """Register ``async def on_connect(socket, auth)``.

        It may raise :class:`ConnectionRefused` to refuse the client.
        """
        self.namespace(namespace).connect_handlers.append(handler)
        return handler

    def on_disconnect(
        self, handler: DisconnectHandler, *, namespace: str = "/"
    ) -> DisconnectHandler:
        """Register ``async def on_disconnect(socket, reason)``.

        It runs once the socket's handlers have ended (they are cancelled).
        ``reason`` is a :class:`gosf.CloseReason` (the session ended) or a
        :class:`gosf.DisconnectReason` (the socket left its namespace), each
        a :class:`str` (docs/protocol.md lists them).
        """
        self.namespace(namespace).disconnect_handlers.append(handler)
        return handler

    async def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        namespace: str = "/",
        skip: Socket | None = None,
    ) -> int:
        """Broadcast ``event`` to a namespace or to rooms in it; see :meth:`Namespace.emit`."""
        ns = self.namespaces.get(namespace)
        return 0 if ns is None else await ns.emit(event, *args, to=to, skip=skip)

    def log_unencodable(
        self, what: str, event: str, sid: str, error: LocalProtocolError, instead: str
    ) -> None:
        """Log that an answer to ``event`` (``what``: "response", "ack") cannot be
        encoded, and what the client got ``instead``.

        One line, no traceback (the encoder's is no help) and rate-limited: a
        client can cause it at will, by sending data nested too deeply to an
        endpoint that echoes it, say.
        """
        self._unencodable_log(
            "%s to %r cannot be encoded (socket %s): %s; sent %s instead",
            what,
            event,
            sid,
            error,
            instead,
        )

    # -- running ------------------------------------------------------------------

    @property
    def asgi(self) -> ASGIApp:
        """The ASGI application (``hypercorn module:asgi``): the server itself."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send, self.running)
        else:
            await self._asgi.route(scope, receive, send)

    def route(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """What serves a non-lifespan ASGI call, to be awaited (for an ASGI app
        wrapping this server: it adds no suspended frame to the call)."""
        return self._asgi.route(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SocketIOServer]:
        """Run the server: its sessions' task group and the broker's subscription.

        The ASGI lifespan does this; use it directly when embedding or testing.
        """
        forwarder = Forwarder(self.engine, self.broker.send_to)
        async with self._asgi.running(), anyio.create_task_group() as tg:
            await tg.start(forwarder.run)
            self.engine.forwarder = forwarder
            run_broker = partial(
                self.broker.run, self._deliver_remote, answer=self._answer, inbox=forwarder.inbox
            )
            await tg.start(run_broker)
            try:
                yield self
            finally:
                self.engine.forwarder = None
                tg.cancel_scope.cancel()

    # -- across processes -----------------------------------------------------------

    async def _publish(self, broadcast: Broadcast) -> None:
        await self.broker.publish(broadcast)

    def _deliver_remote(self, broadcast: Broadcast) -> None:
        """A broadcast from another process: deliver it to this process's sockets."""
        ns = self.namespaces.get(broadcast.namespace)
        if ns is not None:
            sent = ns.deliver(to_engine(list(broadcast.parts)), broadcast.rooms, broadcast.skip)
            if self._observer is not None:
                self._observer.delivered(broadcast.parts, broadcast.rooms, sent)

    async def cluster_rooms(
        self,
        namespace: str = "/",
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> dict[str, int]:
        """Every room of ``namespace`` in the cluster with its number of members.

        Sockets' own rooms (their sids) are left out. Processes that do not
        answer within ``timeout`` seconds are left out too (see
        :meth:`gosf.brokers.Broker.query`).

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        rooms: dict[str, int] = {}
        for answer in await self.broker.query(RoomsQuery(namespace), timeout):
            for room, count in answer.rooms.items():
                rooms[room] = rooms.get(room, 0) + count
        return rooms

    async def cluster_socket_count(
        self,
        namespace: str = "/",
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """The number of sockets connected to ``namespace`` in the cluster.

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        answers = await self.broker.query(CountQuery(namespace), timeout)
        return sum(answer.count for answer in answers)

    async def command_socket(
        self,
        op: str,
        sid: str,
        room: str | None = None,
        *,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> bool:
        """``disconnect``, ``join`` or ``leave`` (``room``) the socket ``sid`` of
        ``namespace``, in whichever process it is connected; whether one had it.

        Raises:
            ValueError: an unknown ``op``, ``join``/``leave`` without a room,
                or ``timeout`` is not positive.
        """
        command = SocketCommand(op, sid, room, namespace)  # type: ignore[arg-type]  # checked there
        if self._answer(command) == CommandResult(True):
            return True  # most often here: no need to ask the others
        answers = await self.broker.query(command, timeout)
        return any(answer.found for answer in answers)

    def _answer(self, query: AnyQuery) -> AnyAnswer:
        """Answer a cluster query for this process's sockets (see :meth:`cluster_rooms`)."""
        ns = self.namespaces.get(query.namespace)
        match query:
            case RoomsQuery():
                rooms: dict[str, int] = {}
                if ns is not None:
                    for room, members in ns.rooms.items():
                        if room in ns.sockets:
                            continue  # named by a sid: that socket's own room, joined by others
                        count = sum(1 for socket in members if socket.connected)
                        if count:
                            rooms[room] = count
                return RoomCounts(rooms)
            case CountQuery():
                return SocketCount(0 if ns is None else len(ns.members()))
            case SocketCommand(op=op, sid=sid, room=room):
                socket = ns.sockets.get(sid) if ns is not None else None
                if socket is None or not socket.connected:
                    return CommandResult(False)
                if op == "disconnect":
                    socket.disconnect()
                elif op == "join" and room is not None:
                    socket.join(room)
                elif op == "leave" and room is not None and room != socket.sid:
                    socket.leave(room)
                return CommandResult(True)
            case _:
                assert_never(query)

    async def __aenter__(self) -> SocketIOServer:
        self._cm = self.running()
        return await self._cm.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._cm.__aexit__(exc_type, exc, tb)

    # -- EngineHandler --------------------------------------------------------------

    async def on_open(self, session: EngineSession) -> None:
        options = self.options
        conn = Connection(
            5 if session.protocol >= 4 else 4,
            options.max_concurrent_handlers,
            options.max_payload,
            self.engine.primitives.event(),
        )
        session.upper = conn
        session.task_group.start_soon(conn.connect_deadline, session, options.connect_timeout)
        if session.protocol < 4:
            # Socket.IO 4 (socket.io 2.x): the default namespace is joined
            # implicitly, with the handshake's query as its auth.
            query = query_params(session.scope)
            for reserved in ENGINE_QUERY:
                query.pop(reserved, None)
            await conn.connect(session, self.namespaces.get("/"), "/", query, self._observer)

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        conn: Connection | None = session.upper
        if conn is None:
            return
        packet = conn.decoder.feed(data)
        if self._observer is not None:
            self._observe_received(self._observer, conn, packet, data)
        if packet is None:
            return
        kind = packet.type
        if kind is PacketType.EVENT or kind is PacketType.BINARY_EVENT:
            socket = self._socket_for(conn, packet)
            if not conn.free_slots:
                await self._queue_event(session, conn, socket, packet)
                return
            conn.free_slots -= 1
            self._inflight += 1
            try:
                started = self._start_event(conn, socket, packet)
            except BaseException:
                self._work_done(conn)
                raise
            if not started:
                self._work_done(conn)
        elif kind is PacketType.ACK or kind is PacketType.BINARY_ACK:
            socket = self._socket_for(conn, packet)
            if packet.id is not None:
                socket._on_ack(packet.id, packet.data)
        elif kind is PacketType.CONNECT:
            name = packet.namespace
            await conn.connect(
                session, self.namespaces.get(name), name, auth_of(packet), self._observer
            )
        elif kind is PacketType.DISCONNECT:
            if packet.namespace in conn.sockets:
                socket = conn.sockets.pop(packet.namespace)
                socket._close(DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)
                self._drop_queued(conn, socket)
        else:
            raise RemoteProtocolError(f"a client may not send {kind.name}")

    async def on_close(self, session: EngineSession, reason: CloseReason) -> None:
        """The session ended (its tasks, the sockets' handlers among them, are done):
        close its sockets and run their disconnect handlers, side by side."""
        conn: Connection | None = session.upper
        session.upper = None
        if conn is None:
            return
        sockets = list(conn.sockets.values())
        for socket in sockets:
            socket._close(reason)
        if len(sockets) == 1:
            await sockets[0]._finish()
        elif sockets:
            async with anyio.create_task_group() as tg:
                for socket in sockets:
                    tg.start_soon(socket._finish)

    def on_beat(self, session: EngineSession) -> None:
        """A heartbeat: the client's idle handler workers end (the next event starts one)."""
        conn: Connection | None = session.upper
        if conn is not None:
            for socket in conn.sockets.values():
                socket._retire_idle_workers()

    @staticmethod
    def _observe_received(
        observer: Observers, conn: Connection, packet: Packet | None, data: str | bytes
    ) -> None:
        """Report a packet received, once its last part (of several, with
        attachments) is: its size counts them all."""
        size = conn.received_size + size_of((data,))
        if packet is None:
            conn.received_size = size
            return
        conn.received_size = 0
        observer.received(conn.sockets.get(packet.namespace), packet, size)

    # -- dispatch ------------------------------------------------------------------

    @staticmethod
    def _socket_for(conn: Connection, packet: Packet) -> Socket:
        socket = conn.sockets.get(packet.namespace)
        if socket is None:
            raise RemoteProtocolError(f"namespace {packet.namespace!r} is not connected")
        return socket

    def _start_event(self, conn: Connection, socket: Socket, packet: Packet) -> bool:
        """Start the handler of an EVENT in a handler slot the caller took (and counted).

        Returns whether one started; if not (no handler), the slot is still the caller's.
        """
        event, *args = packet.data
        ns = socket.namespace
        handler = ns.handlers.get(event)
        if handler is None and ns._catch_all is None:
            log.debug("no handler for %r in %s", event, ns.name)
            return False
        socket._start_handler(self._run_event, conn, socket, handler, event, args, packet.id)
        return True

    async def _queue_event(
        self, session: EngineSession, conn: Connection, socket: Socket, packet: Packet
    ) -> None:
        """Queue an EVENT that found every handler slot taken; when the queue is
        full, first wait for room in it (the client is not read meanwhile)."""
        queue = conn.queue
        if queue is None:
            queue = conn.queue = deque()
        if len(queue) >= MAX_QUEUED_EVENTS:
            # Not reading the client means not reading its PONGs either: the
            # heartbeat is told so, and does not count that time against it.
            session.hold_reading(True)
            try:
                while len(queue) >= MAX_QUEUED_EVENTS:
                    if conn.queue_room is None:
                        conn.queue_room = self.engine.primitives.event()
                    await conn.queue_room.wait()
            finally:
                session.hold_reading(False)
            if socket._closed or session.closed:
                return  # disconnected meanwhile: its handler would be cancelled
            if conn.free_slots:  # the queue ran empty meanwhile: no one to overtake
                conn.free_slots -= 1
                self._inflight += 1
                if not self._start_event(conn, socket, packet):
                    self._work_done(conn)
                return
        queue.append((socket, packet))

    @staticmethod
    def _drop_queued(conn: Connection, socket: Socket) -> None:
        """Drop the queued events of a socket that closed (their handlers would be cancelled)."""
        queue = conn.queue
        if queue and any(queued is socket for queued, _ in queue):
            kept = [entry for entry in queue if entry[0] is not socket]
            queue.clear()
            queue.extend(kept)
            room = conn.queue_room
            if room is not None:
                conn.queue_room = None
                room.set()

    async def _run_event(
        self,
        conn: Connection,
        socket: Socket,
        handler: EventHandler | None,
        event: str,
        args: list[Any],
        ack_id: int | None,
    ) -> None:
        """Run an EVENT's handler (``None``: the namespace's catch-all, which
        answers itself), log what it raises, free its slot, tell the observers
        how long it took. One coroutine, the ack included (a fast path: see
        "Fast paths" in docs/performance.md)."""
        observer = self._observer
        started = time.perf_counter() if observer is not None else 0.0
        failed = False
        try:
            if handler is None:
                catch_all = socket.namespace._catch_all
                assert catch_all is not None  # checked by _start_event
                await catch_all(socket, event, args, ack_id)
            else:
                result = await handler(socket, *args)
                if ack_id is not None:
                    try:
                        if result is None:
                            ack = socket.ack(ack_id)
                        elif isinstance(result, tuple):
                            ack = socket.ack(ack_id, *result)
                        else:
                            ack = socket.ack(ack_id, result)
                    except LocalProtocolError as exc:
                        # JSON cannot carry the result: the client gets an empty
                        # ack rather than waiting for one that never comes.
                        self.log_unencodable("ack", event, socket.sid, exc, "an empty ack")
                        ack = socket.ack(ack_id)
                    await ack
        except Exception:
            failed = True
            log.exception("handler for %r failed (socket %s)", event, socket.sid)
        finally:
            self._work_done(conn)
        if observer is not None:  # not when cancelled: the exception goes on from finally
            observer.finished(socket, event, time.perf_counter() - started, failed)

    def _work_done(self, conn: Connection) -> None:
        """A handler slot is free: the first queued event takes it, else it is counted free."""
        queue = conn.queue
        while queue:
            socket, packet = queue.popleft()
            room = conn.queue_room
            if room is not None:
                conn.queue_room = None
                room.set()
            if socket._closed or socket.session.closed:
                continue  # its handler would be cancelled at once
            try:
                if self._start_event(conn, socket, packet):
                    return  # the slot (and its count in _inflight) is the event's now
            except RuntimeError:  # the session is ending: no task group to start in
                continue
        conn.free_slots += 1
        self._inflight -= 1
        if not self._inflight and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def shutdown(self, grace: float) -> None:
        """Stop gracefully: refuse new sessions, give running handlers ``grace``
        seconds to finish, then disconnect every client cleanly."""
        self.engine.accepting = False
        with anyio.move_on_after(grace) as idle:
            await self.wait_idle()
        await self.engine.close_all(CloseReason.SERVER_SHUTTING_DOWN, deadline=idle.deadline)

    async def wait_idle(self) -> None:
        """Wait until no event handler is running."""
        while self._inflight:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()
