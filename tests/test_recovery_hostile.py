"""Connection state recovery against clients that lie, race or churn (issue 15),
in memory: forged and malformed pids and offsets, two reconnections with one
pid at once, a flood of drops, a parked session of a dynamic namespace that
was cleaned up, and a long-polling client back before the server saw it drop.

Raw CONNECT payloads go through ``tests.harness.WireClient`` (gosf's own
client sends the ``auth`` it is given as it is); what the store holds is
read through :meth:`gosf._socketio.recovery.MemoryStore.statistics`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import orjson
import pytest

import gosf
from gosf._socketio.recovery_store import MemoryStore
from gosf.protocol.socketio import PacketType
from gosf.testing import TestServer
from tests.harness import WireClient, sessions_end, tapped

pytestmark = pytest.mark.anyio


def app(recovery: gosf.Recovery | None = None) -> gosf.SocketIOServer:
    server = gosf.SocketIOServer(recovery=recovery or gosf.Recovery())

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
async def running(server: gosf.SocketIOServer) -> AsyncIterator[TestServer]:
    async with server.running():
        yield TestServer(server)


def reply_of(client: WireClient) -> dict[str, Any]:
    (reply,) = [p.data for p in client.packets if p.type is PacketType.CONNECT][-1:]
    assert isinstance(reply, dict)
    return reply


def store_of(server: gosf.SocketIOServer, namespace: str = "/") -> MemoryStore:
    store = server.namespace(namespace).adapter.recovery
    assert isinstance(store, MemoryStore)
    return store


async def park_one(test: TestServer, value: str) -> tuple[dict[str, Any], str]:
    """A client that joins ``room``, stores ``value``, gets one event and drops:
    its CONNECT reply and its last offset."""
    client = WireClient(test)
    async with client.connect():
        await client.call("join", "room")
        await client.call("remember", value)
        await client.call("shout", "room", 0)
        _, offset = await client.next_event("news")
        await client.drop()
    return reply_of(client), offset


async def test_a_long_polling_client_back_before_its_drop_was_seen_is_recovered_at_once() -> None:
    # The old session is long-polling, and its client is gone: nobody will
    # fetch its last packets. Taking it over must not wait for that (the
    # client would wait, and here, its session would expire meanwhile).
    server = app(gosf.Recovery(max_disconnection_duration=1))
    async with running(server) as test:
        transport = httpx.ASGITransport(app=server.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            opened = await http.get("/socket.io/?EIO=4&transport=polling")
            sid = orjson.loads(opened.content[1:])["sid"]
            url = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
            assert (await http.post(url, content=b"40")).text == "ok"
            connected = await http.get(url)
            reply = orjson.loads(connected.content[2:])
            assert (await http.post(url, content=b'42["join","room"]')).text == "ok"
            # No more requests: the client has vanished, its session looks alive.
            store = store_of(server)
            with anyio.fail_after(10):
                again = WireClient(test)
                async with again.connect(auth={"pid": reply["pid"]}):
                    assert reply_of(again) == reply
                    (recall,) = await again.call("recall")
                    assert recall["recovered"] is True and recall["rooms"] == ["room"]
            assert store.statistics()["sessions"] == 0  # taken, then left deliberately


# -- forged and malformed CONNECTs ------------------------------------------------------


FORGED_PIDS: list[Any] = [
    "A" * 20,  # a pid's length: the take-over search runs, and finds nothing
    "not-a-pid",
    "x" * 100_000,
    42,
    None,
    ["pid"],
    {"pid": "pid"},
]


async def test_a_forged_pid_gets_a_fresh_session_and_leaves_the_parked_one_alone() -> None:
    async with running(app()) as test:
        reply, offset = await park_one(test, "secret")
        for pid in FORGED_PIDS:
            intruder = WireClient(test)
            async with intruder.connect(auth={"pid": pid, "offset": offset}):
                fresh = reply_of(intruder)
                assert fresh["sid"] != reply["sid"] and fresh["pid"] != reply["pid"], pid
                assert await intruder.call("recall") == [
                    {"value": None, "recovered": False, "rooms": []}
                ], pid
                assert intruder.events("news") == [], pid
        # The owner still gets its session back.
        owner = WireClient(test)
        async with owner.connect(auth={"pid": reply["pid"], "offset": offset}):
            assert reply_of(owner) == reply
            (recall,) = await owner.call("recall")
            assert recall == {"value": "secret", "recovered": True, "rooms": ["room"]}


async def test_offsets_the_log_never_wrote_give_a_fresh_session() -> None:
    # From the future, of another store, malformed, or not a string at all:
    # the log cannot vouch for any of them.
    async with running(app()) as test:
        reply, offset = await park_one(test, "secret")
        prefix = offset.rpartition("-")[0] + "-"
        bad: list[Any] = [
            prefix + "f" * 64,  # far in the future
            prefix + "z",
            "other-0",
            "",  # the store's own names of positions, never given to a client
            "@0",
            "@-1",
            42,
            ["x"],
            {"offset": offset},
        ]
        for bad_offset in bad:
            client = WireClient(test)
            async with client.connect(auth={"pid": reply["pid"], "offset": bad_offset}):
                assert reply_of(client)["sid"] != reply["sid"], bad_offset
                (recall,) = await client.call("recall")
                assert recall == {"value": None, "recovered": False, "rooms": []}, bad_offset
            # The pid was spent (the session is the owner's only); park a new one.
            reply, offset = await park_one(test, "secret")


# -- races ---------------------------------------------------------------------------------


SUPERSEDED = "superseded"


async def reconnect_twice_at_once(test: TestServer, auth: dict[str, Any]) -> list[Any]:
    """Two clients CONNECT with the same ``auth`` at once; what each recalls once
    both are done connecting, with its sid, or :data:`SUPERSEDED` for one
    closed by the other (a CONNECT with the pid of a socket that looks
    connected takes its session over, as a client back before its drop was
    seen does)."""
    both = anyio.Event()
    got: list[Any] = []

    def done(outcome: Any) -> None:
        got.append(outcome)
        if len(got) == 2:
            both.set()

    async def one() -> None:
        client = WireClient(test)
        try:
            async with client.connect(auth=auth):
                (recall,) = await client.call("recall")
                done({"sid": client.sid, **recall})
                await both.wait()
        except gosf.Disconnected:
            done(SUPERSEDED)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)
    return got


def the_owner_once(got: list[Any], sid: str) -> None:
    """Exactly one connection got the session back; the other got a fresh one,
    or was closed by the one that took the session over."""
    owners = [one for one in got if one != SUPERSEDED and one["sid"] == sid]
    assert owners == [{"sid": sid, "value": "secret", "recovered": True, "rooms": ["room"]}]
    (other,) = [one for one in got if one not in owners]
    assert other == SUPERSEDED or (other["value"] is None and other["recovered"] is False)


@pytest.mark.parametrize("skip_connect_handlers", [True, False])
async def test_two_reconnections_with_one_pid_at_once_get_the_session_once(
    skip_connect_handlers: bool,
) -> None:
    server = app(gosf.Recovery(skip_connect_handlers=skip_connect_handlers))

    @server.on_connect
    async def connected(socket: gosf.Socket, auth: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()  # both CONNECTs are under way at once

    async with running(server) as test:
        reply, offset = await park_one(test, "secret")
        got = await reconnect_twice_at_once(test, {"pid": reply["pid"], "offset": offset})
        the_owner_once(got, reply["sid"])


async def test_two_take_overs_with_one_pid_at_once_get_the_session_once() -> None:
    # The first connection still looks alive: both new ones try to take it over.
    async with running(app()) as test:
        first = WireClient(test)
        async with first.connect():
            await first.call("join", "room")
            await first.call("remember", "secret")
            reply = reply_of(first)
            got = await reconnect_twice_at_once(test, {"pid": reply["pid"]})
            await first.sio.wait_disconnected()  # closed as a lost transport
        the_owner_once(got, reply["sid"])


# -- churn -----------------------------------------------------------------------------------


CYCLES = 40
"""Drops in a flood (bounded: each is a connection in memory)."""


async def test_a_flood_of_drops_keeps_the_store_within_its_bounds() -> None:
    recovery = gosf.Recovery(max_sessions=3, max_packets=10)
    server = app(recovery)
    async with running(server) as test:
        store = store_of(server)
        for n in range(CYCLES):
            await park_one(test, f"value {n}")
            stats = store.statistics()
            assert stats["sessions"] <= 3 and stats["packets"] <= 10, (n, stats)
        assert store.statistics()["sessions"] == 3
        # One client dropping and coming back, again and again: one session at most.
        client = WireClient(test)
        for _ in range(CYCLES):
            async with client.connect():
                await client.call("shout", "room", 0)
                await client.drop()
        assert store.statistics()["sessions"] == 3  # its own, and two of the others
        adapter = server.namespace("/").adapter
        assert adapter.sockets == {} and adapter.rooms == {}
        await sessions_end(server.engine)


# -- dynamic namespaces --------------------------------------------------------------------


@pytest.mark.parametrize("cleanup_empty", [True, False])
async def test_a_session_parked_in_a_dynamic_child_that_was_cleaned_up_is_not_recovered(
    cleanup_empty: bool,
) -> None:
    # The child went with its last socket, and its log and parked sessions
    # with it (docs/guide.md): the client gets a fresh session in a new
    # child, nothing of the old one, and nothing of the old child is kept.
    # A child kept while empty keeps them: the session is recovered.
    server = gosf.SocketIOServer(recovery=gosf.Recovery())
    tenants = server.dynamic_namespace("/tenant-{id}", cleanup_empty=cleanup_empty)

    async def remember(socket: gosf.Socket, value: Any) -> None:
        socket.state["value"] = value

    async def recall(socket: gosf.Socket) -> Any:
        return socket.state.get("value")

    tenants.on("remember", remember)
    tenants.on("recall", recall)
    async with running(server) as test:
        opened: list[Any] = []

        @asynccontextmanager
        async def connector(url: str, headers: Any) -> AsyncIterator[Any]:
            async with tapped(test.connector, lambda frame: None)(url, headers) as ws:
                opened.append(ws)
                yield ws

        client = gosf.SocketIOClient()
        url, name = "http://testserver", "/tenant-1"
        async with client.connect(url, namespaces=name, connector=connector):
            sid = client.sid(name)
            await client.call("remember", "secret", namespace=name)
            await opened[-1].aclose(1006)  # the network fails
            await client.wait_disconnected()
        assert (name in tenants.children) is not cleanup_empty
        await sessions_end(server.engine)
        async with client.connect(url, namespaces=name, connector=connector):
            recovered = client.recovered(name)
            assert recovered is not cleanup_empty
            assert (client.sid(name) == sid) is recovered
            value = await client.call("recall", namespace=name)
            assert value == (None if cleanup_empty else "secret")
