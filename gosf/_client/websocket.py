"""A websocket client on anyio: wsproto does the protocol, this module only moves bytes.

::

    async with connect_websocket("wss://example.com/socket.io/?EIO=4") as ws:
        await ws.send("2probe")
        reply = await ws.receive()      # str (text frame) or bytes (binary frame)

How it works: nothing runs in the background. :meth:`WebSocket.receive` reads
from the TCP (or TLS) stream, feeds wsproto and returns the next complete
message, answering pings and the peer's close frame on the way; every write
(messages, pongs, the close frame) goes out under one lock, so frames of
concurrent senders never interleave. Pings are therefore answered only while
somebody is receiving, which is the case in the Socket.IO client (its reader
always is).

Memory bound: a connection holds at most one read of ``READ_SIZE`` bytes worth
of parsed events plus the message being assembled, which may not grow past
``max_message_size`` (a larger message closes the connection with code 1009,
"message too big"). With the defaults that is 64 KiB + 16 MiB per connection.
Received messages are never queued beyond that: a slow reader simply leaves
data in the kernel's socket buffer, and TCP flow control slows the peer down.

Exceptions (defined in :mod:`gosf._errors`)::

    GosfError
    └── WebSocketError
        ├── HandshakeError      the server refused the upgrade (HTTP status, body)
        └── ConnectionClosed    the connection is closed (close code and reason)

``connect_websocket`` also raises :class:`OSError` (connection refused,
unresolvable host, TLS verification failure as :class:`ssl.SSLError`) and
:class:`TimeoutError` (``connect_timeout`` elapsed).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
from anyio.abc import ByteStream
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .._errors import ConnectionClosed, HandshakeError

__all__ = (
    "WebSocket",
    "WebSocketURL",
    "connect_websocket",
)

READ_SIZE = 65536
"""Bytes read from the network at a time."""

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""Default bound of one received message, in bytes (text: characters)."""

CLOSE_TIMEOUT = 2.0
"""Seconds :meth:`WebSocket.aclose` waits for the peer to answer the close frame."""

_PROTOCOL_ERROR = 1002
_ABNORMAL = 1006
_TOO_BIG = 1009
_TRANSPORT_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


@dataclass(frozen=True)
class WebSocketURL:
    """A parsed ``ws``, ``wss``, ``http`` or ``https`` URL."""

    secure: bool
    host: str
    port: int
    target: str

    @classmethod
    def parse(cls, url: str) -> WebSocketURL:
        """Raises ``ValueError`` for another scheme or a URL without a host."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("ws", "wss", "http", "https"):
            raise ValueError(f"not a websocket URL (ws, wss, http or https): {url!r}")
        if not parts.hostname:
            raise ValueError(f"URL has no host: {url!r}")
        secure = scheme in ("wss", "https")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(secure, parts.hostname, parts.port or (443 if secure else 80), target)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.secure else 80) else f"{host}:{self.port}"


class WebSocket:
    """One open websocket connection (made by :func:`connect_websocket`)."""

    def __init__(self, stream: ByteStream, ws: WSConnection, *, max_message_size: int) -> None:
        self._stream = stream
        self._ws = ws
        self._max_message_size = max_message_size
        self._events: list[Event] = []  # parsed, not yet consumed (kept across cancellation)
        self._parts: list[str | bytes] = []  # fragments of the message being assembled
        self._size = 0
        self._write_lock = anyio.Lock()
        self._read_lock = anyio.Lock()
        self._closed: ConnectionClosed | None = None
        self._close_seen = anyio.Event()

    @property
    def closed(self) -> ConnectionClosed | None:
        """``None`` while open, else how it closed."""
        return self._closed

    async def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message.

        Raises:
            ConnectionClosed: the connection is closed or closing.
        """
        event = TextMessage(message) if isinstance(message, str) else BytesMessage(message)
        await self._write(event)

    async def receive(self) -> str | bytes:
        """The next message: ``str`` for a text message, ``bytes`` for a binary one.

        Cancel-safe: a cancelled call loses nothing. Concurrent calls take turns.

        Raises:
            ConnectionClosed: the peer closed the connection (its close frame is
                answered first), the network failed (code 1006), or a message
                exceeded ``max_message_size`` (code 1009).
        """
        async with self._read_lock:
            while True:
                if self._closed is not None:
                    raise self._closed
                if not self._events:
                    await self._read()
                    continue
                event = self._events.pop(0)
                if isinstance(event, TextMessage | BytesMessage):
                    message = self._assemble(event)
                    if message is not None:
                        return message
                    if self._size > self._max_message_size:
                        await self._fail(_TOO_BIG, "message too big")
                elif isinstance(event, Ping):
                    await self._write(event.response(), quiet=True)
                elif isinstance(event, CloseConnection):
                    if self._ws.state is ConnectionState.REMOTE_CLOSING:
                        await self._write(event.response(), quiet=True)
                    self._set_closed(ConnectionClosed(event.code, event.reason or ""))

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: send a close frame, wait (at most ``CLOSE_TIMEOUT``
        seconds) for the peer's, then close the stream. Never raises for a
        connection that is already closed or broken."""
        with anyio.CancelScope(shield=True):
            if self._ws.state is ConnectionState.OPEN:
                await self._write(CloseConnection(code, reason), quiet=True)
            with anyio.move_on_after(CLOSE_TIMEOUT):
                if self._read_lock.locked():
                    await self._close_seen.wait()  # a receiver will see the reply
                else:
                    while self._closed is None:
                        try:
                            await self.receive()
                        except ConnectionClosed:
                            break
            self._set_closed(ConnectionClosed(code, reason))
            await self._stream.aclose()

    # -- internals ------------------------------------------------------------------------

    def _assemble(self, event: TextMessage | BytesMessage) -> str | bytes | None:
        """The message ``event`` completes, or ``None`` (check ``_size`` for overflow)."""
        data: str | bytes = event.data if isinstance(event.data, str) else bytes(event.data)
        self._size += len(data)
        if self._size > self._max_message_size:
            self._parts = []  # dropped: the caller closes the connection
            return None
        if not event.message_finished:
            self._parts.append(data)
            return None
        parts, self._parts, self._size = self._parts, [], 0
        if not parts:
            return data
        if isinstance(data, str):
            return "".join([p for p in parts if isinstance(p, str)]) + data
        return b"".join([p for p in parts if isinstance(p, bytes)]) + data

    async def _read(self) -> None:
        try:
            data: bytes | None = await self._stream.receive(READ_SIZE)
        except anyio.EndOfStream:
            data = None
        except _TRANSPORT_ERRORS as exc:
            self._set_closed(ConnectionClosed(_ABNORMAL, f"transport error: {exc!r}"))
            return
        try:
            self._ws.receive_data(data)
            self._events.extend(self._ws.events())
        except LocalProtocolError:  # data after the connection closed
            self._set_closed(ConnectionClosed(_ABNORMAL, "connection lost"))
        except RemoteProtocolError as exc:  # only during the upgrade: a bad HTTP response
            self._set_closed(ConnectionClosed(_PROTOCOL_ERROR, f"bad upgrade response: {exc}"))
        if data is None and self._ws.connection is None:
            self._set_closed(ConnectionClosed(_ABNORMAL, "connection closed during the upgrade"))

    async def _fail(self, code: int, reason: str) -> None:
        if self._ws.state is ConnectionState.OPEN:
            await self._write(CloseConnection(code, reason), quiet=True)
        self._set_closed(ConnectionClosed(code, reason))
        await self._stream.aclose()

    async def _write(self, event: Event, *, quiet: bool = False) -> None:
        async with self._write_lock:
            try:
                if self._closed is not None:
                    raise self._closed
                data = self._ws.send(event)
                await self._stream.send(data)
            except LocalProtocolError:
                if not quiet:
                    raise ConnectionClosed(_ABNORMAL, "the connection is closing") from None
            except _TRANSPORT_ERRORS as exc:
                closed = ConnectionClosed(_ABNORMAL, f"transport error: {exc!r}")
                self._set_closed(closed)
                if not quiet:
                    raise closed from exc
            except ConnectionClosed:
                if not quiet:
                    raise

    def _set_closed(self, closed: ConnectionClosed) -> None:
        if self._closed is None:
            self._closed = closed
        self._close_seen.set()


def _ssl_context(ssl_context: ssl.SSLContext | None, ca_file: str | None) -> ssl.SSLContext:
    if ssl_context is not None and ca_file is not None:
        raise ValueError("give ssl_context or ca_file, not both")
    return ssl_context or ssl.create_default_context(cafile=ca_file)


@asynccontextmanager
async def connect_websocket(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    ca_file: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    connect_timeout: float = 10.0,
    max_message_size: int = MAX_MESSAGE_SIZE,
) -> AsyncIterator[WebSocket]:
    """Open a websocket to ``url`` (``ws://``, ``wss://``, ``http://`` or ``https://``).

    TLS (``wss``/``https``) verifies the server with ``ssl.create_default_context()``
    unless ``ssl_context`` is given; ``ca_file`` trusts a CA bundle instead of the
    system's. ``headers`` are added to the upgrade request. ``connect_timeout``
    bounds the TCP connect, the TLS handshake and the upgrade together. A
    received message larger than ``max_message_size`` closes the connection
    (see the module's memory bound). The connection is closed
    (:meth:`WebSocket.aclose`) when the block exits.

    Raises:
        ValueError: a bad URL, or both ``ssl_context`` and ``ca_file``.
        OSError: the TCP connection or the TLS handshake failed.
        TimeoutError: the connection was not open within ``connect_timeout``.
        HandshakeError: the server refused the upgrade.
        ConnectionClosed: the server closed the connection during the upgrade, or
            answered it with a malformed HTTP response.
    """
    target = WebSocketURL.parse(url)
    context = _ssl_context(ssl_context, ca_file) if target.secure else None
    with anyio.fail_after(connect_timeout):
        stream: ByteStream
        if context is not None:
            # tls_standard_compatible=False: the websocket close handshake ends the
            # conversation, so a peer that drops TCP without close_notify is fine.
            stream = await anyio.connect_tcp(
                target.host,
                target.port,
                ssl_context=context,
                tls_standard_compatible=False,
            )
        else:
            stream = await anyio.connect_tcp(target.host, target.port)
        try:
            ws = await _handshake(stream, target, headers, max_message_size)
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
    try:
        yield ws
    finally:
        await ws.aclose()


async def _handshake(
    stream: ByteStream,
    target: WebSocketURL,
    headers: Iterable[tuple[str, str]],
    max_message_size: int,
) -> WebSocket:
    conn = WSConnection(ConnectionType.CLIENT)
    extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    await stream.send(
        conn.send(Request(host=target.host_header, target=target.target, extra_headers=extra))
    )
    ws = WebSocket(stream, conn, max_message_size=max_message_size)
    status: int | None = None
    body = bytearray()
    while True:
        if not ws._events:
            await ws._read()
            if ws.closed is not None:
                if status is not None:
                    raise HandshakeError(status, bytes(body))
                raise ws.closed
            continue
        event = ws._events.pop(0)
        if isinstance(event, AcceptConnection):
            return ws
        if isinstance(event, RejectConnection):
            status = event.status_code
            if not event.has_body:
                raise HandshakeError(status, b"")
        elif isinstance(event, RejectData) and status is not None:
            body += event.data
            if event.body_finished or len(body) > READ_SIZE:
                raise HandshakeError(status, bytes(body))
