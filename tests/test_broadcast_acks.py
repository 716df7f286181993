"""Broadcasts with acks, socket queries and room-filtered actions, across servers.

Two ``SocketIOServer``\\ s share a ``MemoryBus`` (the seam a RedisBroker plugs
into) and gosf's own clients talk to each in memory (``asgi_connector``).
The client answers the server's events by its handlers' return values.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest

from gosf import SocketIOClient
from gosf._client.asgi import asgi_connector
from gosf._socketio.acks import BROADCAST_ACK_IDS
from gosf._socketio.acks_wire import decode_answer, decode_packet, encode_answer
from gosf._socketio.server import SocketIOServer
from gosf.brokers import (
    AckBroadcast,
    AckRecipients,
    FetchSockets,
    MemoryBus,
    RoomsCommand,
    SocketCount,
    SocketInfo,
    SocketList,
)
from gosf.brokers._queries import decode_answer as decode_query_answer
from gosf.brokers._queries import decode_query, encode
from gosf.protocol.parser import JSON_PARSER, MSGPACK_PARSER, Parser

pytestmark = pytest.mark.anyio

WAIT = 5.0


@asynccontextmanager
async def two_servers() -> AsyncIterator[tuple[SocketIOServer, SocketIOServer]]:
    bus = MemoryBus()
    first, second = SocketIOServer(broker=bus.broker()), SocketIOServer(broker=bus.broker())
    for server in (first, second):

        @server.on("join")
        async def join(socket: Any, room: str) -> str:
            socket.join(room)
            socket.state["joined"] = room
            socket.state["unserialisable"] = object()
            socket.state["when"] = datetime.date(2026, 12, 5)  # JSON carries it as a string
            return str(socket.sid)

    async with first, second:
        yield first, second


class Clients:
    """gosf clients connected in memory, each answering ``ping`` as ``answer`` says."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self.stack = stack

    async def connect(
        self, server: SocketIOServer, answer: Callable[..., Any] | None = None, **query: str
    ) -> SocketIOClient:
        client = SocketIOClient()
        if answer is not None:
            client.on("ping", answer)
        url = "http://testserver" + (
            "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
        )
        await self.stack.enter_async_context(
            client.connect(url, connector=asgi_connector(server), auth={"token": "t"})
        )
        return client


@asynccontextmanager
async def clients() -> AsyncIterator[Clients]:
    async with AsyncExitStack() as stack:
        yield Clients(stack)


def sid_of(client: SocketIOClient) -> str:
    sid = client.sid()
    assert sid is not None
    return sid


async def test_acks_come_with_their_sids_from_both_servers(anyio_backend: str) -> None:
    async with two_servers() as (first, second), clients() as made:
        a = await made.connect(first, lambda n: ("a", n))
        b = await made.connect(second, lambda n: ("b", n))
        c = await made.connect(second, lambda n: None)
        with anyio.fail_after(WAIT):
            result = await first.emit_with_ack("ping", 7, timeout=WAIT)
        assert result.answers == {sid_of(a): ("a", 7), sid_of(b): ("b", 7), sid_of(c): None}
        assert result.timed_out == frozenset() and result.disconnected == frozenset()


async def test_acks_stream_as_they_come_and_late_ones_time_out(anyio_backend: str) -> None:
    release = anyio.Event()

    async def late(n: int) -> str:
        await release.wait()
        return "late"

    async with two_servers() as (first, second), clients() as made:
        a = await made.connect(first, lambda n: "a")
        b = await made.connect(second, lambda n: "b")
        slow = await made.connect(second, late)
        seen = []
        with anyio.fail_after(WAIT):
            async with first.stream_acks("ping", 1, timeout=0.5) as stream:
                async for sid, answer in stream:
                    seen.append((sid, answer))
            result = stream.result()
        release.set()
        assert sorted(seen) == sorted([(sid_of(a), "a"), (sid_of(b), "b")])
        assert result.timed_out == {sid_of(slow)}
        assert stream.recipients == {sid_of(a), sid_of(b), sid_of(slow)}


async def test_a_client_that_disconnects_mid_collection_is_not_waited_for(
    anyio_backend: str,
) -> None:
    async with two_servers() as (first, second), clients() as made:
        local_gone, remote_gone = anyio.Event(), anyio.Event()
        a = await made.connect(first, lambda n: "a")
        quitter = SocketIOClient()
        remote_quitter = SocketIOClient()

        async def leave_local(n: int) -> None:
            local_gone.set()
            await anyio.sleep_forever()

        async def leave_remote(n: int) -> None:
            remote_gone.set()
            await anyio.sleep_forever()

        quitter.on("ping", leave_local)
        remote_quitter.on("ping", leave_remote)
        results = []

        async def collect() -> None:
            # A long timeout: the collection must end because both left, not by it.
            results.append(await first.emit_with_ack("ping", 1, timeout=60))

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                async with (
                    quitter.connect("http://testserver", connector=asgi_connector(first)),
                    remote_quitter.connect("http://testserver", connector=asgi_connector(second)),
                ):
                    gone = {sid_of(quitter), sid_of(remote_quitter)}
                    tg.start_soon(collect)
                    await local_gone.wait()
                    await remote_gone.wait()
                # both clients are gone now; the collection ends without its timeout
        (result,) = results
        assert result.answers == {sid_of(a): "a"}
        assert result.timed_out == gone and result.disconnected == gone


async def test_leaving_the_stream_early_forgets_the_waiters(anyio_backend: str) -> None:
    async with two_servers() as (first, second), clients() as made:
        await made.connect(first, lambda n: "a")
        b = await made.connect(second, lambda n: "b")
        with anyio.fail_after(WAIT):
            async with first.stream_acks("ping", 1, timeout=60) as stream:
                async for _ in stream:
                    break
        # the local socket no longer waits for an ack of that broadcast
        for socket in first.namespace("/").sockets.values():
            assert not socket._sinks
        # and a later answer has no collection to go to on the origin
        assert not first._node.acks._collections
        assert sid_of(b)


async def test_acks_of_rooms_skip_rooms(anyio_backend: str) -> None:
    async with two_servers() as (first, second), clients() as made:
        a = await made.connect(first, lambda n: "a")
        b = await made.connect(second, lambda n: "b")
        c = await made.connect(second, lambda n: "c")
        for client, rooms in ((a, ["red"]), (b, ["red", "blue"]), (c, ["green"])):
            for room in rooms:
                await client.call("join", room, timeout=WAIT)
        with anyio.fail_after(WAIT):
            result = await first.emit_with_ack(
                "ping", 1, to=["red", "green"], skip_rooms=["blue"], timeout=WAIT
            )
        assert result.answers == {sid_of(a): "a", sid_of(c): "c"}


async def test_an_ack_timeout_is_mandatory_and_positive(anyio_backend: str) -> None:
    async with two_servers() as (first, _):
        with pytest.raises(ValueError, match="positive"):
            await first.emit_with_ack("ping", timeout=0)
        with anyio.fail_after(WAIT):
            empty = await first.emit_with_ack("ping", timeout=WAIT)  # nobody: at once
        assert empty.answers == {} and empty.timed_out == frozenset()


async def test_socket_queries_and_room_actions_cross_servers(anyio_backend: str) -> None:
    async with two_servers() as (first, second), clients() as made:
        a = await made.connect(first, tag="x")
        b = await made.connect(second)
        c = await made.connect(second)
        await a.call("join", "red", timeout=WAIT)
        await b.call("join", "red", timeout=WAIT)
        await c.call("join", "blue", timeout=WAIT)
        with anyio.fail_after(WAIT):
            found = await first.fetch_sockets("red")
        assert [info.sid for info in found] == [sid_of(a), sid_of(b)]  # this process's first
        info = found[0]
        assert info.node == first.broker.node_id and found[1].node == second.broker.node_id
        assert info.rooms == {sid_of(a), "red"} and info.query["tag"] == "x"
        assert info.auth == {"token": "t"}
        assert info.data == {"joined": "red", "when": "2026-12-05"} == found[1].data
        assert info.headers["host"] == "testserver"
        assert {s.sid for s in await second.fetch_sockets(skip_rooms=["red"])} == {sid_of(c)}

        assert await second.sockets_join("green", rooms="red") == 2
        assert {s.sid for s in await first.fetch_sockets("green")} == {sid_of(a), sid_of(b)}
        got: list[Any] = []
        c.on("news", got.append)
        b_news: list[Any] = []
        b.on("news", b_news.append)
        a_news = anyio.Event()
        a.on("news", lambda *_: a_news.set())
        await first.emit("news", "hi", to="green")
        with anyio.fail_after(WAIT):
            await a_news.wait()
            await b.call("join", "red", timeout=WAIT)  # a round trip: what came before is there
        assert b_news == ["hi"] and got == []

        assert await first.sockets_leave("green", rooms="red", skip_rooms=[sid_of(a)]) == 1
        assert {s.sid for s in await first.fetch_sockets("green")} == {sid_of(a)}

        assert await first.disconnect_sockets("red") == 2
        with anyio.fail_after(WAIT):
            await a.wait_disconnected()
            await b.wait_disconnected()
        assert c.connected
        assert [s.sid for s in await first.fetch_sockets()] == [sid_of(c)]


async def test_disconnect_sockets_with_close_ends_the_connection(anyio_backend: str) -> None:
    async with two_servers() as (first, second), clients() as made:
        second.namespace("/other")
        client = SocketIOClient()
        await made.stack.enter_async_context(
            client.connect(
                "http://testserver", namespaces=["/", "/other"], connector=asgi_connector(second)
            )
        )
        assert await first.disconnect_sockets(close=True) == 1
        with anyio.fail_after(WAIT):
            await client.wait_disconnected()


# -- the wire forms ------------------------------------------------------------------------

QUERIES = [
    FetchSockets(),
    FetchSockets("/chat", ("red",), ("blue",)),
    RoomsCommand("sockets-join", "/", None, ("x",), ("green", "gold")),
    RoomsCommand("sockets-leave", "/", ("red",), (), ("green",)),
    RoomsCommand("sockets-disconnect", "/", ("red",), close=True),
    AckBroadcast("/", ('451-["ping",{"_placeholder":true,"num":0}]', b"\x00\xff"), "n1", "7", 2.5),
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_new_queries_round_trip_through_json(query: Any) -> None:
    import orjson

    assert decode_query(orjson.loads(orjson.dumps(encode(query)))) == query


def test_the_new_answers_round_trip_through_json() -> None:
    import orjson

    socket = SocketInfo(
        "s",
        "/",
        frozenset({"s", "red"}),
        "n1",
        {"host": "h"},
        {"EIO": "4"},
        {"a": 1},
        ("127.0.0.1", 5),
        {},
    )
    for query, answer in (
        (FetchSockets(), SocketList((socket,))),
        (RoomsCommand("sockets-disconnect"), SocketCount(2)),
        (QUERIES[-1], AckRecipients("n1", ("s", "t"))),
    ):
        assert decode_query_answer(query, orjson.loads(orjson.dumps(encode(answer)))) == answer


@pytest.mark.parametrize(
    "obj",
    [
        {"op": "fetch-sockets", "n": "/", "in": "red"},
        {"op": "fetch-sockets", "n": "/", "ex": [1]},
        {"op": "sockets-join", "n": "/", "to": []},
        {"op": "sockets-disconnect", "n": "/", "close": 1},
        {"op": "broadcast-ack", "n": "/", "o": "n", "b": "1", "t": 0, "p": "2"},
        {"op": "broadcast-ack", "n": "/", "o": "n", "b": "1", "t": 1, "p": "2", "att": ["!"]},
    ],
)
def test_malformed_new_queries_do_not_decode(obj: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        decode_query(obj)


@pytest.mark.parametrize("parser", [JSON_PARSER, MSGPACK_PARSER], ids=["json", "msgpack"])
def test_a_forwarded_ack_round_trips_with_binary_data(parser: Parser) -> None:
    message = encode_answer(parser, "3", "sid", "/", ["ok", b"\x01\x02", {"n": [1]}])
    assert decode_answer(parser, message) == ("3", "sid", ["ok", b"\x01\x02", {"n": [1]}])
    assert decode_answer(parser, encode_answer(parser, "3", "sid", "/", None)) == (
        "3",
        "sid",
        None,
    )
    with pytest.raises(ValueError):
        decode_answer(parser, b"gosf-ack\n[]")


def test_broadcast_ack_ids_fit_the_protocol() -> None:
    assert len(str(BROADCAST_ACK_IDS)) < 15


async def test_an_error_in_the_stream_block_comes_out_as_itself(anyio_backend: str) -> None:
    async with two_servers() as (first, second), clients() as made:
        await made.connect(second, lambda n: "b")
        with anyio.fail_after(WAIT), pytest.raises(KeyError):
            async with first.stream_acks("ping", 1, timeout=60):
                raise KeyError("mine")
        assert not first._node.acks._collections


async def test_a_server_that_stops_mid_collection_leaves_its_recipients_timed_out(
    anyio_backend: str,
) -> None:
    bus = MemoryBus()
    first, second = SocketIOServer(broker=bus.broker()), SocketIOServer(broker=bus.broker())
    asked = anyio.Event()

    async def never(n: int) -> None:
        asked.set()
        await anyio.sleep_forever()

    async with first, clients() as made:
        a = await made.connect(first, lambda n: "a")
        results = []

        async def collect() -> None:
            results.append(await first.emit_with_ack("ping", 1, timeout=1))

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                async with second:
                    b = SocketIOClient()
                    b.on("ping", never)
                    async with b.connect("http://testserver", connector=asgi_connector(second)):
                        sid_b = sid_of(b)
                        tg.start_soon(collect)
                        await asked.wait()
                # the second server stopped mid-collection, its client with it
        assert results[0].answers == {sid_of(a): "a"}
        assert results[0].timed_out == {sid_b}


async def test_binary_data_crosses_servers_both_ways(anyio_backend: str) -> None:
    async with two_servers() as (first, second), clients() as made:
        b = await made.connect(second, lambda data: data + b"!")
        with anyio.fail_after(WAIT):
            result = await first.emit_with_ack("ping", b"\x00\xff", timeout=WAIT)
        assert result.answers == {sid_of(b): b"\x00\xff!"}


async def test_a_server_forwarding_too_many_refuses_and_names_no_recipient(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("gosf._socketio.acks.MAX_FORWARDING", 0)
    async with two_servers() as (first, second), clients() as made:
        a = await made.connect(first, lambda n: "a")
        got = anyio.Event()
        b = await made.connect(second, lambda n: got.set())
        with anyio.fail_after(WAIT):
            result = await first.emit_with_ack("ping", 1, timeout=WAIT)
        # the local answer, at once: the other server sent nothing and named nobody
        assert result.answers == {sid_of(a): "a"} and result.timed_out == frozenset()
        assert not got.is_set() and sid_of(b)
    assert "refused a broadcast with acks" in caplog.text


async def test_acks_cross_servers_that_speak_msgpack(anyio_backend: str) -> None:
    bus = MemoryBus()
    first = SocketIOServer(broker=bus.broker(), parser="msgpack")
    second = SocketIOServer(broker=bus.broker(), parser="msgpack")
    async with first, second, AsyncExitStack() as stack:
        answering = []
        for server, name in ((first, "a"), (second, "b")):
            client = SocketIOClient(parser="msgpack")
            client.on("ping", lambda data, name=name: [name, data + b"!"])
            connector = asgi_connector(server)
            await stack.enter_async_context(client.connect("http://t", connector=connector))
            answering.append(client)
        with anyio.fail_after(WAIT):
            result = await first.emit_with_ack("ping", b"\x00", timeout=WAIT)
        a, b = (sid_of(client) for client in answering)
    assert result.answers == {a: ["a", b"\x00!"], b: ["b", b"\x00!"]}


def test_a_broadcast_of_another_process_may_carry_many_attachments() -> None:
    # gosf's own client takes at most 10 attachments a packet; npm clients take
    # any number, and a process must not drop a broadcast with acks for them.
    many = [bytes([n]) for n in range(12)]
    parts = JSON_PARSER.encode_event("/", "count", many, 7)
    assert decode_packet(JSON_PARSER, parts) == ["count", *many]


async def test_the_app_queries_its_own_namespace(anyio_backend: str) -> None:
    import gosf
    import gosf.testing

    app = gosf.App({"namespace": "/game"})

    @app.listen("ready")
    async def ready(client: gosf.Client, request: gosf.Request) -> None:
        client.join("players")

    async with gosf.testing.serve(app) as server, server.client() as client:
        await client.request("ready", {})
        with anyio.fail_after(WAIT):
            found = await app.cluster_clients("players")
            acks = await app.broadcast_with_ack(
                "players", "poll", gosf.Message.success(), timeout=0.5
            )
            moved = await app.join_clients("players", "table")
        assert [info.namespace for info in found] == ["/game"]
        assert set(acks.answers) | acks.timed_out == {found[0].sid}  # it was asked
        assert moved == 1
