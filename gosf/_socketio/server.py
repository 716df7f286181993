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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import anyio

from .._cluster.forward import Forwarder
from .._engineio.asgi import EngineASGI, serve_lifespan
from .._engineio.http import query_params
from .._engineio.server import EngineServer
from .._engineio.session import EngineSession
from .._logs import Throttled
from .._options import ServerOptions
from ..brokers import (
    Broker,
    LocalBroker,
)
from ..protocol.errors import LocalProtocolError, RemoteProtocolError
from ..protocol.parser import Parser, ParserName, parser_named
from ..protocol.session import CloseReason
from ..protocol.socketio import PacketType
from ..types import ASGIApp, Receive, Scope, Send
from .cluster_api import ClusterMethods
from .connection import ENGINE_QUERY, Connection, auth_of
from .dynamic import (
    DEFAULT_MAX_CHILDREN,
    DEFAULT_MAX_CHILDREN_PER_CLIENT,
    NamePattern,
    ParentNamespace,
)
from .handover import Handover
from .namespace import Namespace
from .node import ClusterNode
from .observer import Observer
from .observers import Observers
from .recovery import (
    RECOVERABLE,
    SWEEP_INTERVAL,
    ParkedSession,
    SessionStore,
    sweep_every,
)
from .recovery_store import MemoryStore
from .registration import HandlerRegistration
from .slots import HandlerSlots
from .socket import DisconnectReason, Socket

__all__ = ("SocketIOServer",)

log = logging.getLogger("gosf")

F = TypeVar("F", bound=Callable[..., Any])

UNENCODABLE_LOG_INTERVAL = 10.0
"""Seconds between WARNING lines about answers that cannot be encoded (the rest go to DEBUG)."""


class SocketIOServer(HandlerRegistration, ClusterMethods):
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
        self._observers = Observers(self._observers_changed)
        self._observer: Observers | None = None  # the same while there are observers
        self._forwarder: Forwarder | None = None  # while running
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
        self.services: list[Callable[[], Coroutine[Any, Any, object]]] = []
        """Tasks run for as long as the server runs (:meth:`running`), in its task
        group, cancelled when it stops: what an extension such as
        :mod:`gosf.admin` needs to work in the background."""

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
        forwarder = self._forwarder = Forwarder(self.engine, self.broker.send_to)
        forwarder.observer = self._observer
        async with self._asgi.running(), anyio.create_task_group() as tg:
            await tg.start(forwarder.run)
            self.engine.forwarder = forwarder
            self.engine.holds_new_sessions = not isinstance(self.broker, LocalBroker)
            node = self._node
            node.forward, node.server_side.tasks = forwarder.inbox, tg
            node.acks.tasks = tg
            run_broker = partial(
                self.broker.run, node.deliver, answer=node.answer, inbox=node.inbox
            )
            await tg.start(run_broker)
            for service in self.services:
                tg.start_soon(service)
            recovery = self.options.recovery
            if recovery is not None:
                interval = min(recovery.max_disconnection_duration, SWEEP_INTERVAL)
                tg.start_soon(sweep_every, self._recovery_stores, interval)
            try:
                yield self
            finally:
                node.forward = node.server_side.tasks = node.acks.tasks = None
                self.engine.forwarder = self._forwarder = None
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
            anyio.current_time() + options.connect_timeout,
            self.parser,
        )
        session.upper = conn
        transport = session.machine.transport
        log.debug("session %s opened (%s)", session.sid, transport)
        if self._observer is not None:
            self._observer.opened(session.sid, transport)
        conn.check_connect_due(session)
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
        log.debug("session %s closed (%s): %s", session.sid, session.machine.transport, reason)
        sockets = list(conn.sockets.values())
        # Snapshots first: closing takes the sockets out of their rooms.
        parked = [_parked(socket) for socket in sockets] if reason in RECOVERABLE else []
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
        # Parked only now: the old socket is out of the namespace's tables
        # before a new one may take its sid.
        for store, kept in filter(None, parked):
            await store.park(kept)

    def on_upgrade(self, session: EngineSession[Connection]) -> None:
        """The session moved from long-polling to a websocket."""
        log.debug("session %s upgraded to websocket", session.sid)
        if self._observer is not None:
            self._observer.upgraded(session.sid)

    def on_beat(self, session: EngineSession[Connection]) -> None:
        """A heartbeat: the client's idle handler workers end (the next event
        starts one), and a client that joined no namespace in time is closed."""
        conn = session.upper
        if conn is not None:
            conn.check_connect_due(session)
            for socket in conn.sockets.values():
                if socket.has_workers:
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
