"""The Socket.IO server: packets from Engine.IO sessions to namespace handlers.

Per Engine.IO session the server keeps a :class:`~gosf._socketio.connection.Connection`
(on the session, ``EngineSession.upper``): the packet decoder, the namespaces
the client joined and the handler slots that bound how many handlers the
client may run at once.
Inbound packets are dispatched in the transport's reader, in order: CONNECT is
answered before the next packet is read, and an EVENT's handler is handed to a
worker task of its socket (in the session's task group) in a free handler slot,
or queued (``gosf._socketio.slots`` has that rule). Across processes the server is a
node of its cluster (``gosf._socketio.node``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import anyio

from .._cluster.forward import Forwarder
from .._config import ServerOptions
from .._engineio.asgi import EngineASGI, serve_lifespan
from .._engineio.http import query_params
from .._engineio.server import EngineServer
from .._engineio.session import EngineSession
from .._logs import Throttled
from ..brokers import DEFAULT_QUERY_TIMEOUT, Broker, LocalBroker, SocketCommand
from ..protocol.errors import LocalProtocolError, RemoteProtocolError
from ..protocol.session import CloseReason
from ..protocol.socketio import PacketType
from ..types import ASGIApp, Receive, Scope, Send
from .connection import ENGINE_QUERY, Connection, auth_of
from .namespace import ConnectHandler, DisconnectHandler, Dispatcher, Namespace
from .node import ClusterNode
from .observer import Observer, Observers
from .slots import HandlerSlots
from .socket import DisconnectReason, Socket

__all__ = ("SocketIOServer",)

log = logging.getLogger("gosf")

F = TypeVar("F", bound=Callable[..., Any])

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
        """The server's options, validated."""
        self.broker: Broker = broker if broker is not None else LocalBroker()
        """Carries broadcasts to the other processes of a cluster (local: none)."""
        self._observers = Observers(self._observers_changed)
        self._observer: Observers | None = None  # the same while there are observers
        self._forwarder: Forwarder | None = None  # while running
        self.namespaces: dict[str, Namespace] = {}
        """The namespaces by name (``"/"`` always)."""
        self._node = ClusterNode(self.broker, self.namespaces)
        self.namespace("/")
        self.engine = EngineServer(options, self, node_id=self.broker.node_id)
        """The Engine.IO server under it (sessions, transports, heartbeats)."""
        self._asgi = EngineASGI(self.engine, other_app)
        self._unencodable_log = Throttled(log, UNENCODABLE_LOG_INTERVAL)
        self._slots = HandlerSlots(self.log_unencodable)

    # -- registration -----------------------------------------------------------

    def namespace(self, name: str = "/") -> Namespace:
        """The namespace ``name``, created on first use."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = Namespace(name, self.broker.publish)
            ns.observe(self._observer)
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
        return self._observers.add(observer)

    def take_observers(self, other: SocketIOServer) -> None:
        """Report to ``other``'s observers from now on, instead of this server's
        (what :meth:`gosf.App.configure` does with the server it replaces): the
        functions :meth:`observe` returned for them remove them from this one."""
        self._observers = other._observers
        self._observers.changed = self._observers_changed
        self._observers_changed()

    def _observers_changed(self) -> None:
        observer = self._observers if self._observers.observers else None
        self._observer = self._slots.observer = self._node.observer = observer
        for ns in self.namespaces.values():
            ns.observe(observer)
        if self._forwarder is not None:
            self._forwarder.observer = observer

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
        forwarder = self._forwarder = Forwarder(self.engine, self.broker.send_to)
        forwarder.observer = self._observer
        async with self._asgi.running(), anyio.create_task_group() as tg:
            await tg.start(forwarder.run)
            self.engine.forwarder = forwarder
            node = self._node
            run_broker = partial(
                self.broker.run, node.deliver, answer=node.answer, inbox=forwarder.inbox
            )
            await tg.start(run_broker)
            try:
                yield self
            finally:
                self.engine.forwarder = self._forwarder = None
                tg.cancel_scope.cancel()

    # -- across processes (gosf._socketio.node) ----------------------------------------------

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
        return await self._node.rooms(namespace, timeout)

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
        return await self._node.socket_count(namespace, timeout)

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
        return await self._node.command(command, timeout)

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

    async def on_open(self, session: EngineSession[Connection]) -> None:
        options = self.options
        conn = Connection(
            5 if session.protocol >= 4 else 4,
            options.max_concurrent_handlers,
            options.max_payload,
            self.engine.primitives.event(),
        )
        session.upper = conn
        transport = session.machine.transport
        log.debug("session %s opened (%s)", session.sid, transport)
        if self._observer is not None:
            self._observer.opened(session.sid, transport)
        session.task_group.start_soon(conn.connect_deadline, session, options.connect_timeout)
        if session.protocol < 4:
            # Socket.IO 4 (socket.io 2.x): the default namespace is joined
            # implicitly, with the handshake's query as its auth.
            query = query_params(session.scope)
            for reserved in ENGINE_QUERY:
                query.pop(reserved, None)
            await conn.connect(session, self.namespaces.get("/"), "/", query, self._observer)

    async def on_message(self, session: EngineSession[Connection], data: str | bytes) -> None:
        conn = session.upper
        if conn is None:
            return
        packet = conn.decoder.feed(data)
        if self._observer is not None:
            conn.report_received(self._observer, packet, data)
        if packet is None:
            return
        kind = packet.type
        if kind is PacketType.EVENT or kind is PacketType.BINARY_EVENT:
            socket = conn.socket_for(packet)
            slots = self._slots
            if not conn.free_slots:
                await slots.queue(session, conn, socket, packet)
                return
            conn.free_slots -= 1
            slots.inflight += 1
            try:
                started = slots.start(conn, socket, packet)
            except BaseException:
                slots.done(conn)
                raise
            if not started:
                slots.done(conn)
        elif kind is PacketType.ACK or kind is PacketType.BINARY_ACK:
            socket = conn.socket_for(packet)
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
                self._slots.drop_queued(conn, socket)
        else:
            raise RemoteProtocolError(f"a client may not send {kind.name}")

    async def on_close(self, session: EngineSession[Connection], reason: CloseReason) -> None:
        """The session ended (its tasks, the sockets' handlers among them, are done):
        close its sockets and run their disconnect handlers, side by side."""
        conn = session.upper
        session.upper = None
        if conn is None:
            return
        log.debug("session %s closed (%s): %s", session.sid, session.machine.transport, reason)
        sockets = list(conn.sockets.values())
        for socket in sockets:
            socket._close(reason)
        if self._observer is not None:
            self._observer.closed(session.sid, reason)
        if len(sockets) == 1:
            await sockets[0]._finish()
        elif sockets:
            async with anyio.create_task_group() as tg:
                for socket in sockets:
                    tg.start_soon(socket._finish)

    def on_upgrade(self, session: EngineSession[Connection]) -> None:
        """The session moved from long-polling to a websocket."""
        log.debug("session %s upgraded to websocket", session.sid)
        if self._observer is not None:
            self._observer.upgraded(session.sid)

    def on_beat(self, session: EngineSession[Connection]) -> None:
        """A heartbeat: the client's idle handler workers end (the next event starts one)."""
        conn = session.upper
        if conn is not None:
            for socket in conn.sockets.values():
                socket.workers.retire_idle()

    # -- stopping -------------------------------------------------------------------

    async def shutdown(self, grace: float) -> None:
        """Stop gracefully: refuse new sessions, give running handlers ``grace``
        seconds to finish, then disconnect every client cleanly."""
        self.engine.accepting = False
        with anyio.move_on_after(grace) as idle:
            await self._slots.wait_idle()
        await self.engine.close_all(CloseReason.SERVER_SHUTTING_DOWN, deadline=idle.deadline)

    async def wait_idle(self) -> None:
        """Wait until no event handler is running."""
        await self._slots.wait_idle()
