"""The client side of an Engine.IO session over a websocket (protocols 4 and 3).

How it works: :func:`open_engine` opens the websocket at
``<path>/?EIO=<4|3>&transport=websocket`` and reads the OPEN packet (sid, ping
interval and timeout). Then :meth:`EngineClient.receive` returns MESSAGE data
and handles the rest on the way: in protocol 4 the server pings and the client
answers; in protocol 3 the client pings (:meth:`EngineClient.heartbeat`, a task
the caller runs) and the server answers (servers built on golang-socketio, as
GOSF in Go is, also ping: they get answers too). Either way a live server sends
something at least every ``ping_interval + ping_timeout`` seconds, so every
receive waits at most that long: a silent server counts as gone.

The codec is :mod:`gosf.protocol.engineio`; this module only does the I/O.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import anyio
import orjson

from .._errors import ConnectionClosed
from ..protocol.engineio import Packet, PacketType, decode_ws, encode_ws
from ..protocol.errors import RemoteProtocolError
from .websocket import connect_websocket

__all__ = (
    "ClientDisconnectReason",
    "Connector",
    "EngineClient",
    "EngineClosed",
    "Handshake",
    "MessageSocket",
    "open_engine",
)


class MessageSocket(Protocol):
    """What the Engine.IO client needs of a websocket (the real one, or an in-memory one)."""

    async def send(self, message: str | bytes) -> None: ...

    async def receive(self) -> str | bytes: ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None: ...


class Connector(Protocol):
    """Opens a websocket to ``url`` with extra ``headers`` (see ``gosf.testing``)."""

    def __call__(
        self, url: str, headers: Iterable[tuple[str, str]]
    ) -> AbstractAsyncContextManager[MessageSocket]: ...


MIN_PING_INTERVAL = 0.1
"""Protocol 3: seconds between pings at least, whatever the server announced."""

_PING = Packet(PacketType.PING)
_MESSAGE = PacketType.MESSAGE


class ClientDisconnectReason(enum.StrEnum):
    """Why :class:`~gosf.SocketIOClient`'s connection ended, seen from the client.

    The members are socket.io-client's reasons, the strings gosf's client has
    always given, so code written for either compares with the same words. They
    live here, beside the Engine.IO client, because the Engine.IO session is
    where most of them are found; the Socket.IO client adds its two ``IO_``
    reasons.
    """

    IO_SERVER_DISCONNECT = "io server disconnect"
    """The server sent DISCONNECT for every namespace the client had joined."""
    IO_CLIENT_DISCONNECT = "io client disconnect"
    """The client left: :meth:`~gosf.SocketIOClient.disconnect`, or its ``connect`` block ended."""
    PING_TIMEOUT = "ping timeout"
    """The server sent nothing, not even a ping, for its ping interval plus its ping timeout."""
    TRANSPORT_CLOSE = "transport close"
    """The websocket closed, or the server sent an Engine.IO CLOSE packet."""
    TRANSPORT_ERROR = "transport error"
    """socket.io-client's word for a transport that failed; gosf's client reports
    a failed websocket as :attr:`TRANSPORT_CLOSE`, so it never gives this one."""
    PARSE_ERROR = "parse error"
    """The server sent a packet that does not decode, or one out of place."""


class EngineClosed(Exception):
    """The session ended; ``reason`` says how."""

    def __init__(self, reason: ClientDisconnectReason) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Handshake:
    """What the server's OPEN packet announced (times in seconds)."""

    sid: str
    ping_interval: float
    ping_timeout: float
    max_payload: int | None

    @classmethod
    def parse(cls, packet: Packet) -> Handshake:
        """Raises :class:`RemoteProtocolError` unless ``packet`` is a valid OPEN."""
        if packet.type is not PacketType.OPEN or not isinstance(packet.data, str):
            raise RemoteProtocolError(f"expected an OPEN packet, got {packet.type.name}")
        try:
            info: Any = orjson.loads(packet.data)
            sid, interval, timeout = info["sid"], info["pingInterval"], info["pingTimeout"]
            max_payload = info.get("maxPayload")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise RemoteProtocolError(f"malformed OPEN packet: {packet.data!r}") from None
        # pingInterval 0 is tolerated: python-engineio announces int(seconds) * 1000
        if not isinstance(sid, str) or not all(
            isinstance(value, int) and value >= 0 for value in (interval, timeout)
        ):
            raise RemoteProtocolError(f"malformed OPEN packet: {packet.data!r}")
        return cls(sid, interval / 1000, timeout / 1000, max_payload)


class EngineClient:
    """One Engine.IO session; made by :func:`open_engine`."""

    def __init__(self, ws: MessageSocket, protocol: int, handshake: Handshake) -> None:
        self.ws = ws
        self.protocol = protocol
        self.handshake = handshake
        self._send_lock = anyio.Lock()

    @property
    def sid(self) -> str:
        return self.handshake.sid

    async def send(self, parts: Sequence[str | bytes]) -> None:
        """Send MESSAGE packets back to back (a Socket.IO packet and its attachments).

        Raises:
            EngineClosed: the session is closed.
        """
        async with self._send_lock:
            for part in parts:
                await self._send_packet(Packet(_MESSAGE, part))

    async def receive(self) -> str | bytes:
        """The next MESSAGE's data.

        Raises:
            EngineClosed: the server or the network closed the session
                (``TRANSPORT_CLOSE``), or the server stayed silent past the ping
                deadline (``PING_TIMEOUT``).
            RemoteProtocolError: the server sent something malformed.
        """
        silence = self.handshake.ping_interval + self.handshake.ping_timeout
        while True:
            frame: str | bytes | None = None
            with anyio.move_on_after(silence):
                try:
                    frame = await self.ws.receive()
                except ConnectionClosed as exc:
                    raise EngineClosed(ClientDisconnectReason.TRANSPORT_CLOSE) from exc
            if frame is None:
                raise EngineClosed(ClientDisconnectReason.PING_TIMEOUT)
            packet = decode_ws(frame, self.protocol)
            kind = packet.type
            if kind is _MESSAGE:
                return packet.data
            if kind is PacketType.PING:  # protocol 3 too: golang-socketio servers ping
                await self._send_packet(Packet(PacketType.PONG, packet.data))
            elif kind is PacketType.CLOSE:
                raise EngineClosed(ClientDisconnectReason.TRANSPORT_CLOSE)
            elif kind is PacketType.OPEN or kind is PacketType.UPGRADE:
                raise RemoteProtocolError(f"unexpected {kind.name} packet")
            # PONG (protocol 3: the answer to our ping), NOOP: the deadline moved on

    async def heartbeat(self) -> None:
        """Protocol 3: ping the server every ``ping_interval`` (run it as a task).

        Returns when the session is closed; nothing to do in protocol 4.
        """
        if self.protocol != 3:
            return
        while True:
            await anyio.sleep(max(self.handshake.ping_interval, MIN_PING_INTERVAL))
            try:
                await self._send_packet(_PING)
            except EngineClosed:
                return

    async def _send_packet(self, packet: Packet) -> None:
        try:
            await self.ws.send(encode_ws(packet, self.protocol))
        except ConnectionClosed as exc:
            raise EngineClosed(ClientDisconnectReason.TRANSPORT_CLOSE) from exc


@asynccontextmanager
async def open_engine(
    base_url: str,
    *,
    protocol: int,
    path: str,
    query: Iterable[tuple[str, str]] = (),
    headers: Iterable[tuple[str, str]] = (),
    ssl_context: ssl.SSLContext | None = None,
    ca_file: str | None = None,
    connect_timeout: float = 10.0,
    connector: Connector | None = None,
) -> AsyncIterator[EngineClient]:
    """Open an Engine.IO session (``protocol`` 4 or 3) over a websocket.

    ``base_url`` is ``scheme://host[:port]`` plus an optional query string that is
    kept; ``path`` is the server's Engine.IO path (``/socket.io``). ``connect_timeout``
    bounds everything up to the OPEN packet. ``connector`` replaces the network
    (``gosf.testing`` connects to an app in memory with it).

    Raises:
        ValueError: a bad URL or ``protocol``, or both ``ssl_context`` and ``ca_file``.
        OSError, TimeoutError, HandshakeError, ConnectionClosed: see
            :func:`~gosf._client.websocket.connect_websocket`.
        RemoteProtocolError: the server's first packet was not a valid OPEN.
    """
    if protocol not in (3, 4):
        raise ValueError(f"unsupported Engine.IO protocol {protocol!r}")
    parts = urlsplit(base_url)
    params = [("EIO", str(protocol)), ("transport", "websocket"), *query]
    target = path.rstrip("/") + "/"
    query_string = urlencode(params) + (f"&{parts.query}" if parts.query else "")
    url = urlunsplit((parts.scheme, parts.netloc, target, query_string, ""))
    deadline = anyio.current_time() + connect_timeout
    opening: AbstractAsyncContextManager[MessageSocket]
    if connector is not None:
        opening = connector(url, headers)
    else:
        opening = connect_websocket(
            url,
            ssl_context=ssl_context,
            ca_file=ca_file,
            headers=headers,
            connect_timeout=connect_timeout,
        )
    async with opening as ws:
        with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
            first = await ws.receive()
        yield EngineClient(ws, protocol, Handshake.parse(decode_ws(first, protocol)))
