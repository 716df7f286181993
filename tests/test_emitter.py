"""gosf.Emitter: events to a cluster's clients from a process that runs no server,
through the broker; in memory on a MemoryBus, under both backends. Across real
processes on Redis, and the blocking form from a script: tests/interop/test_cluster.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import msgpack
import pytest

import gosf
from gosf.brokers import Broadcast, LocalBroker, MemoryBus, RedisBroker
from gosf.testing import asgi_connector

pytestmark = pytest.mark.anyio

WAIT = 5


class Peer:
    """A client in memory that records the ``news`` and ``marker`` events it gets."""

    def __init__(self) -> None:
        self.sio = gosf.SocketIOClient()
        self.news: list[list[Any]] = []
        self.markers = 0
        self._marked = anyio.Event()
        self.sio.on("news", lambda *args: self.news.append(list(args)))
        self.sio.on("marker", self._marker)

    def _marker(self) -> None:
        self.markers += 1
        self._marked.set()
        self._marked = anyio.Event()

    async def marked(self, count: int) -> None:
        """Wait until ``count`` markers have come (what was sent before them is here)."""
        with anyio.fail_after(WAIT):
            while self.markers < count:
                await self._marked.wait()


def make_server(bus: MemoryBus) -> gosf.SocketIOServer:
    server = gosf.SocketIOServer(broker=bus.broker())

    @server.on("join")
    async def join(socket: gosf.Socket, room: str) -> None:
        socket.join(room)

    return server


@asynccontextmanager
async def peers(server: gosf.SocketIOServer, count: int) -> AsyncIterator[list[Peer]]:
    connector = asgi_connector(server)
    async with server, AsyncExitStack() as stack:
        made = [Peer() for _ in range(count)]
        for peer in made:
            await stack.enter_async_context(
                peer.sio.connect("http://testserver", path="/socket.io", connector=connector)
            )
        yield made


async def test_events_reach_the_clients_of_every_server_in_their_rooms() -> None:
    bus = MemoryBus()
    async with (
        peers(make_server(bus), 2) as (a1, a2),
        peers(make_server(bus), 1) as (b1,),
        gosf.Emitter(bus.broker()) as emitter,
    ):
        await a2.sio.call("join", "red", timeout=WAIT)
        await b1.sio.call("join", "red", timeout=WAIT)

        await emitter.emit("news", {"to": "all"}, b"\x00")
        await emitter.emit("news", {"to": "red"}, to="red")
        await emitter.emit("news", {"to": "red or blue"}, to=["red", "blue"])
        await emitter.emit("marker")
        for peer in (a1, a2, b1):
            await peer.marked(1)
    everyone = [{"to": "all"}, b"\x00"]
    assert a1.news == [everyone]
    assert a2.news == b1.news == [everyone, [{"to": "red"}], [{"to": "red or blue"}]]


async def test_an_emitter_answers_queries_as_a_process_without_clients() -> None:
    bus = MemoryBus()
    server = make_server(bus)
    async with peers(server, 2), gosf.Emitter(bus.broker()):
        assert await server.cluster_socket_count() == 2
        assert await server.cluster_rooms() == {}
        assert await server.server_side_emit("anything") == 0


class Recording(LocalBroker):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[Broadcast] = []

    async def publish(self, broadcast: Broadcast) -> None:
        self.published.append(broadcast)


async def test_events_are_encoded_with_the_clusters_parser() -> None:
    broker = Recording()
    async with gosf.Emitter(broker, parser="msgpack") as emitter:
        await emitter.emit("news", b"\x01", to="red", namespace="/chat")
    (broadcast,) = broker.published
    assert broadcast.namespace == "/chat" and broadcast.rooms == ("red",)
    (part,) = broadcast.parts
    assert isinstance(part, bytes)
    assert msgpack.unpackb(part) == {"type": 2, "nsp": "/chat", "data": ["news", b"\x01"]}


async def test_an_emitter_must_be_open_and_connected() -> None:
    emitter = gosf.Emitter(Recording())
    with pytest.raises(RuntimeError, match="open the emitter"):
        await emitter.emit("news")
    # Nothing listens on port 1 of the loopback: the connection is refused at once.
    unreachable = RedisBroker("redis://127.0.0.1:1/0", connect_timeout=0.2)
    with anyio.fail_after(WAIT), pytest.raises(ConnectionError, match="not connected"):
        async with gosf.Emitter(unreachable, connect_timeout=0.5):
            pass
