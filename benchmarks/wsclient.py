"""A minimal websocket client (RFC 6455) on asyncio protocols, for load generation.

Why not a library: the load generator shares a 2-core machine with the server
under test, so every microsecond it spends per message is taken from the
server. This client does only what the benchmark needs (text frames, masked
with a fresh key per frame as RFC 6455 asks; answering pings; no extensions)
and hands each complete message to a plain callback, so a round trip costs
no task switch. :func:`connect` performs the opening handshake.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import socket
import struct
from collections import deque
from collections.abc import Callable

__all__ = ("HandshakeError", "WebSocket", "connect")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10
_MAX_HEAD = 65536


class HandshakeError(ConnectionError):
    """The server did not upgrade the connection to a websocket."""


def _mask(payload: bytes) -> bytes:
    """``payload`` masked with a random key, preceded by that key."""
    key = random.getrandbits(32).to_bytes(4, "little")
    n = len(payload)
    if not n:
        return key
    repeated = (key * (n // 4 + 1))[:n]
    masked = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return key + masked.to_bytes(n, "little")


def _frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked client frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    return head + _mask(payload)


class WebSocket(asyncio.Protocol):
    """One client connection.

    Complete text messages go to :attr:`on_text` when it is set, else they
    queue up for :meth:`recv`. Pings are answered as they arrive.
    """

    def __init__(self) -> None:
        self.on_text: Callable[[str], None] | None = None
        self.closed = asyncio.Event()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._handshaken = False
        self._handshake: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._fragments: list[bytes] = []
        self._messages: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        if not self._handshake.done():
            self._handshake.set_exception(exc or ConnectionError("closed during the handshake"))
        self._wake()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._handshaken:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD and not self._handshake.done():
                    self._handshake.set_exception(HandshakeError("response head too large"))
                return
            head = bytes(buffer[: end + 4])
            del buffer[: end + 4]
            self._handshaken = True
            if not self._handshake.done():
                self._handshake.set_result(head)
        self._parse()

    # -- frames -----------------------------------------------------------------------

    def _parse(self) -> None:
        buffer = self._buffer
        pos = 0
        size = len(buffer)
        while size - pos >= 2:
            b0 = buffer[pos]
            n = buffer[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - start < 2:
                    break
                (n,) = struct.unpack_from("!H", buffer, start)
                start += 2
            elif n == 127:
                if size - start < 8:
                    break
                (n,) = struct.unpack_from("!Q", buffer, start)
                start += 8
            if size - start < n:
                break
            payload = bytes(buffer[start : start + n])
            pos = start + n
            self._on_frame(b0 & 0x80, b0 & 0x0F, payload)
        if pos:
            del buffer[:pos]

    def _on_frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == _OP_TEXT and fin and not self._fragments:
            self._deliver(payload.decode())
        elif opcode in (_OP_TEXT, _OP_BINARY, _OP_CONT):
            self._fragments.append(payload)
            if fin:
                text = b"".join(self._fragments).decode()
                self._fragments = []
                self._deliver(text)
        elif opcode == _OP_PING:
            self._write(_frame(_OP_PONG, payload))
        elif opcode == _OP_CLOSE:
            self._write(_frame(_OP_CLOSE, payload[:2]))
            if self._transport is not None:
                self._transport.close()

    def _deliver(self, text: str) -> None:
        if self.on_text is not None:
            self.on_text(text)
        else:
            self._messages.append(text)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    # -- API --------------------------------------------------------------------------

    def send(self, text: str) -> None:
        """Send ``text`` as one text frame (buffered by the transport, never blocks)."""
        self._write(_frame(_OP_TEXT, text.encode()))

    async def recv(self) -> str:
        """The next text message (only while :attr:`on_text` is unset).

        Raises:
            ConnectionError: the connection closed first.
        """
        while not self._messages:
            if self.closed.is_set():
                raise ConnectionError("websocket closed")
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._messages.popleft()

    def close(self) -> None:
        """Send a close frame and drop the TCP connection."""
        self._write(_frame(_OP_CLOSE, struct.pack("!H", 1000)))
        if self._transport is not None:
            self._transport.close()


async def _bound_socket(source: str, host: str, port: int) -> socket.socket:
    """A TCP socket from ``source`` (any free port) connected to ``host:port``.

    ``IP_BIND_ADDRESS_NO_PORT`` leaves the choice of the port to connect(),
    which may reuse a port held by a connection to another address; a plain
    bind() to port 0 could not, and would run out of ports sooner.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def connect(host: str, port: int, path: str, *, source: str | None = None) -> WebSocket:
    """Open ``ws://host:port/path`` (no extensions, no subprotocol), from the
    local address ``source`` when given (so that many clients can share the
    loopback's ports: each source address has its own range).

    Raises:
        HandshakeError: the server answered without upgrading.
        OSError: the TCP connection failed.
    """
    loop = asyncio.get_running_loop()
    if source is None:
        _, ws = await loop.create_connection(WebSocket, host, port)
    else:
        sock = await _bound_socket(source, host, port)
        _, ws = await loop.create_connection(WebSocket, sock=sock)
    key = base64.b64encode(os.urandom(16))
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    ws._write(request)
    try:
        head = await ws._handshake
        status, *lines = head.decode("latin-1").split("\r\n")
        if status.split(" ", 2)[1:2] != ["101"]:
            raise HandshakeError(status)
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
        expected = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise HandshakeError("wrong Sec-WebSocket-Accept")
    except BaseException:
        ws.close()
        raise
    return ws
