"""An async Socket.IO client on anyio: it runs under asyncio and trio.

::

    client = SocketIOClient()                     # protocol=4 for socket.io 2.x servers

    @client.on("news")                            # handlers first: none is missed
    async def news(item): ...

    async with client.connect("https://example.com", namespaces=["/", "/admin"]):
        await client.emit("hello", "world")
        answer = await client.call("echo", 1, timeout=5)    # the server's ack
        await client.wait_disconnected()

How it works: ``connect`` opens an Engine.IO session over a websocket
(:mod:`gosf._client.engineio`), then starts the client's tasks in a task
group that the ``async with`` block holds: the reader (in
:mod:`gosf._client.connection`, with the per-connection state), the pinger
(``protocol=4``: there the client pings) and one task per running async
handler; nothing outlives the block. Handler exceptions
are logged, never fatal. When the connection ends (the server, the network, a
ping timeout, or :meth:`disconnect`) pending calls fail with
:class:`~gosf.Disconnected` and :meth:`wait_disconnected` returns, but the
block goes on until it exits; leaving it disconnects (DISCONNECT packets, then
the websocket close) and cancels the client's tasks. The same client may
connect again after the block (handlers stay registered).
"""

from __future__ import annotations

import inspect
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from itertools import count
from typing import Any, Literal, TypeVar, overload
from urllib.parse import urlencode, urlsplit

import anyio

from .._errors import ConnectionClosed, Disconnected
from ..protocol.parser import Parser, ParserName, parser_named
from ..protocol.socketio import Packet, PacketType
from .connection import ANY_EVENT, Connection, Handler, JoinedNamespace, Waiter
from .engineio import ClientDisconnectReason, Connector, open_engine

__all__ = ("SocketIOClient",)

H = TypeVar("H", bound=Handler)

_RESERVED = frozenset({"connect", "connect_error", "disconnect", "disconnecting"})


class SocketIOClient:
    """A Socket.IO client: handlers are registered on it, connections made with :meth:`connect`.

    ``protocol`` is 5 (socket.io 3.x/4.x servers, Engine.IO 4) or 4 (socket.io
    2.x servers such as GOSF in Go, Engine.IO 3). At most
    ``max_concurrent_handlers`` async handlers run at once. ``parser`` is the
    server's codec: ``"json"``, or ``"msgpack"`` for a server whose parser is
    msgpack (``gosf[msgpack]``).

    Raises:
        ValueError: another protocol or parser, or ``max_concurrent_handlers`` < 1.
    """

    def __init__(
        self,
        *,
        protocol: Literal[4, 5] = 5,
        max_concurrent_handlers: int = 64,
        parser: ParserName | Parser = "json",
    ) -> None:
        if protocol not in (4, 5):
            raise ValueError(f"protocol must be 5 or 4, not {protocol!r}")
        if max_concurrent_handlers < 1:
            raise ValueError("max_concurrent_handlers must be >= 1")
        self.protocol = protocol
        """The Socket.IO revision spoken: 5 (socket.io 3+), or 4 (socket.io 2.x servers)."""
        self.max_concurrent_handlers = max_concurrent_handlers
        """Async event handlers that may run at once."""
        self.parser = parser_named(parser)
        """The server's codec (``gosf.protocol.parser``)."""
        self._handlers: dict[tuple[str, str], tuple[Handler, bool]] = {}
        self._conn: Connection | None = None  # the current or last connection
        self._active = False  # inside connect()
        self._ids = count()

    # -- state ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is up with at least one namespace connected."""
        conn = self._conn
        return (
            conn is not None
            and not conn.closed.is_set()
            and any(ns.connected for ns in conn.namespaces.values())
        )

    @property
    def namespaces(self) -> frozenset[str]:
        """The namespaces connected now."""
        conn = self._conn
        if conn is None or conn.closed.is_set():
            return frozenset()
        return frozenset(name for name, ns in conn.namespaces.items() if ns.connected)

    @property
    def disconnect_reason(self) -> ClientDisconnectReason | None:
        """Why the last connection ended (a :class:`~gosf.ClientDisconnectReason`, equal
        to socket.io-client's words such as ``"io server disconnect"``); ``None`` while
        connected or before the first connection."""
        conn = self._conn
        return conn.reason if conn is not None and conn.closed.is_set() else None

    def recovered(self, namespace: str = "/") -> bool:
        """Whether the connection to ``namespace`` took back the session of the
        last one, which dropped: its sid, rooms and state on the server, and
        the events sent meanwhile (delivered to the handlers before any new
        one). Needs a server with connection state recovery on (``gosf.Recovery``)."""
        ns = self._conn.namespaces.get(namespace) if self._conn is not None else None
        return ns is not None and ns.connected and ns.recovered

    def sid(self, namespace: str = "/") -> str | None:
        """The Socket.IO session id in ``namespace``, ``None`` when not connected there."""
        ns = self._conn.namespaces.get(namespace) if self._conn is not None else None
        return ns.sid if ns is not None and ns.connected else None

    async def wait_disconnected(self) -> None:
        """Return once the connection has ended (at once when there is none)."""
        if self._conn is not None:
            await self._conn.closed.wait()

    # -- handlers ---------------------------------------------------------------------------

    @overload
    def on(self, event: str, *, namespace: str = "/") -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, handler: H, *, namespace: str = "/") -> H: ...
    def on(self, event: str, handler: H | None = None, *, namespace: str = "/") -> Any:
        """Register ``handler(*args)`` for ``event`` (directly or as a decorator).

        Async handlers each run in their own task; sync ones run in the reader,
        in arrival order, so they must not block. The return value is the ack
        when the server asked for one (``None``: an empty ack, a tuple: several
        arguments). Registering again replaces the handler.

        Raises:
            ValueError: ``event`` is reserved (connect, disconnect...): use
                :attr:`connected` and :meth:`wait_disconnected` instead.
        """
        if event in _RESERVED:
            raise ValueError(f"{event!r} is a reserved event name")

        def register(func: H) -> H:
            is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
                getattr(func, "__call__", None)  # noqa: B004 - async callable objects
            )
            self._handlers[namespace, event] = (func, is_async)
            return func

        return register if handler is None else register(handler)

    def on_any(self, handler: H, *, namespace: str = "/") -> H:
        """Register ``handler(event, *args)`` for every event without a handler of its own."""
        is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._handlers[namespace, ANY_EVENT] = (handler, is_async)
        return handler

    def off(self, event: str, *, namespace: str = "/") -> None:
        """Remove the handler of ``event`` (if any)."""
        self._handlers.pop((namespace, event), None)

    # -- talking ----------------------------------------------------------------------------

    async def emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Send ``event`` with ``args`` (bytes anywhere in them go as binary attachments).

        Raises:
            Disconnected: ``namespace`` is not connected, or the connection closed.
            ValueError: ``event`` is a reserved name.
            LocalProtocolError: ``args`` are not JSON-serialisable.
        """
        conn, _ = self._namespace(event, namespace)
        await conn.send(self.parser.encode_event(namespace, event, args))

    async def call(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        timeout: float | None = 30.0,  # noqa: ASYNC109 - the deadline is part of the call
    ) -> Any:
        """Send ``event`` and return the server's ack: its one argument, ``None`` for
        none, a tuple for several.

        Raises:
            TimeoutError: no ack within ``timeout`` seconds (``None``: wait forever).
            Disconnected: ``namespace`` is not connected, or the connection closed first.
            ValueError, LocalProtocolError: as :meth:`emit`.
        """
        conn, ns = self._namespace(event, namespace)
        ack_id = next(self._ids)
        waiter = ns.acks[ack_id] = Waiter()
        try:
            with anyio.fail_after(timeout):
                await conn.send(self.parser.encode_event(namespace, event, args, ack_id))
                await waiter.done.wait()
        finally:
            ns.acks.pop(ack_id, None)
        return waiter.value()

    async def disconnect(self, namespace: str | None = None) -> None:
        """Leave ``namespace``, or every namespace and the connection (``None``).

        Leaving the last namespace closes the connection. Never raises; does
        nothing when not connected.
        """
        conn = self._conn
        if conn is None:
            return
        if namespace is not None:
            ns = conn.namespaces.get(namespace)
            if ns is None or not ns.connected:
                return
            if len(self.namespaces) > 1:
                await conn.leave(ns, ClientDisconnectReason.IO_CLIENT_DISCONNECT)
                return
        await conn.shutdown(ClientDisconnectReason.IO_CLIENT_DISCONNECT)

    def _namespace(self, event: str, namespace: str) -> tuple[Connection, JoinedNamespace]:
        if event in _RESERVED:
            raise ValueError(f"{event!r} is a reserved event name")
        conn = self._conn
        ns = conn.namespaces.get(namespace) if conn is not None else None
        if conn is None or ns is None or not ns.connected or conn.closed.is_set():
            raise Disconnected(f"namespace {namespace!r} is not connected")
        return conn, ns

    # -- connecting -------------------------------------------------------------------------

    @asynccontextmanager
    async def connect(
        self,
        url: str,
        *,
        namespaces: str | Iterable[str] = ("/",),
        auth: dict[str, Any] | None = None,
        path: str = "/socket.io",
        headers: Iterable[tuple[str, str]] = (),
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | None = None,
        connect_timeout: float = 10.0,
        connector: Connector | None = None,
    ) -> AsyncIterator[SocketIOClient]:
        """Connect to the server at ``url`` for the duration of the ``async with`` block.

        ``url`` is ``http(s)://`` or ``ws(s)://`` host and port, optionally with a
        query string passed on to the server; the namespaces go in ``namespaces``
        and the server's path in ``path``. ``auth`` is sent with each namespace's
        CONNECT (protocol 4: as query parameters). In protocol 4 the default
        namespace is always connected (the server joins it implicitly). TLS
        verifies the server (``ssl_context`` or a ``ca_file`` bundle to override).
        Returns once every namespace is connected; ``connect_timeout`` bounds it all.
        ``connector`` replaces the network (``gosf.testing.asgi_connector(app)``
        talks to an ASGI app in memory). Yields the client itself.

        Raises:
            ValueError: a bad URL (with a path) or namespace, or ``ssl_context`` and ``ca_file``.
            RuntimeError: the client is already connected.
            ConnectionRefused: the server refused a namespace (its message and data).
            Disconnected: the server closed the connection while connecting.
            TimeoutError: not connected within ``connect_timeout``.
            OSError, gosf._client.websocket.HandshakeError: the server could not be reached,
                its certificate was refused, or it refused the websocket upgrade.
            RemoteProtocolError: the server did not open an Engine.IO session.
        """
        if self._active:
            raise RuntimeError("the client is already connected")
        if urlsplit(url).path not in ("", "/"):
            raise ValueError(f"put the namespace in namespaces= and the path in path=: {url!r}")
        names = self._check_namespaces(namespaces)
        query = [(k, str(v)) for k, v in (auth or {}).items()] if self.protocol == 4 else []
        deadline = anyio.current_time() + connect_timeout
        resumes: dict[str, dict[str, str]] = {}  # recovery: the pid and offset per namespace
        error: Exception | None = None
        self._active = True
        try:
            async with open_engine(
                url,
                protocol=4 if self.protocol == 5 else 3,
                path=path,
                query=query,
                headers=headers,
                ssl_context=ssl_context,
                ca_file=ca_file,
                connect_timeout=connect_timeout,
                connector=connector,
            ) as engine:
                last = self._conn
                conn = self._conn = Connection(
                    engine, self.protocol, names, self._handlers, self.parser
                )
                if last is not None and self.protocol == 5:
                    for ns in conn.namespaces.values():
                        resumes[ns.name] = ns.resume_from(last.namespaces.get(ns.name))
                try:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(conn.read, tg, anyio.Semaphore(self.max_concurrent_handlers))
                        tg.start_soon(engine.heartbeat)
                        try:
                            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                                await self._connect_namespaces(conn, auth, resumes)
                            yield self
                        except Exception as exc:  # raised below, not in an ExceptionGroup
                            error = exc
                        finally:
                            await conn.shutdown(ClientDisconnectReason.IO_CLIENT_DISCONNECT)
                            tg.cancel_scope.cancel()
                finally:
                    conn.end(ClientDisconnectReason.IO_CLIENT_DISCONNECT)
        except ConnectionClosed as exc:  # only from open_engine: later closes are handled
            raise Disconnected(f"the server closed the connection while connecting: {exc}") from exc
        finally:
            self._active = False
        if error is not None:
            raise error

    def _check_namespaces(self, namespaces: str | Iterable[str]) -> list[str]:
        names = [namespaces] if isinstance(namespaces, str) else list(dict.fromkeys(namespaces))
        if self.protocol == 4 and "/" not in names:
            names.insert(0, "/")
        for name in names:
            if not name.startswith("/") or "," in name or "?" in name:
                raise ValueError(f"bad namespace {name!r}: must start with '/', no ',' or '?'")
        if not names:
            raise ValueError("no namespace to connect")
        return names

    async def _connect_namespaces(
        self, conn: Connection, auth: dict[str, Any] | None, resumes: dict[str, dict[str, str]]
    ) -> None:
        for ns in conn.namespaces.values():
            if self.protocol == 5:
                resume = resumes.get(ns.name)
                data = {**resume, **(auth or {})} if resume else auth
                await conn.send(self.parser.encode(Packet(PacketType.CONNECT, ns.name, data), 5))
            elif ns.name != "/":  # protocol 4: "/" is implicit, the others carry a query
                data = {"query": urlencode(auth)} if auth else None
                await conn.send(self.parser.encode(Packet(PacketType.CONNECT, ns.name, data), 4))
        for ns in conn.namespaces.values():
            await ns.ready.wait()
            if ns.error is not None:
                raise ns.error
            if not ns.connected:
                raise Disconnected(f"closed while connecting {ns.name}: {conn.reason}")
