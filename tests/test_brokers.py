"""The broker seam: broadcasts reach the clients of other servers, once, under asyncio and trio.

Two apps in one process share a MemoryBus (the same seam a RedisBroker plugs
into), each served by its own hypercorn on its own port; clients connect to
one or the other. Cluster queries and their codec are checked here too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, cast

import anyio
import orjson
import pytest

import gosf
from gosf._socketio.server import SocketIOServer
from gosf._socketio.socket import Socket
from gosf.brokers import (
    AckBroadcast,
    CommandResult,
    CountQuery,
    FetchSockets,
    HandedSession,
    LocalBroker,
    MemoryBroker,
    MemoryBus,
    Query,
    QueryAnswer,
    RoomCounts,
    RoomsCommand,
    RoomsQuery,
    ServerSideEvent,
    SocketCommand,
    SocketCount,
    TakeSession,
    UnknownQuery,
)
from gosf.brokers._queries import QUERY_TYPES, decode_answer, decode_query, encode
from tests.harness import serve_app, watch_attribute
from tests.sioclient import SioClient

pytestmark = pytest.mark.anyio


def cluster_app(bus: MemoryBus) -> gosf.App:
    app = gosf.App(broker=bus.broker())

    @app.listen("join")
    async def join(client: gosf.Client, request: gosf.Request) -> None:
        client.join(request.message.text)

    @app.listen("say")
    async def say(client: gosf.Client, request: gosf.Request) -> None:
        await client.broadcast("room", "said", gosf.Message.success(request.message.text))

    @app.listen("announce")
    async def announce(client: gosf.Client, request: gosf.Request) -> None:
        await app.broadcast("", "news", gosf.Message.success(request.message.text))

    @app.listen("tell-room")
    async def tell_room(client: gosf.Client, request: gosf.Request) -> None:
        await app.broadcast("room", "room-news", gosf.Message.success(request.message.text))

    return app


@asynccontextmanager
async def two_apps() -> AsyncIterator[tuple[tuple[gosf.App, str], tuple[gosf.App, str]]]:
    bus = MemoryBus()
    app1, app2 = cluster_app(bus), cluster_app(bus)
    async with serve_app(app1) as first, serve_app(app2) as second:
        yield (app1, first), (app2, second)


@asynccontextmanager
async def two_servers() -> AsyncIterator[tuple[str, str]]:
    async with two_apps() as ((_, first), (_, second)):
        yield first, second


async def settle(*clients: SioClient) -> None:
    """A round trip on each client: what was sent before has arrived."""
    for client in clients:
        await client.call("join", {"text": "sync"})


async def test_broadcasts_cross_servers_exactly_once(anyio_backend: str) -> None:
    async with two_servers() as (first, second), AsyncExitStack() as stack:
        a1 = await stack.enter_async_context(SioClient.connect(first))
        a2 = await stack.enter_async_context(SioClient.connect(first))
        b1 = await stack.enter_async_context(SioClient.connect(second))
        outsider = await stack.enter_async_context(SioClient.connect(second))
        for client in (a1, a2, b1):
            await client.call("join", {"text": "room"})

        await a1.call("tell-room", {"text": "to the room"})
        for client in (a1, a2, b1):
            assert await client.next_event("room-news") == [
                {"success": True, "text": "to the room"}
            ]

        await b1.call("announce", {"text": "to all"})
        for client in (a1, a2, b1, outsider):
            assert await client.next_event("news") == [{"success": True, "text": "to all"}]

        await b1.call("say", {"text": "from b1"})
        for client in (a1, a2):
            assert await client.next_event("said") == [{"success": True, "text": "from b1"}]

        with anyio.fail_after(5):
            await settle(a1, a2, b1, outsider)
        # exactly once, the sender skipped, the outsider out of the room
        for client in (a1, a2, b1, outsider):
            assert client.events("room-news") == []
            assert client.events("news") == []
            assert client.events("said") == []
        assert outsider.events("room-news") == [] and b1.events("said") == []


async def test_cluster_queries_see_and_act_on_both_servers(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    closing = watch_attribute(monkeypatch, Socket, "connected")
    async with two_apps() as ((app1, first), (app2, second)), AsyncExitStack() as stack:
        a1 = await stack.enter_async_context(SioClient.connect(first))
        a2 = await stack.enter_async_context(SioClient.connect(first))
        b1 = await stack.enter_async_context(SioClient.connect(second))
        await a1.call("join", {"text": "red"})
        await b1.call("join", {"text": "red"})
        await a2.call("join", {"text": "blue"})

        for app in (app1, app2):
            assert await app.cluster_rooms() == {"red": 2, "blue": 1}
            assert await app.cluster_client_count() == 3
        assert {client.sid for client in app1.members()} == {a1.sid, a2.sid}  # local only

        # join / leave a client of the other server
        assert await app1.join_client(b1.sid, "room") is True
        assert b1.sid in app2.clients and "room" in app2.clients[b1.sid].rooms
        await a1.call("tell-room", {"text": "joined remotely"})
        assert await b1.next_event("room-news") == [{"success": True, "text": "joined remotely"}]
        assert (await app2.cluster_rooms())["room"] == 1
        assert await app1.leave_client(b1.sid, "room") is True
        assert "room" not in await app1.cluster_rooms()
        await a1.call("tell-room", {"text": "left remotely"})
        # a local one too
        assert await app2.join_client(a2.sid, "green") is True
        assert (await app1.cluster_rooms())["green"] == 1

        # unknown sids: no process has them
        assert await app1.disconnect_client("nobody") is False
        assert await app1.join_client("nobody", "red") is False
        assert await app2.leave_client("nobody", "red") is False
        with pytest.raises(ValueError):
            await app1.join_client(b1.sid, "")
        with pytest.raises(ValueError):
            await app1.cluster_rooms(timeout=0)

        # disconnect a client of the other server, then one of this server
        assert await app1.disconnect_client(b1.sid) is True
        with anyio.fail_after(5):
            await b1.disconnected.wait()
        assert b1.disconnect_reason == "io server disconnect"
        assert await app2.disconnect_client(a2.sid) is True
        with anyio.fail_after(5):
            await a2.disconnected.wait()
        # a2's socket (on the first server) closes in its own task
        await closing.until(lambda: len(app1.server.namespaces["/"].members()) == 1)
        assert await app2.cluster_client_count() == 1
        assert await app2.cluster_rooms() == {"red": 1}
        with anyio.fail_after(5):
            await settle(a1)
        assert b1.events("room-news") == []  # the broadcast after the leave did not reach it


async def test_cluster_queries_of_a_single_process(anyio_backend: str) -> None:
    app = cluster_app(MemoryBus())
    lone = gosf.App()  # LocalBroker: this process only
    lone.listen("join", app.endpoints["join"])
    async with serve_app(lone) as host, SioClient.connect(host) as client:
        await client.call("join", {"text": "red"})
        assert await lone.cluster_rooms() == {"red": 1}
        assert await lone.cluster_client_count() == 1
        assert await lone.leave_client(client.sid, "red") is True
        assert await lone.cluster_rooms() == {}
        assert await lone.join_client("nobody", "red") is False


# -- the queries' codec -------------------------------------------------------------------

QUERIES_ON_THE_WIRE: list[tuple[Query[Any], dict[str, Any]]] = [
    (RoomsQuery(), {"op": "rooms", "n": "/"}),
    (RoomsQuery("/chat"), {"op": "rooms", "n": "/chat"}),
    (CountQuery("/é"), {"op": "count", "n": "/é"}),
    (SocketCommand("disconnect", "s1"), {"op": "disconnect", "n": "/", "sid": "s1"}),
    (
        SocketCommand("join", "s1", "red", "/chat"),
        {"op": "join", "n": "/chat", "sid": "s1", "room": "red"},
    ),
    (SocketCommand("leave", "s1", "ü"), {"op": "leave", "n": "/", "sid": "s1", "room": "ü"}),
    # the queries of many sockets (tests/test_broadcast_acks.py has more)
    (FetchSockets(), {"op": "fetch-sockets", "n": "/", "in": None, "ex": []}),
    (
        RoomsCommand("sockets-join", "/", ("a",), ("b",), ("c",)),
        {"op": "sockets-join", "n": "/", "in": ["a"], "ex": ["b"], "to": ["c"]},
    ),
    (
        AckBroadcast("/", ("2",), "n1", "1", 1.5),
        {
            "op": "broadcast-ack",
            "n": "/",
            "in": None,
            "ex": [],
            "o": "n1",
            "b": "1",
            "t": 1.5,
            "p": "2",
            "att": [],
        },
    ),
    (
        ServerSideEvent("/", "ping", (1, {"a": None}), "node1", "call1", 2.5),
        {"op": "server-event", "n": "/", "e": "ping", "a": [1, {"a": None}], "o": "node1"}
        | {"c": "call1", "t": 2.5},
    ),
    (
        TakeSession("/", "pid1", "3fa9c1-2a"),
        {"op": "take-session", "n": "/", "pid": "pid1", "off": "3fa9c1-2a"},
    ),
]
ANSWERS_ON_THE_WIRE: list[tuple[Query[Any], QueryAnswer, dict[str, Any]]] = [
    (RoomsQuery(), RoomCounts({"red": 2, "": 1}), {"rooms": {"red": 2, "": 1}}),
    (RoomsQuery(), RoomCounts({}), {"rooms": {}}),
    (CountQuery(), SocketCount(3), {"count": 3}),
    (SocketCommand("disconnect", "s"), CommandResult(True), {"found": True}),
    (SocketCommand("join", "s", "r"), CommandResult(False), {"found": False}),
    (TakeSession("/", "p"), HandedSession(False), {"found": False}),
    (
        TakeSession("/", "p", None),
        HandedSession(True, "s", ("s", "r"), {"k": 1}, (("2[]", b"\x00"),), {"o": 3}),
        {"found": True, "sid": "s", "rooms": ["s", "r"], "state": {"k": 1}}
        | {"missed": [["2[]", {"b": "AA=="}]], "latest": {"o": 3}},
    ),
]


def through_json(obj: dict[str, Any]) -> Any:
    return orjson.loads(orjson.dumps(obj))


@pytest.mark.parametrize(("query", "wire"), QUERIES_ON_THE_WIRE)
def test_every_query_round_trips_as_the_json_gosf_always_sent(
    query: Query[Any], wire: dict[str, Any]
) -> None:
    # The JSON forms are those of the first gosf that asked (the Redis wire format
    # version 1): processes of both versions in one cluster understand each other.
    assert encode(query) == wire
    assert decode_query(through_json(encode(query))) == query


@pytest.mark.parametrize(("query", "answer", "wire"), ANSWERS_ON_THE_WIRE)
def test_every_answer_round_trips_as_the_json_gosf_always_sent(
    query: Query[Any], answer: QueryAnswer, wire: dict[str, Any]
) -> None:
    assert encode(answer) == wire
    assert decode_answer(query, through_json(encode(answer))) == answer
    assert isinstance(answer, query.answer_type)


def test_every_kind_of_query_is_known_to_the_codec() -> None:
    """A new query class that is not in ``AnyQuery`` would never be answered."""
    kinds = set(QUERY_TYPES)
    assert {type(query) for query, _ in QUERIES_ON_THE_WIRE} == kinds
    # (by name: a dataclass with slots replaces the class it was made from)
    defined = {
        kind.__name__ for kind in Query.__subclasses__() if kind.__module__.startswith("gosf.")
    }
    assert defined == {kind.__name__ for kind in kinds}


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        "rooms",
        {},
        {"op": 1, "n": "/"},
        {"op": "rooms"},
        {"op": "count", "n": None},
        {"op": "disconnect", "n": "/"},
        {"op": "disconnect", "n": "/", "sid": 7},
        {"op": "join", "n": "/", "sid": "s"},
        {"op": "join", "n": "/", "sid": "s", "room": ""},
        {"op": "leave", "n": "/", "sid": "s", "room": ["r"]},
        {"op": "server-event", "n": "/", "e": "ping", "a": {}, "o": "x"},
        {"op": "server-event", "n": "/", "e": "ping", "a": [], "o": "x", "t": 0},
        {"op": "server-event", "n": "/", "e": "ping", "a": [], "o": "x", "c": 1},
        {"op": "server-event", "n": "/", "a": [], "o": "x"},
    ],
)
def test_a_malformed_query_does_not_decode(obj: object) -> None:
    with pytest.raises(ValueError) as caught:
        decode_query(obj)
    assert not isinstance(caught.value, UnknownQuery)


def test_a_query_of_an_unknown_kind_does_not_decode() -> None:
    with pytest.raises(UnknownQuery, match="fetchSockets"):
        decode_query({"op": "fetchSockets", "n": "/", "opts": {}})


@pytest.mark.parametrize(
    ("query", "obj"),
    [
        (RoomsQuery(), None),
        (RoomsQuery(), {"count": 1}),
        (RoomsQuery(), {"rooms": []}),
        (RoomsQuery(), {"rooms": {"red": True}}),
        (RoomsQuery(), {"rooms": {"red": -1}}),
        (RoomsQuery(), {"rooms": {"red": "2"}}),
        (CountQuery(), {"count": True}),
        (CountQuery(), {"count": 1.5}),
        (CountQuery(), {"rooms": {}}),
        (SocketCommand("disconnect", "s"), {"found": 1}),
        (SocketCommand("disconnect", "s"), {}),
    ],
)
def test_a_malformed_answer_does_not_decode(query: Query[Any], obj: object) -> None:
    with pytest.raises(ValueError):
        decode_answer(query, obj)


def test_a_socket_command_is_checked_when_made() -> None:
    with pytest.raises(ValueError, match="unknown socket command"):
        SocketCommand("kick", "s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a room"):
        SocketCommand("join", "s")
    assert SocketCommand("disconnect", "s", "ignored").room is None


# -- what other processes send that this one cannot read -----------------------------------


class NewerQuery(Query[SocketCount]):
    """A kind of query a newer gosf might ask: the servers here do not know it."""

    __slots__ = ()
    ops = ("fetchSockets",)

    @property
    def answer_type(self) -> type[SocketCount]:
        return SocketCount

    def to_json(self) -> dict[str, Any]:
        return {"op": "fetchSockets", "n": "/"}

    @classmethod
    def from_json(cls, obj: Any) -> NewerQuery:
        return cls()


@asynccontextmanager
async def servers_on(bus: MemoryBus, count: int) -> AsyncIterator[list[SocketIOServer]]:
    """``count`` servers on ``bus``, running (each broker subscribed), no clients."""
    async with AsyncExitStack() as stack:
        servers = [SocketIOServer(broker=bus.broker()) for _ in range(count)]
        for server in servers:
            await stack.enter_async_context(server)
        yield servers


async def test_an_unknown_query_on_the_bus_is_dropped_and_the_next_answered(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "gosf.broker")
    async with servers_on(MemoryBus(), 2) as (first, second):
        asker = cast(MemoryBroker, first.broker)
        with anyio.fail_after(5):
            for _ in range(3):
                assert await asker.query(NewerQuery()) == []
                # a dict of the old, untyped queries: not a query either
                old = cast(Query[Any], {"op": "rooms", "n": "/"})
                assert await asker.query(old) == []
            assert await asker.query(RoomsQuery()) == [RoomCounts({}), RoomCounts({})]
            assert await first.cluster_socket_count() == 0
    for server in (first, second):
        assert cast(MemoryBroker, server.broker).drops.counts == {"an unknown query": 6}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings  # once per broker, not once per query


async def test_an_answer_of_the_wrong_type_is_dropped(anyio_backend: str) -> None:
    broker = LocalBroker()

    def confused(query: Any) -> Any:
        return SocketCount(1) if isinstance(query, RoomsQuery) else CommandResult(True)

    async with anyio.create_task_group() as tg:
        await tg.start(partial(broker.run, lambda _: None, answer=confused))
        with anyio.fail_after(5):
            assert await broker.query(RoomsQuery()) == []
            assert await broker.query(SocketCommand("disconnect", "s")) == [CommandResult(True)]
        tg.cancel_scope.cancel()
    assert broker.drops.counts == {"an answer of the wrong type": 1}
