"""A small Socket.IO 5 client for tests that must run under asyncio and trio.

python-socketio's client needs asyncio; this one runs on anyio over the bare
websocket client in ``tests/harness.py`` and gosf's own codecs. It answers
pings, collects events, and matches acks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import count
from typing import Any

import anyio
import orjson

from gosf.protocol.engineio import PacketType as EngineType
from gosf.protocol.engineio import decode_ws
from gosf.protocol.socketio import Decoder, Packet, PacketType, encode, encode_event
from tests.harness import Closed, RawWebSocket

__all__ = ("ConnectRefused", "SioClient")


class ConnectRefused(Exception):
    """The server answered CONNECT with CONNECT_ERROR; ``data`` is its payload."""

    def __init__(self, data: Any) -> None:
        super().__init__(data)
        self.data = data


class SioClient:
    def __init__(self, ws: RawWebSocket) -> None:
        self.ws = ws
        self.sid = ""
        self.disconnected = anyio.Event()
        self.disconnect_reason = ""
        self.pings = 0  # the server's PINGs answered so far
        self._events: dict[str, list[list[Any]]] = defaultdict(list)
        self._arrived = anyio.Event()
        self._acks: dict[int, list[Any]] = {}
        self._ids = count()
        self._decoder = Decoder(5)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, host: str, auth: dict[str, Any] | None = None
    ) -> AsyncIterator[SioClient]:
        """Connect to the default namespace over websocket.

        Raises:
            ConnectRefused: the server refused the connection.
        """
        async with RawWebSocket.connect(host, "/socket.io/?EIO=4&transport=websocket") as ws:
            client = cls(ws)
            with anyio.fail_after(5):
                opening = await ws.receive()
                assert isinstance(opening, str) and opening.startswith("0"), opening
                await ws.send("40" + (orjson.dumps(auth).decode() if auth else ""))
                reply = await ws.receive()
            assert isinstance(reply, str), reply
            if reply.startswith("44"):
                raise ConnectRefused(orjson.loads(reply[2:]))
            assert reply.startswith("40"), reply
            client.sid = orjson.loads(reply[2:])["sid"]
            async with anyio.create_task_group() as tg:
                tg.start_soon(client._read)
                try:
                    yield client
                finally:
                    tg.cancel_scope.cancel()

    async def _read(self) -> None:
        while True:
            frame = await self.ws.receive()
            if isinstance(frame, Closed):
                self.disconnect_reason = self.disconnect_reason or "transport close"
                self.disconnected.set()
                return
            packet = decode_ws(frame, 4)
            if packet.type is EngineType.PING:
                await self.ws.send("3")
                self.pings += 1
                self._arrived.set()
                self._arrived = anyio.Event()
                continue
            if packet.type is EngineType.CLOSE:
                self.disconnect_reason = self.disconnect_reason or "transport close"
                self.disconnected.set()
                return
            if packet.type is not EngineType.MESSAGE:
                continue
            sio = self._decoder.feed(packet.data)
            if sio is None:
                continue
            if sio.type in (PacketType.EVENT, PacketType.BINARY_EVENT):
                name, *args = sio.data
                self._events[name].append(args)
            elif sio.type in (PacketType.ACK, PacketType.BINARY_ACK) and sio.id is not None:
                self._acks[sio.id] = sio.data
            elif sio.type is PacketType.DISCONNECT:
                self.disconnect_reason = "io server disconnect"
                self.disconnected.set()
            self._arrived.set()
            self._arrived = anyio.Event()

    async def _send(self, parts: list[str | bytes]) -> None:
        text, *attachments = parts
        assert isinstance(text, str)
        await self.ws.send("4" + text)
        for attachment in attachments:
            await self.ws.send(attachment)

    async def emit(self, event: str, *args: Any) -> None:
        await self._send(encode_event("/", event, args))

    async def call(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:  # noqa: ASYNC109
        """Emit with an ack and return the ack's arguments."""
        ack_id = next(self._ids)
        await self._send(encode(Packet(PacketType.EVENT, "/", [event, *args], ack_id)))
        with anyio.fail_after(timeout):
            while ack_id not in self._acks:
                await self._arrived.wait()
        return self._acks.pop(ack_id)

    async def next_event(self, name: str, timeout: float = 5.0) -> list[Any]:  # noqa: ASYNC109
        """The arguments of the next ``name`` event (waiting for it if needed)."""
        with anyio.fail_after(timeout):
            while not self._events[name]:
                await self._arrived.wait()
        return self._events[name].pop(0)

    async def wait_pings(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` PINGs were answered (the server pings again only
        once it has read the last PONG)."""
        with anyio.fail_after(timeout):
            while self.pings < count:
                await self._arrived.wait()

    def events(self, name: str) -> list[list[Any]]:
        """The ``name`` events received and not taken yet."""
        return list(self._events[name])
