"""Connection state recovery in one process (issue 15): the store, the server,
the GOSF layer and gosf's own client, all in memory.

The log and the parked sessions are tested sans-IO, on a clock the test
moves. The rest talks through ``tests.harness.WireClient``, which keeps every
packet the server sent, so the CONNECT reply's ``pid`` and each event's
offset are asserted on as they went over the wire; the client it wraps is
gosf's own, which sends them back when it connects again after a drop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

import gosf
import gosf.testing
from gosf._socketio.adapter import Adapter
from gosf._socketio.recovery import ParkedSession, with_offset
from gosf._socketio.recovery_store import MemoryStore
from gosf.brokers import Broadcast
from gosf.protocol.engineio import Packet as EnginePacket
from gosf.protocol.parser import MSGPACK_PARSER
from gosf.protocol.socketio import PacketType, encode_event
from gosf.testing import TestServer
from tests.harness import Watch, WireClient

pytestmark = pytest.mark.anyio


# -- the store, sans-IO ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def store(clock: Clock | None = None, **options: Any) -> MemoryStore:
    return MemoryStore(gosf.Recovery(**options), clock=clock or Clock())


def record(
    log: MemoryStore, n: int, rooms: tuple[str, ...] | None = None, skip: str | None = None
) -> str:
    """Log event ``n``; returns its offset, as the client reads it."""
    (packet,) = log.record(encode_event("/", "news", (n,)), rooms, skip)
    *_, offset = arguments(packet.data)
    return str(offset)


def arguments(text: str | bytes) -> list[Any]:
    """The event name and arguments of an encoded EVENT of namespace ``/``."""
    assert isinstance(text, str) and text.startswith("2")
    args: list[Any] = orjson.loads(text[1:])
    return args


def numbers(replayed: list[list[EnginePacket]] | None) -> list[int]:
    assert replayed is not None
    return [arguments(packets[0].data)[1] for packets in replayed]


def parked(rooms: set[str], since: str, sid: str = "me") -> ParkedSession:
    return ParkedSession("pid", sid, frozenset(rooms | {sid}), {}, since)


def test_the_offset_goes_in_as_the_last_argument_without_encoding_again() -> None:
    assert with_offset(['2["news",1]'], "x-0") == ['2["news",1,"x-0"]']
    assert with_offset(['2/chat,["news"]'], "x-1") == ['2/chat,["news","x-1"]']
    binary = encode_event("/", "file", (b"\x00",))
    tagged = with_offset(binary, "x-2")
    assert tagged[0] == f"{binary[0]!s}"[:-1] + ',"x-2"]' and tagged[1:] == binary[1:]


def test_a_msgpack_event_gets_its_offset_encoded_again() -> None:
    pytest.importorskip("msgpack")
    parts = MSGPACK_PARSER.encode_event("/chat", "file", (b"\x00", {"n": 1}))
    decoder = MSGPACK_PARSER.decoder(5, max_attachment_bytes=None)
    packet = None
    for part in with_offset(parts, "x-3", MSGPACK_PARSER):
        packet = decoder.feed(part)
    assert packet is not None
    assert (packet.namespace, packet.data) == ("/chat", ["file", b"\x00", {"n": 1}, "x-3"])


async def test_replay_is_what_the_rooms_got_after_the_offset_in_order() -> None:
    log = store()
    since = log.position()
    first = record(log, 1, ("a",))
    record(log, 2, ("b",))  # another room
    record(log, 3)  # the whole namespace
    record(log, 4, ("a", "b"))
    record(log, 5, ("a",), skip="me")  # skipped the session's socket
    record(log, 6, ("me",))  # to the socket itself
    session = parked({"a"}, since)
    assert numbers(await log.replay(session, first)) == [3, 4, 6]
    # No offset: the client received nothing since it connected.
    assert numbers(await log.replay(session, None)) == [1, 3, 4, 6]


async def test_replay_leaves_out_what_left_the_session_s_rooms_out() -> None:
    log = store()
    since = log.position()
    log.record(encode_event("/", "news", (1,)), None, None, ("muted",))
    record(log, 2)
    assert numbers(await log.replay(parked({"muted"}, since), None)) == [2]
    assert numbers(await log.replay(parked({"other"}, since), None)) == [1, 2]


async def test_an_offset_from_before_the_connection_replays_from_the_connection() -> None:
    # The client keeps its last offset: one it got before an earlier recovery
    # was replayed then, and must not be again.
    log = store()
    old = record(log, 1)
    since = log.position()
    record(log, 2)
    assert numbers(await log.replay(parked(set(), since), old)) == [2]


async def test_offsets_the_log_cannot_vouch_for_give_no_replay() -> None:
    log = store(max_packets=2)
    since = log.position()
    first = record(log, 1)
    record(log, 2)
    record(log, 3)  # the log keeps 2 and 3: 1 is gone
    session = parked(set(), since)
    assert await log.replay(session, None) is None  # from the connection: 1 was dropped
    assert numbers(await log.replay(session, first)) == [2, 3]  # after 1: all there
    assert await log.replay(session, "another-store-0") is None
    assert await log.replay(session, log.position()[:-1] + "ff") is None  # never written


async def test_the_log_is_bounded_by_bytes_and_by_age() -> None:
    clock = Clock()
    log = store(clock, max_bytes=1024, max_disconnection_duration=10)
    for n in range(100):
        record(log, n)
    assert log.statistics()["bytes"] <= 1024
    assert log.statistics()["packets"] < 100
    clock.now = 11
    log.sweep()
    assert log.statistics() == {"packets": 0, "bytes": 0, "sessions": 0}


async def test_parked_sessions_expire_and_are_taken_once() -> None:
    clock = Clock()
    log = store(clock, max_disconnection_duration=10, max_sessions=2)
    for pid in ("p1", "p2", "p3"):
        await log.park(ParkedSession(pid, "sid-" + pid, frozenset(), {}, log.position()))
    assert log.statistics()["sessions"] == 2  # the oldest went first
    assert await log.take("p1") is None
    taken = await log.take("p2")
    assert taken is not None and taken.sid == "sid-p2"
    assert await log.take("p2") is None
    clock.now = 10.5
    assert await log.take("p3") is None  # expired
    await log.park(ParkedSession("p4", "s", frozenset(), {}, log.position()))
    clock.now = 21
    log.sweep()
    assert log.statistics()["sessions"] == 0


@dataclass(eq=False)
class Outlet:
    got: list[list[EnginePacket]] = field(default_factory=list)
    writable: bool = True

    def send_nowait(self, packets: list[EnginePacket]) -> bool:
        self.got.append(packets)
        return True


@dataclass(eq=False)
class Member:
    sid: str
    connected: bool = True
    session: Outlet = field(default_factory=Outlet)


async def test_the_adapter_logs_broadcasts_of_other_processes_with_its_own_offsets() -> None:
    adapter: Adapter[Member] = Adapter("/")
    log = adapter.recovery = store()
    member = Member("me")
    adapter.attach(member)
    since = log.position()
    parts = encode_event("/", "news", (1,))
    assert adapter.receive(Broadcast("/", tuple(parts), None, None)) == 1
    (delivered,) = member.session.got
    assert arguments(delivered[0].data)[:2] == ["news", 1]  # with an offset after them
    assert parts == encode_event("/", "news", (1,))  # what the broker carries: no offset
    assert numbers(await log.replay(parked(set(), since), None)) == [1]


# -- the server ------------------------------------------------------------------------


@asynccontextmanager
async def recovering(recovery: bool = True) -> AsyncIterator[TestServer]:
    server = gosf.SocketIOServer(recovery=gosf.Recovery() if recovery else None)

    @server.on_connect
    async def connected(socket: gosf.Socket, auth: dict[str, Any]) -> None:
        socket.state["connects"] = socket.state.get("connects", 0) + 1

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
            "connects": socket.state.get("connects"),
            "recovered": socket.recovered,
            "rooms": sorted(room for room in socket.rooms if room != socket.sid),
        }

    @server.on("shout")
    async def shout(socket: gosf.Socket, room: str, n: int) -> None:
        await server.emit("news", n, to=room)

    @server.on("tell-me")
    async def tell_me(socket: gosf.Socket, n: int) -> None:
        await socket.emit("told", n)

    async with server.running():
        yield TestServer(server)


def connect_reply(client: WireClient) -> dict[str, Any]:
    replies = [p.data for p in client.packets if p.type is PacketType.CONNECT]
    assert replies, "no CONNECT reply"
    reply: dict[str, Any] = replies[-1]
    return reply


async def test_a_dropped_client_gets_back_its_session_and_what_it_missed() -> None:
    async with recovering() as test:
        first = WireClient(test)
        async with first.connect():
            reply = connect_reply(first)
            assert set(reply) == {"sid", "pid"} and reply["pid"] != reply["sid"]
            await first.call("join", "room")
            await first.call("remember", 42)
            async with WireClient(test).connect() as other:
                await other.call("shout", "room", 0)
                n, offset = await first.next_event("news")
                assert n == 0 and isinstance(offset, str)
                await first.drop()
                for n in range(1, 6):
                    await other.call("shout", "room", n)
        again = WireClient(test)
        async with again.connect(auth={"pid": reply["pid"], "offset": offset}):
            assert connect_reply(again) == reply  # the same sid and pid
            missed = [await again.next_event("news") for _ in range(5)]
            assert [args[0] for args in missed] == [1, 2, 3, 4, 5]
            assert await again.call("recall") == [
                {"value": 42, "connects": 1, "recovered": True, "rooms": ["room"]}
            ]
            async with WireClient(test).connect() as other:
                await other.call("shout", "room", 6)
            assert (await again.next_event("news"))[0] == 6
            assert again.events("news") == []


async def test_events_to_one_client_carry_offsets_and_acks_never_do() -> None:
    async with recovering() as test, WireClient(test).connect() as client:
        assert await client.call("tell-me", 1) == []  # an ack: no offset added
        n, offset = await client.next_event("told")
        assert n == 1 and isinstance(offset, str)


async def test_a_deliberate_disconnect_parks_nothing() -> None:
    async with recovering() as test:
        first = WireClient(test)
        async with first.connect():  # leaving the block sends DISCONNECT
            reply = connect_reply(first)
            await first.call("remember", 42)
            await first.call("tell-me", 1)
            _, offset = await first.next_event("told")
        again = WireClient(test)
        async with again.connect(auth={"pid": reply["pid"], "offset": offset}):
            fresh = connect_reply(again)
            assert fresh["sid"] != reply["sid"] and fresh["pid"] != reply["pid"]
            assert (await again.call("recall"))[0]["recovered"] is False


async def test_an_unknown_pid_or_offset_gives_a_fresh_session() -> None:
    async with recovering() as test:
        first = WireClient(test)
        async with first.connect():
            reply = connect_reply(first)
            await first.drop()
        again = WireClient(test)
        async with again.connect(auth={"pid": reply["pid"], "offset": "not-ours-0"}):
            assert connect_reply(again)["sid"] != reply["sid"]
        # The session was taken (and refused): it cannot be taken again.
        third = WireClient(test)
        async with third.connect(auth={"pid": reply["pid"]}):
            assert connect_reply(third)["sid"] != reply["sid"]


async def test_recovery_off_changes_nothing_on_the_wire() -> None:
    async with recovering(recovery=False) as test, WireClient(test).connect() as client:
        assert set(connect_reply(client)) == {"sid"}
        await client.call("tell-me", 1)
        assert await client.next_event("told") == [1]


# -- gosf's own client -----------------------------------------------------------------


async def test_gosf_client_resumes_strips_offsets_and_says_it_recovered() -> None:
    async with recovering() as test:
        client = WireClient(test)
        got: list[tuple[Any, ...]] = []
        client.sio.on("news", lambda *args: got.append(args))
        async with client.connect():
            assert client.sio.recovered() is False
            sid = client.sid
            await client.call("join", "room")
            async with WireClient(test).connect() as other:
                await other.call("shout", "room", 1)
                await client.next_event("news")
                await client.drop()
                await other.call("shout", "room", 2)
        async with client.connect():  # the same client, after the drop
            assert client.sio.recovered() is True
            assert client.sid == sid
            await client.next_event("news")  # the replay of 2
            async with WireClient(test).connect() as other:
                await other.call("shout", "room", 3)
            await client.next_event("news")
            assert got == [(1,), (2,), (3,)]  # handlers never see the offsets
        async with client.connect():  # after leaving deliberately: a fresh session
            assert client.sio.recovered() is False
            assert client.sid != sid


# -- the GOSF layer ---------------------------------------------------------------------


def gosf_app() -> gosf.App:
    app = gosf.App({"recovery": {"max_disconnection_duration": 60}})

    @app.on_connect
    async def hello(client: gosf.Client, request: gosf.Request) -> None:
        client.state["hellos"] = client.state.get("hellos", 0) + 1

    async def login(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        client.state["user"] = request.message.text
        client.join("users")
        return gosf.Message.success("ok")

    async def whoami(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(
            str(client.state.get("user")),
            {
                "recovered": client.recovered,
                "hellos": client.state["hellos"],
                "rooms": sorted(client.rooms),
            },
        )

    app.listen("login", login)
    app.listen("whoami", whoami)
    return app


async def test_gosf_client_state_and_rooms_come_back_and_responses_follow_the_rules() -> None:
    app = gosf_app()
    async with gosf.testing.serve(app) as test:
        client = WireClient(test)
        async with client.connect():
            ack = await client.call("login", {"text": "ada"})
            assert len(ack) == 1  # the ack: no offset
            response, offset = await client.next_event("login")  # the event copy: one
            assert response["success"] is True and isinstance(offset, str)
            await client.drop()
        async with client.connect():
            (answer,) = await client.call("whoami", {})
            assert answer["text"] == "ada"
            assert answer["body"] == {"recovered": True, "hellos": 1, "rooms": ["users"]}
            assert app.clients[client.sid].recovered is True


async def test_connect_handlers_run_again_if_asked_and_nothing_comes_twice() -> None:
    server = gosf.SocketIOServer(recovery=gosf.Recovery(skip_connect_handlers=False))

    @server.on_connect
    async def connected(socket: gosf.Socket, auth: dict[str, Any]) -> None:
        await socket.emit("welcome", socket.recovered)
        if socket.recovered:
            # A broadcast to its room while it is not back in it yet: replayed.
            await server.emit("news", "meanwhile", to="room")

    @server.on("join")
    async def join(socket: gosf.Socket, room: str) -> None:
        socket.join(room)

    async with server.running():
        test = TestServer(server)
        client = WireClient(test)
        async with client.connect():
            await client.call("join", "room")
            assert (await client.next_event("welcome"))[0] is False
            await client.drop()
        async with client.connect():
            assert client.sio.recovered()
            assert (await client.next_event("welcome"))[0] is True
            assert (await client.next_event("news"))[0] == "meanwhile"
            await client.call("join", "room")  # a round trip: all was written out
            assert client.events("welcome") == [] and client.events("news") == []


async def test_a_replay_larger_than_the_outbound_queue_gives_a_fresh_session() -> None:
    server = gosf.SocketIOServer(recovery=gosf.Recovery(), max_outbound_buffer=8)

    @server.on("shout")
    async def shout(socket: gosf.Socket, n: int) -> None:
        await server.emit("news", n)

    async with server.running():
        test = TestServer(server)
        client = WireClient(test)
        async with client.connect():
            sid = client.sid
            await client.drop()
        async with WireClient(test).connect() as other:
            for n in range(8):  # with the CONNECT reply, one more than the queue holds
                await other.call("shout", n)
        async with client.connect():
            assert client.sid != sid and not client.sio.recovered()


async def test_socket_io_2_clients_get_no_recovery_session() -> None:
    server = gosf.SocketIOServer(recovery=gosf.Recovery())

    @server.on("pid")
    async def pid(socket: gosf.Socket) -> str | None:
        return socket.pid

    async with server.running():
        client = gosf.SocketIOClient(protocol=4)
        connector = gosf.testing.asgi_connector(server)
        async with client.connect("http://testserver", connector=connector):
            assert await client.call("pid") is None


async def test_a_client_back_before_the_server_saw_it_drop_takes_its_session_over() -> None:
    # The first connection stays open, as a dead one does until its heartbeat
    # fails; what went into it after the client's last offset was lost.
    async with recovering() as test:
        first = WireClient(test)
        async with first.connect():
            reply = connect_reply(first)
            await first.call("join", "room")
            async with WireClient(test).connect() as other:
                await other.call("shout", "room", 0)
                _, offset = await first.next_event("news")
                for n in (1, 2):
                    await other.call("shout", "room", n)  # written into the "dead" transport
            again = WireClient(test)
            async with again.connect(auth={"pid": reply["pid"], "offset": offset}):
                assert connect_reply(again) == reply
                assert [(await again.next_event("news"))[0] for _ in (1, 2)] == [1, 2]
                await first.sio.wait_disconnected()  # the old one was closed
                (recall,) = await again.call("recall")
                assert recall["recovered"] is True and recall["rooms"] == ["room"]


async def test_recovery_with_the_msgpack_parser() -> None:
    pytest.importorskip("msgpack")
    server = gosf.SocketIOServer(recovery=gosf.Recovery(), parser="msgpack")

    @server.on("shout")
    async def shout(socket: gosf.Socket, n: int) -> None:
        await server.emit("news", n)

    connector = gosf.testing.asgi_connector(server)
    websockets: list[Any] = []

    @asynccontextmanager
    async def keeping(url: str, headers: Iterable[tuple[str, str]]) -> AsyncIterator[Any]:
        async with connector(url, headers) as ws:
            websockets.append(ws)
            yield ws

    got: list[tuple[Any, ...]] = []
    arrived = Watch()

    def news(*args: Any) -> None:
        got.append(args)
        arrived.notify()

    client = gosf.SocketIOClient(parser="msgpack")
    client.on("news", news)
    other = gosf.SocketIOClient(parser="msgpack")
    url = "http://testserver"
    async with server.running(), other.connect(url, connector=connector):
        async with client.connect(url, connector=keeping):
            sid = client.sid()
            await other.call("shout", 1)
            await arrived.until(lambda: len(got) == 1)
            await websockets[-1].aclose(1006)  # dropped: no DISCONNECT
            await client.wait_disconnected()
        await other.call("shout", 2)
        async with client.connect(url, connector=keeping):
            assert client.recovered() and client.sid() == sid
            await arrived.until(lambda: len(got) == 2)
    assert got == [(1,), (2,)]  # offsets taken off


async def test_volatile_events_carry_no_offset_and_are_not_replayed() -> None:
    server = gosf.SocketIOServer(recovery=gosf.Recovery())

    @server.on("volatile")
    async def volatile(socket: gosf.Socket, n: int) -> None:
        await server.emit("news", n, volatile=True)
        await socket.emit("told", n, volatile=True)

    @server.on("shout")
    async def shout(socket: gosf.Socket, n: int) -> None:
        await server.emit("news", n)

    async with server.running():
        test = TestServer(server)
        client = WireClient(test)
        store = server.namespace("/").adapter.recovery
        assert isinstance(store, MemoryStore)
        async with client.connect():
            await client.call("volatile", 1)
            assert await client.next_event("news") == [1]  # no offset
            assert client.events("told") in ([], [[1]])  # volatile: if it could go at once
            assert store.statistics()["packets"] == 0  # neither was logged
            await client.drop()
        async with WireClient(test).connect() as other:
            await other.call("volatile", 2)  # dropped for the absent client: not owed
            await other.call("shout", 3)
        async with client.connect():
            assert client.sio.recovered()
            assert (await client.next_event("news"))[0] == 3
            await client.call("shout", 4)
            assert (await client.next_event("news"))[0] == 4


async def test_skip_rooms_hold_for_the_replay_too() -> None:
    server = gosf.SocketIOServer(recovery=gosf.Recovery())

    @server.on("join")
    async def join(socket: gosf.Socket, room: str) -> None:
        socket.join(room)

    @server.on("shout")
    async def shout(socket: gosf.Socket, n: int) -> None:
        await server.emit("news", n, skip_rooms="muted")

    async with server.running():
        test = TestServer(server)
        client = WireClient(test)
        async with client.connect():
            await client.call("join", "muted")
            await client.drop()
        async with WireClient(test).connect() as other:
            await other.call("shout", 1)
        async with client.connect():
            assert client.sio.recovered()
            await client.call("join", "muted")  # a round trip: the replay is in
            assert client.events("news") == []
