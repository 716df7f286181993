"""The Socket.IO server: packets from Engine.IO sessions to namespace handlers.

Per Engine.IO session the server keeps a :class:`_Connection` (on the session,
``EngineSession.upper``): the packet decoder, the namespaces the client joined
and the handler slots that bound how many handlers the client may run at once.
Inbound packets are dispatched in the transport's reader, in order: CONNECT is
answered before the next packet is read, and an EVENT waits for a free handler
slot (backpressure) before its handler is handed to a worker task of its socket
(in the session's task group).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio

from ._config import ServerOptions
from ._errors import ConnectionRefused
from ._namespace import ConnectHandler, DisconnectHandler, EventHandler, Namespace
from ._socket import Socket, to_engine
from ._transport._asgi import EngineASGI, serve_lifespan
from ._transport._engine import EngineServer, EngineSession
from ._transport._event import Event, new_event
from ._transport._forward import Forwarder
from ._transport._http import ASGIApp, Receive, Scope, Send, query_params
from .brokers import DEFAULT_QUERY_TIMEOUT, Broadcast, Broker, LocalBroker
from .protocol.errors import RemoteProtocolError
from .protocol.socketio import Decoder, Packet, PacketType, encode

__all__ = ("SocketIOServer",)

log = logging.getLogger("gosf")

F = TypeVar("F", bound=Callable[..., Any])

_ENGINE_QUERY = ("EIO", "transport", "sid", "t", "b64", "j")
"""Query parameters of Engine.IO itself, not part of a socket.io 2.x client's auth query."""


class _Connection:
    __slots__ = ("connected", "decoder", "free_slots", "slot_freed", "sockets")

    def __init__(self, protocol: int, max_handlers: int) -> None:
        self.decoder = Decoder(protocol)
        self.sockets: dict[str, Socket] = {}
        # Handler slots: a counter, and an event while someone waits for one
        # (cheaper than a semaphore on the hot path).
        self.free_slots = max_handlers
        self.slot_freed: Event | None = None
        # Set, then dropped, once a namespace is connected (the deadline's wait ends).
        self.connected: anyio.Event | None = anyio.Event()


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

    # -- registration -----------------------------------------------------------

    def namespace(self, name: str = "/") -> Namespace:
        """The namespace ``name``, created on first use."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = Namespace(name, self._publish)
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
            ns.deliver(to_engine(list(broadcast.parts)), broadcast.rooms, broadcast.skip)

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
        for answer in await self.broker.query({"op": "rooms", "n": namespace}, timeout):
            counts = answer.get("rooms")
            if isinstance(counts, dict):
                for room, count in counts.items():
                    if isinstance(count, int):
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
        answers = await self.broker.query({"op": "count", "n": namespace}, timeout)
        return sum(a["count"] for a in answers if isinstance(a.get("count"), int))

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
        if op not in ("disconnect", "join", "leave"):
            raise ValueError(f"unknown socket command {op!r}")
        request: dict[str, Any] = {"op": op, "n": namespace, "sid": sid}
        if op != "disconnect":
            if not isinstance(room, str) or not room:
                raise ValueError(f"{op} needs a room")
            request["room"] = room
        local = self._answer(request)  # most often here: no need to ask the others
        if local is not None and local.get("found") is True:
            return True
        answers = await self.broker.query(request, timeout)
        return any(answer.get("found") is True for answer in answers)

    def _answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """Answer a cluster query for this process's sockets (see :meth:`cluster_rooms`)."""
        op, name = request.get("op"), request.get("n", "/")
        ns = self.namespaces.get(name) if isinstance(name, str) else None
        if op == "rooms":
            rooms: dict[str, int] = {}
            if ns is not None:
                for room, members in ns.rooms.items():
                    if room in ns.sockets:
                        continue  # named by a sid: that socket's own room, joined by others
                    count = sum(1 for socket in members if socket.connected)
                    if count:
                        rooms[room] = count
            return {"rooms": rooms}
        if op == "count":
            return {"count": 0 if ns is None else len(ns.members())}
        if op in ("disconnect", "join", "leave"):
            sid, target = request.get("sid"), request.get("room")
            socket = ns.sockets.get(sid) if ns is not None and isinstance(sid, str) else None
            if socket is None or not socket.connected:
                return {"found": False}
            if op == "disconnect":
                socket.disconnect()
            elif not isinstance(target, str) or not target:
                return {"found": False}
            elif op == "join":
                socket.join(target)
            elif target != socket.sid:
                socket.leave(target)
            return {"found": True}
        return None

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
        conn = _Connection(5 if session.protocol >= 4 else 4, self.options.max_concurrent_handlers)
        session.upper = conn
        session.task_group.start_soon(self._connect_deadline, session, conn)
        if session.protocol < 4:
            # Socket.IO 4 (socket.io 2.x): the default namespace is joined
            # implicitly, with the handshake's query as its auth.
            query = query_params(session.scope)
            for reserved in _ENGINE_QUERY:
                query.pop(reserved, None)
            await self._connect(session, conn, "/", query)

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        conn: _Connection | None = session.upper
        if conn is None:
            return
        packet = conn.decoder.feed(data)
        if packet is None:
            return
        kind = packet.type
        if kind is PacketType.EVENT or kind is PacketType.BINARY_EVENT:
            while not conn.free_slots:  # backpressure: wait for a free slot
                if conn.slot_freed is None:
                    conn.slot_freed = new_event()
                await conn.slot_freed.wait()
            conn.free_slots -= 1
            self._inflight += 1
            try:
                self._start_event(conn, packet)
            except BaseException:
                self._work_done(conn)
                raise
        elif kind is PacketType.ACK or kind is PacketType.BINARY_ACK:
            socket = self._socket_for(conn, packet)
            if packet.id is not None:
                socket._on_ack(packet.id, packet.data)
        elif kind is PacketType.CONNECT:
            await self._connect(session, conn, packet.namespace, self._auth(packet))
        elif kind is PacketType.DISCONNECT:
            if packet.namespace in conn.sockets:
                conn.sockets.pop(packet.namespace)._close("client namespace disconnect")
        else:
            raise RemoteProtocolError(f"a client may not send {kind.name}")

    async def on_close(self, session: EngineSession, reason: str) -> None:
        """The session ended (its tasks, the sockets' handlers among them, are done):
        close its sockets and run their disconnect handlers, side by side."""
        conn: _Connection | None = session.upper
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
        conn: _Connection | None = session.upper
        if conn is not None:
            for socket in conn.sockets.values():
                socket._retire_idle_workers()

    # -- dispatch ------------------------------------------------------------------

    @staticmethod
    def _auth(packet: Packet) -> dict[str, Any]:
        data = packet.data
        if not isinstance(data, dict):
            return {}
        if "query" in data and isinstance(data["query"], str) and len(data) == 1:
            return dict(parse_qsl(data["query"], keep_blank_values=True))
        return data

    @staticmethod
    def _socket_for(conn: _Connection, packet: Packet) -> Socket:
        socket = conn.sockets.get(packet.namespace)
        if socket is None:
            raise RemoteProtocolError(f"namespace {packet.namespace!r} is not connected")
        return socket

    def _start_event(self, conn: _Connection, packet: Packet) -> None:
        """Start the handler of an EVENT in a handler slot the caller took (and counted).

        Raises:
            RemoteProtocolError: the namespace is not connected.
        """
        socket = self._socket_for(conn, packet)
        event, *args = packet.data
        ns = socket.namespace
        handler = ns.handlers.get(event)
        if handler is None and ns.dispatcher is None:
            log.debug("no handler for %r in %s", event, ns.name)
            self._work_done(conn)
            return
        socket._start_handler(self._run_event, conn, socket, handler, event, args, packet.id)

    async def _run_event(
        self,
        conn: _Connection,
        socket: Socket,
        handler: EventHandler | None,
        event: str,
        args: list[Any],
        ack_id: int | None,
    ) -> None:
        """Run an EVENT's handler (``None``: the namespace's dispatcher, which
        answers itself), log what it raises, free its slot. One coroutine: on
        the hot path every await level costs."""
        try:
            if handler is None:
                dispatcher = socket.namespace.dispatcher
                assert dispatcher is not None  # checked by _start_event
                await dispatcher(socket, event, args, ack_id)
                return
            result = await handler(socket, *args)
            if ack_id is not None:
                if result is None:
                    await socket.ack(ack_id)
                elif isinstance(result, tuple):
                    await socket.ack(ack_id, *result)
                else:
                    await socket.ack(ack_id, result)
        except Exception:
            log.exception("handler for %r failed (socket %s)", event, socket.sid)
        finally:
            self._work_done(conn)

    def _work_done(self, conn: _Connection) -> None:
        conn.free_slots += 1
        freed = conn.slot_freed
        if freed is not None:
            conn.slot_freed = None
            freed.set()
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
        await self.engine.close_all("server shutting down", deadline=idle.deadline)

    async def wait_idle(self) -> None:
        """Wait until no event handler is running."""
        while self._inflight:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    async def _connect(
        self, session: EngineSession, conn: _Connection, name: str, auth: dict[str, Any]
    ) -> None:
        protocol = 5 if session.protocol >= 4 else 4
        if name in conn.sockets:
            if protocol == 4:
                return  # socket.io 2.x clients may confirm the implicit "/" connect
            raise RemoteProtocolError(f"namespace {name!r} is already connected")
        ns = self.namespaces.get(name)
        if ns is None:
            self._refuse(session, protocol, name, ConnectionRefused("Invalid namespace"))
            return
        socket = Socket(ns, session, auth, conn.sockets)
        try:
            for handler in ns.connect_handlers:
                await handler(socket, auth)
        except ConnectionRefused as exc:
            self._refuse(session, protocol, name, exc)
            return
        except Exception:
            log.exception("connect handler of namespace %s failed", name)
            self._refuse(session, protocol, name, ConnectionRefused("Internal server error"))
            return
        if session.closed:
            return
        conn.sockets[name] = socket
        if conn.connected is not None:
            conn.connected.set()
            conn.connected = None
        ns.sockets[socket.sid] = socket
        socket.join(socket.sid)
        data = {"sid": socket.sid} if protocol == 5 else None
        session.send_nowait(to_engine(encode(Packet(PacketType.CONNECT, name, data), protocol)))
        socket._connected()

    @staticmethod
    def _refuse(session: EngineSession, protocol: int, name: str, exc: ConnectionRefused) -> None:
        if protocol == 5:
            data: Any = {"message": exc.message}
            if exc.data is not None:
                data["data"] = exc.data
        else:
            data = exc.message if exc.data is None else exc.data
        session.send_nowait(
            to_engine(encode(Packet(PacketType.CONNECT_ERROR, name, data), protocol))
        )

    async def _connect_deadline(self, session: EngineSession, conn: _Connection) -> None:
        connected = conn.connected
        if connected is None:
            return
        with anyio.move_on_after(self.options.connect_timeout):
            await connected.wait()
            return  # the task ends as soon as a namespace is connected
        session.close("connect timeout")
