"""A client with more events in flight than it has handler slots.

Events past ``max_concurrent_handlers`` wait in a small per-connection queue
while the reader goes on reading, so the client's PONGs (and CLOSE, ACKs) are
still read; only a client past the queue too is not read any more, and then
the heartbeat does not blame it for the PONGs the server leaves unread. Small
ping settings keep these tests quick; the server runs on loopback because the
unread PONGs need a real websocket reader.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import gosf
import gosf._socketio.slots
from gosf._engineio.session import EngineSession
from tests.harness import HeartbeatChecks, Watch, serve_app
from tests.sioclient import SioClient

pytestmark = pytest.mark.anyio

PING = 0.2
"""pingInterval and pingTimeout of these tests' servers, seconds."""


class WatchedQueue(deque[Any]):
    """A connection's queue of events waiting for a slot, telling a :class:`Watch`
    of every change (the server keeps no event for it)."""

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self._watch = watch

    def append(self, item: Any) -> None:
        super().append(item)
        self._watch.notify()

    def extend(self, items: Iterable[Any]) -> None:
        super().extend(items)
        self._watch.notify()

    def popleft(self) -> Any:
        item = super().popleft()
        self._watch.notify()
        return item

    def clear(self) -> None:
        super().clear()
        self._watch.notify()


class Holding:
    """A server whose ``hold`` handler runs until the test releases it; ``changes``
    is told when a handler starts or ends and when the queue changes."""

    def __init__(self, slots: int) -> None:
        self.server = gosf.SocketIOServer(
            ping_interval=PING, ping_timeout=PING, max_concurrent_handlers=slots
        )
        self.release = anyio.Event()
        self.started: list[int] = []
        self.running = 0
        self.most_running = 0
        self.changes = Watch()

        @self.server.on("hold")
        async def hold(socket: gosf.Socket, n: int) -> int:
            self.started.append(n)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.changes.notify()
            try:
                await self.release.wait()
            finally:
                self.running -= 1
                self.changes.notify()
            return n

        @self.server.on("echo")
        async def echo(socket: gosf.Socket, data: Any) -> Any:
            return data

    def session(self) -> EngineSession:
        (session,) = self.server.engine.sessions.values()
        return session

    def queued(self) -> int:
        queue = getattr(self.session().upper, "queue", None)
        return 0 if queue is None else len(queue)


@asynccontextmanager
async def connected(holding: Holding) -> AsyncIterator[SioClient]:
    async with serve_app(holding.server) as host, SioClient.connect(host) as client:
        conn = holding.session().upper
        assert conn is not None
        conn.queue = WatchedQueue(holding.changes)
        yield client


async def send_holds(client: SioClient, count: int) -> None:
    """Emit ``hold`` ``count`` times with acks, ids 100 + n (clear of the client's own)."""
    for n in range(count):
        await client.ws.send(f'42{100 + n}["hold",{n}]')


async def acks(client: SioClient, count: int) -> list[Any]:
    with anyio.fail_after(5):
        while len(client._acks) < count:
            await client._arrived.wait()
    return [client._acks.pop(100 + n) for n in range(count)]


async def test_more_events_than_slots_keep_the_heartbeat_going(anyio_backend: str) -> None:
    holding = Holding(slots=4)
    async with connected(holding) as client:
        await send_holds(client, 6)  # two more than the slots: they wait in the queue
        await holding.changes.until(lambda: sorted(holding.started) == [0, 1, 2, 3])
        # Each PING comes only once the last PONG was read: more of them
        # mean the reader kept reading while every slot was taken.
        await client.wait_pings(client.pings + 3)
        assert not client.disconnected.is_set()
        assert holding.queued() == 2
        assert sorted(holding.started) == [0, 1, 2, 3]
        holding.release.set()
        assert await acks(client, 6) == [[n] for n in range(6)]
        # (Handlers given slots together run concurrently: which runs first is not defined.)
        assert sorted(holding.started) == list(range(6))
        assert holding.most_running == 4
        assert await client.call("echo", "still here") == ["still here"]


async def test_a_flood_past_every_bound_is_held_not_timed_out(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gosf._socketio.slots, "MAX_QUEUED_EVENTS", 3)
    checks = HeartbeatChecks(monkeypatch)
    holding = Holding(slots=2)
    async with connected(holding) as client:
        await send_holds(client, 20)
        # (Handlers given slots together run concurrently: which starts first
        # is not defined; under trio, two started together start in either order.)
        await holding.changes.until(lambda: sorted(holding.started) == [0, 1])
        # The reader waits for room in the queue: the PONGs are not read.
        # Heartbeat checks go on meanwhile, and none closes the session.
        await checks.pass_(4, timeout=5)
        assert not holding.session().closed
        assert not client.disconnected.is_set()
        assert sorted(holding.started) == [0, 1]  # no more run, none more is read
        assert holding.queued() == 3
        holding.release.set()
        assert await acks(client, 20) == [[n] for n in range(20)]
        assert sorted(holding.started) == list(range(20))
        assert holding.most_running == 2
        await client.wait_pings(client.pings + 2)  # the heartbeat goes on as before
        assert not client.disconnected.is_set()


async def test_queued_events_get_the_slots_in_the_order_they_came(anyio_backend: str) -> None:
    holding = Holding(slots=1)  # one at a time: the order they run in is the order of the slots
    async with connected(holding) as client:
        await send_holds(client, 6)
        await holding.changes.until(lambda: holding.queued() == 5)
        holding.release.set()
        assert await acks(client, 6) == [[n] for n in range(6)]
        assert holding.started == list(range(6))


async def test_namespace_disconnect_drops_its_queued_events(anyio_backend: str) -> None:
    holding = Holding(slots=1)
    async with connected(holding) as client:
        await send_holds(client, 3)
        await holding.changes.until(lambda: holding.queued() == 2)
        await client.ws.send("41")  # leave: the running one is cancelled, the queued dropped
        await holding.changes.until(lambda: holding.running == 0 and holding.queued() == 0)
        await client.ws.send("40")  # back in: answered before the next packet is read
        assert await client.call("echo", "back") == ["back"]
        assert holding.started == [0]
        assert client._acks == {}


async def test_close_is_read_while_every_slot_is_taken(anyio_backend: str) -> None:
    holding = Holding(slots=1)
    gone: list[str] = []
    closed = anyio.Event()

    @holding.server.on_disconnect
    async def on_disconnect(socket: gosf.Socket, reason: str) -> None:
        gone.append(reason)
        closed.set()

    async with connected(holding) as client:
        await send_holds(client, 3)
        await holding.changes.until(lambda: holding.started == [0])
        await client.ws.send("1")  # Engine.IO CLOSE, behind the events with no slot
        with anyio.fail_after(5):
            await closed.wait()
    assert gone == ["client closed"]
    assert holding.started == [0]  # the queued ones were dropped, never run


async def test_an_ack_from_the_client_is_read_while_every_slot_is_taken(
    anyio_backend: str,
) -> None:
    holding = Holding(slots=1)

    @holding.server.on("ask")
    async def ask(socket: gosf.Socket) -> Any:
        return await socket.call("question", timeout=5)

    async with connected(holding) as client:
        await client.ws.send('42100["ask"]')
        assert await client.next_event("question") == []
        # The slot is taken by "ask", which waits for this client's ack: an
        # event sent before the ack waits in the queue, and the ack is read.
        await client.ws.send('42101["echo","after"]')
        await client.ws.send('430["yes"]')  # the ack of the server's first call
        with anyio.fail_after(5):
            while len(client._acks) < 2:
                await client._arrived.wait()
        assert client._acks == {100: ["yes"], 101: ["after"]}
