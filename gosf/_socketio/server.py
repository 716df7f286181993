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
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, Literal, TypeVar

import anyio

from .._cluster.forward import Forwarder
from .._config import ServerOptions
from .._engineio.asgi import EngineASGI, serve_lifespan
from .._engineio.http import query_params
from .._engineio.server import EngineServer
from .._engineio.session import EngineSession
from .._logs import Throttled
from ..brokers import (
    DEFAULT_QUERY_TIMEOUT,
    Broker,
    FetchSockets,
    LocalBroker,
    RoomsCommand,
    SocketCommand,
    SocketInfo,
)
from ..protocol.errors import LocalProtocolError, RemoteProtocolError
from ..protocol.parser import Parser, ParserName, parser_named
from ..protocol.session import CloseReason
from ..protocol.socketio import PacketType
from ..types import ASGIApp, Receive, Scope, Send
from .acks import AckStream, BroadcastAcks
from .adapter import Adapter
from .connection import ENGINE_QUERY, Connection, auth_of
from .dynamic import (
    DEFAULT_MAX_CHILDREN,
    DEFAULT_MAX_CHILDREN_PER_CLIENT,
    NamePattern,
    ParentNamespace,
)
from .handover import Handover
from .namespace import ConnectHandler, DisconnectHandler, Dispatcher, Namespace, RecoverHandler
from .node import ClusterNode
from .observer import Observer, Observers
from .queries import room_names
from .recovery import (
    RECOVERABLE,
    SWEEP_INTERVAL,
    MemoryStore,
    ParkedSession,
    SessionStore,
    sweep_every,
)
from .serverside import ServerSideAcks
from .slots import HandlerSlots
from .socket import DisconnectReason, Socket
from .typed import typed_handler

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
    :class:`pydantic.ValidationError`). ``parser`` is the codec of every
    client (``"json"``, the default, or ``"msgpack"`` for npm
    ``socket.io-msgpack-parser``, or a :class:`gosf.protocol.parser.Parser`);
    by name it is the option of that name.
    """

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        other_app: ASGIApp | None = None,
        broker: Broker | None = None,
        parser: ParserName | Parser | None = None,
        **option_values: Any,
    ) -> None:
        if isinstance(parser, str):
            option_values["parser"] = parser
        if options is None:
            options = ServerOptions(**option_values)
        elif option_values:
            options = ServerOptions(**{**options.model_dump(), **option_values})
        self.options = options
        """The server's options, validated."""
        self.parser: Parser = parser_named(options.parser if parser is None else parser)
        """The codec of every client of this server (``gosf.protocol.parser``)."""
        self.broker: Broker = broker if broker is not None else LocalBroker()
        """Carries broadcasts to the other processes of a cluster (local: none)."""
        self._observers = Observers()
        self._observer: Observers | None = None  # the same while there are observers
        self.namespaces: dict[str, Namespace] = {}
        """The namespaces by name (``"/"`` always)."""
        self._node = ClusterNode(self.broker, self.namespaces)
        self.parents: list[ParentNamespace] = []
        """The dynamic namespaces' parents, asked in order (:meth:`dynamic_namespace`)."""
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
            ns = self.namespaces[name] = Namespace(name, self.broker.publish, self.parser)
            ns.observe(self._observer)
            self._recovering(ns)
        return ns

    def dynamic_namespace(
        self,
        pattern: NamePattern,
        *,
        max_children: int = DEFAULT_MAX_CHILDREN,
        max_children_per_client: int = DEFAULT_MAX_CHILDREN_PER_CLIENT,
        cleanup_empty: bool = True,
    ) -> ParentNamespace:
        """Accept every namespace whose name matches ``pattern`` (a template
        such as ``"/tenant-{id}"``, a regular expression, or a predicate on
        names), with the handlers registered on the parent returned (Node's
        ``io.of(regex)``; ``gosf._socketio.dynamic`` has the rules).

        >>> tenants = server.dynamic_namespace("/tenant-{id}")
        >>> tenants.on("hello", hello)   # socket.namespace.name: "/tenant-7"

        Raises:
            ValueError: a template that does not start with ``/``, or
                ``max_children`` or ``max_children_per_client`` below one.
            TypeError: ``pattern`` is not a template, an expression or a predicate.
        """
        parent = ParentNamespace(
            pattern,
            self.namespaces,
            self.broker.publish,
            self.parser,
            max_children=max_children,
            max_children_per_client=max_children_per_client,
            cleanup_empty=cleanup_empty,
        )
        self.parents.append(parent)
        return parent

    def on(self, event: str, *, namespace: str = "/") -> Callable[[F], F]:
        """Decorator: register an ``async def handler(socket, *args)`` for ``event``.

        The handler's return value is sent as the ack when the client asked
        for one (``None`` = an empty ack, a tuple = several arguments). A
        parameter annotated with a pydantic model (or a dataclass) gets the
        argument validated; one that does not fit never reaches the handler
        (``_socketio/typed.py``).

        Raises:
            ValueError: the event already has a handler.
        """

        def register(handler: F) -> F:
            self.namespace(namespace).on(event, typed_handler(handler))
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
        self._observer = self._slots.observer = self._node.observer = observer
        for ns in self.namespaces.values():
            ns.observe(observer)

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

    def on_recover(self, handler: RecoverHandler, *, namespace: str = "/") -> RecoverHandler:
        """Register ``async def on_recover(socket)``, run instead of the connect
        handlers when a socket is recovered (``socket.recovered``) and
        ``Recovery.skip_connect_handlers`` is on (the default)."""
        self.namespace(namespace).recover_handlers.append(handler)
        return handler

    async def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        namespace: str = "/",
        skip: Socket | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        volatile: bool = False,
    ) -> int:
        """Broadcast ``event`` to a namespace or to rooms in it, but ``skip`` and
        the members of ``skip_rooms``; see :meth:`Namespace.emit`."""
        ns = self.namespaces.get(namespace)
        if ns is None:
            if not any(parent.accepts(namespace) for parent in self.parents):
                return 0
            # A dynamic namespace with no socket here may have some in the
            # other processes: a namespace of the moment publishes to them.
            ns = Namespace(namespace, self.broker.publish, self.parser)
        return await ns.emit(
            event, *args, to=to, skip=skip, skip_rooms=skip_rooms, volatile=volatile
        )

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
            node = self._node
            node.forward, node.server_side.tasks = forwarder.inbox, tg
            node.acks.tasks = tg
            run_broker = partial(
                self.broker.run, node.deliver, answer=node.answer, inbox=node.inbox
            )
            await tg.start(run_broker)
            recovery = self.options.recovery
            if recovery is not None:
                interval = min(recovery.max_disconnection_duration, SWEEP_INTERVAL)
                tg.start_soon(sweep_every, self._recovery_stores, interval)
            try:
                yield self
            finally:
                node.forward = node.server_side.tasks = node.acks.tasks = None
                self.engine.forwarder = None
                tg.cancel_scope.cancel()

    def _recovering(self, ns: Namespace) -> None:
        """Give ``ns`` its recovery store, with recovery on (once: a dynamic
        child keeps its own while it lives)."""
        if self.options.recovery is not None and ns.adapter.recovery is None:
            store = MemoryStore(self.options.recovery, self.parser)
            store.fetch = Handover(self.broker, ns.name, store)
            ns.adapter.recovery = store

    def _recovery_stores(self) -> list[SessionStore]:
        return [ns.adapter.recovery for ns in self.namespaces.values() if ns.adapter.recovery]

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

    def on_server_side(self, event: str, *, namespace: str = "/") -> Callable[[F], F]:
        """Decorator: register ``async def handler(*args)`` for the server-side
        event ``event`` that *other* processes of the cluster send
        (:meth:`server_side_emit`); its return value answers
        :meth:`server_side_emit_with_ack`.

        Raises:
            ValueError: the event already has a handler.
            TypeError: ``handler`` is not an ``async def`` function.
        """

        def register(handler: F) -> F:
            self._node.server_side.on(namespace, event, handler)
            return handler

        return register

    async def server_side_emit(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """Send ``event`` with ``args`` (JSON-serialisable) to the server-side
        handlers of every *other* process of the cluster (Node's
        ``serverSideEmit``); how many processes took it (have a handler).

        Returns once every process has said whether it took it, or after
        ``timeout`` seconds; it does not wait for the handlers.

        Raises:
            ValueError: ``timeout`` is not positive.
            TypeError: ``args`` cannot be encoded to cross processes.
        """
        return await self._node.server_side.emit(namespace, event, args, timeout)

    async def server_side_emit_with_ack(
        self,
        event: str,
        *args: Any,
        timeout: float,  # noqa: ASYNC109
        namespace: str = "/",
    ) -> ServerSideAcks:
        """Like :meth:`server_side_emit`, and gather what each other process's
        handler returns (Node's ``serverSideEmitWithAck``), for at most
        ``timeout`` seconds in all: the answers by node id, and how many
        processes took the event but did not answer in time.

        Raises:
            ValueError: ``timeout`` is not positive.
            TypeError: ``args`` cannot be encoded to cross processes.
        """
        return await self._node.server_side.emit_with_ack(namespace, event, args, timeout)

    # -- many sockets at once, here and in the cluster (queries.py, acks.py) ------------------

    def _adapter(self, namespace: str) -> Adapter[Socket]:
        """The adapter of ``namespace``; an empty one when this process has not
        made it (the other processes may have)."""
        ns = self.namespaces.get(namespace)
        return ns.adapter if ns is not None else Adapter(namespace)

    async def fetch_sockets(
        self,
        rooms: str | Iterable[str] | None = None,
        *,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> list[SocketInfo]:
        """The connected sockets of the cluster in any of ``rooms`` (``None``: all)
        but those in any of ``skip_rooms``, this process's first (Node's
        ``fetchSockets``); processes that do not answer within ``timeout``
        seconds are left out.

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        query = FetchSockets(namespace, room_names(rooms), room_names(skip_rooms) or ())
        return await self._node.fetch_sockets(query, timeout)

    async def sockets_join(
        self,
        room: str | Iterable[str],
        *,
        rooms: str | Iterable[str] | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """Put the sockets of the cluster that ``rooms`` and ``skip_rooms`` select
        (as :meth:`fetch_sockets`) in ``room`` (one or several); how many
        (Node's ``socketsJoin``).

        Raises:
            ValueError: no room to join, or ``timeout`` is not positive.
        """
        return await self._rooms_command(
            "sockets-join", room, rooms, skip_rooms, namespace, timeout
        )

    async def sockets_leave(
        self,
        room: str | Iterable[str],
        *,
        rooms: str | Iterable[str] | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """Take the sockets of the cluster that ``rooms`` and ``skip_rooms`` select
        out of ``room`` (one or several; never their own); how many (Node's
        ``socketsLeave``).

        Raises:
            ValueError: no room to leave, or ``timeout`` is not positive.
        """
        return await self._rooms_command(
            "sockets-leave", room, rooms, skip_rooms, namespace, timeout
        )

    async def disconnect_sockets(
        self,
        rooms: str | Iterable[str] | None = None,
        *,
        close: bool = False,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """Disconnect the sockets of the cluster that ``rooms`` and ``skip_rooms``
        select from ``namespace`` or, with ``close``, close their clients'
        whole connections; how many (Node's ``disconnectSockets``).

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        command = RoomsCommand(
            "sockets-disconnect",
            namespace,
            room_names(rooms),
            room_names(skip_rooms) or (),
            close=close,
        )
        return await self._node.rooms_command(command, timeout)

    async def _rooms_command(
        self,
        op: Literal["sockets-join", "sockets-leave"],
        to: str | Iterable[str],
        rooms: str | Iterable[str] | None,
        skip_rooms: str | Iterable[str] | None,
        namespace: str,
        timeout: float,  # noqa: ASYNC109
    ) -> int:
        targets = room_names(to) or ()
        command = RoomsCommand(
            op, namespace, room_names(rooms), room_names(skip_rooms) or (), targets
        )
        return await self._node.rooms_command(command, timeout)

    def stream_acks(
        self,
        event: str,
        *args: Any,
        timeout: float,
        to: str | Iterable[str] | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
    ) -> AbstractAsyncContextManager[AckStream]:
        """Broadcast ``event`` to the cluster's sockets in ``to`` (``None``: all) but
        those in ``skip_rooms``, asking each for an ack within ``timeout``
        seconds; ``async with`` it for the :class:`AckStream` of their answers,
        ``(sid, answer)`` as they come. Leaving the block stops the collection.

        Raises:
            ValueError: ``timeout`` is not positive.
            LocalProtocolError: the parser cannot carry ``args`` (nothing was sent).
        """
        rooms = room_names(to)
        adapter = self._adapter(namespace)
        return self._node.acks.stream(
            adapter, self.parser, event, args, rooms, room_names(skip_rooms) or (), timeout
        )

    async def emit_with_ack(
        self,
        event: str,
        *args: Any,
        timeout: float,  # noqa: ASYNC109
        to: str | Iterable[str] | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
    ) -> BroadcastAcks:
        """:meth:`stream_acks`, gathered: every answer by sid, and who did not answer,
        once all have answered (or disconnected) or ``timeout`` has passed.

        Raises:
            ValueError: ``timeout`` is not positive.
            LocalProtocolError: the parser cannot carry ``args`` (nothing was sent).
        """
        rooms = room_names(to)
        adapter = self._adapter(namespace)
        return await self._node.acks.collect(
            adapter, self.parser, event, args, rooms, room_names(skip_rooms) or (), timeout
        )

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
            self.parser,
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
            ns = self.namespaces.get(name)
            if ns is None and self.parents:
                await self._connect_dynamic(session, conn, name, auth_of(packet))
                return
            await conn.connect(session, ns, name, auth_of(packet), self._observer)
        elif kind is PacketType.DISCONNECT:
            if packet.namespace in conn.sockets:
                socket = conn.sockets.pop(packet.namespace)
                socket._close(DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)
                self._slots.drop_queued(conn, socket)
        else:
            raise RemoteProtocolError(f"a client may not send {kind.name}")

    async def _connect_dynamic(
        self, session: EngineSession[Connection], conn: Connection, name: str, auth: Any
    ) -> None:
        """A CONNECT to a name that is no namespace (yet): the first parent that
        accepts it makes the child (``gosf._socketio.dynamic``)."""
        for parent in self.parents:
            child = parent.child(name, conn.sockets, self._observer)
            if child is not None:
                self._recovering(child)
                try:
                    await conn.connect(session, child, name, auth, self._observer)
                finally:
                    parent.connected(child)
                return
        await conn.connect(session, None, name, auth, self._observer)  # refused

    async def on_close(self, session: EngineSession[Connection], reason: CloseReason) -> None:
        """The session ended (its tasks, the sockets' handlers among them, are done):
        close its sockets and run their disconnect handlers, side by side."""
        conn = session.upper
        session.upper = None
        if conn is None:
            return
        sockets = list(conn.sockets.values())
        # Snapshots first: closing takes the sockets out of their rooms.
        parked = [_parked(socket) for socket in sockets] if reason in RECOVERABLE else []
        for socket in sockets:
            socket._close(reason)
        if len(sockets) == 1:
            await sockets[0]._finish()
        elif sockets:
            async with anyio.create_task_group() as tg:
                for socket in sockets:
                    tg.start_soon(socket._finish)
        # Parked only now: the old socket is out of the namespace's tables
        # before a new one may take its sid.
        for store, kept in filter(None, parked):
            await store.park(kept)

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


def _parked(socket: Socket) -> tuple[SessionStore, ParkedSession] | None:
    """What to park of ``socket`` (its session ended unexpectedly), if it may recover."""
    store = socket.namespace.adapter.recovery
    if store is None or socket.pid is None or not socket.connected:
        return None
    session = ParkedSession(socket.pid, socket.sid, socket.rooms, socket.state, socket._since)
    return store, session
