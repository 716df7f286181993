"""Connection state recovery across processes (issue 15, item 3), in memory.

A session parked in one server is taken back in another: two
``SocketIOServer``\\ s share a ``MemoryBus`` (the seam a RedisBroker plugs
into). The handover's rules (``gosf._socketio.handover``) are tested first
on two stores and a broker that answers from one of them, with no server;
then two servers and gosf's own client, through ``tests.harness.WireClient``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest

import gosf
from gosf._socketio.handover import Handover, hand_over
from gosf._socketio.recovery import ParkedSession
from gosf._socketio.recovery_store import MemoryStore
from gosf.brokers import Broadcast, HandedSession, MemoryBus, TakeSession
from gosf.brokers._queries import decode_answer, decode_query, encode
from gosf.protocol.socketio import encode_event
from gosf.testing import TestServer
from tests.harness import Watch, WireClient
from tests.test_recovery import Clock, arguments, connect_reply, numbers

pytestmark = pytest.mark.anyio

WAIT = 5.0


# -- the handover, on two stores -------------------------------------------------------


class Holder:
    """A broker whose one other process holds ``store``: queries are answered
    from it, through the wire format (as the Redis broker carries them)."""

    node_id = "asker"

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def query(self, query: Any, timeout: float) -> list[HandedSession]:  # noqa: ASYNC109
        asked = decode_query(encode(query))
        assert isinstance(asked, TakeSession)
        answer = hand_over(self.store, asked)
        return [HandedSession(False), decode_answer(asked, encode(answer))]


def stores(clock: Clock | None = None) -> tuple[MemoryStore, MemoryStore]:
    """Two processes' stores, the second fetching from the first."""
    options = gosf.Recovery()
    first = MemoryStore(options, clock=clock or Clock())
    second = MemoryStore(options, clock=clock or Clock())
    second.fetch = Handover(Holder(first), "/", second, timeout=1.0)  # type: ignore[arg-type]
    return first, second


def broadcast(origin: MemoryStore, n: int, *others: MemoryStore) -> str:
    """Event ``n`` broadcast by ``origin`` to the whole namespace, and carried
    to ``others`` (each logs it under its offset); returns that offset."""
    parts = encode_event("/", "news", (n,))
    (packet,) = origin.record(parts, None, None, shared=True)
    offset = str(arguments(packet.data)[-1])
    for other in others:
        other.record(parts, None, None, offset=offset, shared=True)
    return offset


async def park(store: MemoryStore, sid: str = "me") -> None:
    session = ParkedSession("pid", sid, frozenset({sid}), {"value": 42}, store.position())
    await store.park(session)


async def test_a_session_moves_with_what_it_missed_once_and_in_order() -> None:
    first, second = stores()
    await park(first)
    offset = broadcast(second, 0, first)  # the client got 0 before it dropped
    await park(first)  # (parked after 0: replay starts at its offset anyway)
    broadcast(first, 1, second)
    broadcast(second, 2, first)
    broadcast(second, 3)  # not yet carried to the first process when it answers
    taken = await second.take("pid", offset)
    assert taken is not None and taken.sid == "me" and taken.state == {"value": 42}
    assert numbers(await second.replay(taken, offset)) == [1, 2, 3]
    assert await first.take("pid") is None  # handed over: no longer parked there
    assert await second.take("pid") is None


async def test_the_asker_waits_for_its_log_to_catch_up() -> None:
    # The first process had logged 2 (the second's own broadcast, say 1 is
    # the holder's) before the second had: without waiting, 1 would reach
    # the restored socket twice, in the replay and live.
    first, second = stores()
    offset = broadcast(first, 0, second)
    await park(first)
    parts = encode_event("/", "news", (1,))
    (packet,) = first.record(parts, None, None, shared=True)
    late = str(arguments(packet.data)[-1])
    taken: list[ParkedSession | None] = []
    async with anyio.create_task_group() as tg:

        async def take() -> None:
            taken.append(await second.take("pid", offset))

        tg.start_soon(take)
        await anyio.wait_all_tasks_blocked()
        assert taken == []  # still waiting for 1
        second.record(parts, None, None, offset=late, shared=True)
    (session,) = taken
    assert session is not None
    assert numbers(await second.replay(session, offset)) == [1]


async def test_a_log_that_never_catches_up_gives_a_fresh_session() -> None:
    first, second = stores()
    offset = broadcast(first, 0, second)
    await park(first)
    broadcast(first, 1)  # lost on its way to the second process
    with anyio.fail_after(WAIT):
        assert await second.take("pid", offset) is None


async def test_broadcasts_of_an_origin_the_holder_never_heard_from() -> None:
    # A third process's broadcast logged here long ago was not for the
    # session; one logged just now may not have reached the holder yet.
    clock = Clock()
    first, second = stores(clock)
    third = MemoryStore(gosf.Recovery(), clock=clock)
    broadcast(third, 0, second)
    clock.now = 100
    offset = broadcast(first, 1, second)
    await park(first)
    broadcast(third, 2, second)
    taken = await second.take("pid", offset)
    assert taken is not None
    assert numbers(await second.replay(taken, offset)) == [2]


class Hanging:
    """A broker whose queries never end (Redis frozen), whatever their timeout."""

    node_id = "asker"

    async def query(self, query: Any, timeout: float) -> list[HandedSession]:  # noqa: ASYNC109
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_a_broker_that_hangs_gives_a_fresh_session_in_time() -> None:
    store = MemoryStore(gosf.Recovery())
    store.fetch = Handover(Hanging(), "/", store, timeout=0.1)  # type: ignore[arg-type]
    with anyio.fail_after(WAIT):
        assert await store.take("pid", "0-0") is None


async def test_a_state_json_cannot_carry_is_not_handed_over() -> None:
    first, second = stores()
    await first.park(ParkedSession("pid", "me", frozenset(), {"x": object()}, ""))
    assert await second.take("pid") is None


async def test_offsets_cross_processes_with_the_broadcast() -> None:
    from gosf.brokers._redis_wire import decode_message, encode_message

    sent = Broadcast("/", ('2["news",1]',), ("room",), offset="3fa9c1-2a")
    received, _ = decode_message(encode_message(sent, "origin", 1))
    assert received.offset == "3fa9c1-2a"
    assert decode_message(encode_message(Broadcast("/", ("2[]",)), "o", 2))[0].offset is None


# -- two servers -----------------------------------------------------------------------


def recovering_server(bus: MemoryBus) -> gosf.SocketIOServer:
    server = gosf.SocketIOServer(recovery=gosf.Recovery(), broker=bus.broker())

    @server.on("join")
    async def join(socket: gosf.Socket, room: str) -> None:
        socket.join(room)

    @server.on("remember")
    async def remember(socket: gosf.Socket, value: Any) -> None:
        socket.state["value"] = value

    @server.on("recall")
    async def recall(socket: gosf.Socket) -> dict[str, Any]:
        return {
            "value": socket.state.get("value"),
            "recovered": socket.recovered,
            "rooms": sorted(room for room in socket.rooms if room != socket.sid),
        }

    @server.on("shout")
    async def shout(socket: gosf.Socket, room: str, n: int) -> None:
        await server.emit("news", n, to=room)

    return server


@asynccontextmanager
async def two_servers() -> AsyncIterator[tuple[TestServer, TestServer, list[MemoryStore]]]:
    bus = MemoryBus()
    servers = [recovering_server(bus), recovering_server(bus)]
    async with AsyncExitStack() as stack:
        for server in servers:
            await stack.enter_async_context(server.running())
        logs = [server.namespaces["/"].adapter.recovery for server in servers]
        assert all(isinstance(log, MemoryStore) for log in logs)
        yield TestServer(servers[0]), TestServer(servers[1]), logs  # type: ignore[misc]


def parked_watch(log: MemoryStore) -> Watch:
    """A watch notified once ``log`` parks a session."""
    watch = Watch()
    park = log.park

    async def parking(session: ParkedSession) -> None:
        await park(session)
        watch.notify()

    log.park = parking  # type: ignore[method-assign]
    return watch


async def caught_up(logs: list[MemoryStore]) -> None:
    """Wait until both logs have every broadcast of both origins."""
    with anyio.fail_after(WAIT):
        while True:
            first, second = (log.latest() for log in logs)
            if first == second:
                return
            behind = logs[0] if any(first.get(o, -1) < n for o, n in second.items()) else logs[1]
            await behind.progress().wait()


async def test_a_client_recovers_on_the_other_server() -> None:
    async with two_servers() as (a, b, logs):
        parked = parked_watch(logs[0])
        first = WireClient(a)
        async with first.connect():
            reply = connect_reply(first)
            await first.call("join", "room")
            await first.call("remember", 42)
            async with WireClient(b).connect() as on_b, WireClient(a).connect() as on_a:
                await on_b.call("shout", "room", 0)
                n, offset = await first.next_event("news")
                assert n == 0
                await first.drop()
                await parked.until(lambda: logs[0].statistics()["sessions"] == 1)
                await on_b.call("shout", "room", 1)
                await on_b.call("shout", "room", 2)
                await caught_up(logs)
                await on_a.call("shout", "room", 3)
                await caught_up(logs)
        again = WireClient(b)
        async with again.connect(auth={"pid": reply["pid"], "offset": offset}):
            assert connect_reply(again) == reply  # the same sid and pid
            missed = [await again.next_event("news") for _ in range(3)]
            assert [args[0] for args in missed] == [1, 2, 3]
            assert await again.call("recall") == [
                {"value": 42, "recovered": True, "rooms": ["room"]}
            ]
            async with WireClient(a).connect() as on_a:
                await on_a.call("shout", "room", 4)
            assert (await again.next_event("news"))[0] == 4
            assert again.events("news") == []
        assert logs[0].statistics()["sessions"] == 0


async def test_a_pid_no_server_holds_gives_a_fresh_session() -> None:
    async with two_servers() as (_, b, _logs):
        again = WireClient(b)
        async with again.connect(auth={"pid": "p" * 20, "offset": "0-0"}):
            assert (await again.call("recall"))[0]["recovered"] is False


async def test_an_emitter_s_events_have_one_offset_in_every_server() -> None:
    # Else each server would give its own, and a session handed over would
    # get the event twice: in the replay and again from the other's log.
    bus = MemoryBus()
    servers = [recovering_server(bus), recovering_server(bus)]
    async with AsyncExitStack() as stack:
        for server in servers:
            await stack.enter_async_context(server.running())
        logs = [server.namespaces["/"].adapter.recovery for server in servers]
        async with gosf.Emitter(bus.broker()) as emitter:
            await emitter.emit("news", 1)
            with anyio.fail_after(WAIT):
                for log in logs:
                    assert isinstance(log, MemoryStore)
                    while not log.latest():
                        await log.progress().wait()
        positions = {log.position() for log in logs if log is not None}
        assert len(positions) == 1
