"""Observers of a SocketIOServer (``server.observe``): every event reported once, with
its arguments (sizes against the encoded packets, reasons typed), in order with the
handlers; an observer that raises does not disturb the server; a removed one hears
nothing more. In memory, both backends."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import gosf
import gosf.testing
from gosf._socketio.observer import METHODS, overrides
from gosf.brokers import MemoryBus
from gosf.protocol.session import CloseReason
from gosf.protocol.socketio import Packet, PacketType, encode
from gosf.testing import asgi_connector
from tests.harness import Watch

pytestmark = pytest.mark.anyio


def size(packet: Packet, protocol: int = 5) -> int:
    """Bytes of ``packet`` as encoded: text in UTF-8, attachments as they are."""
    return sum(
        len(part.encode()) if isinstance(part, str) else len(part)
        for part in encode(packet, protocol)
    )


class Recorder(gosf.Observer):
    """Writes each call into ``log`` (shared with the handlers, to check the order)."""

    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        self.log = log
        self.changed = Watch()

    def _add(self, *entry: Any) -> None:
        self.log.append(entry)
        self.changed.notify()

    def socket_connected(self, socket: gosf.Socket) -> None:
        self._add("connected", socket.sid)

    def socket_disconnected(
        self, socket: gosf.Socket, reason: gosf.CloseReason | gosf.DisconnectReason
    ) -> None:
        self._add("disconnected", socket.sid, reason, socket.rooms)

    def room_joined(self, socket: gosf.Socket, room: str) -> None:
        self._add("joined", socket.sid, room)

    def room_left(self, socket: gosf.Socket, room: str) -> None:
        self._add("left", socket.sid, room)

    def packet_received(self, socket: gosf.Socket | None, packet: Packet, size: int) -> None:
        self._add("in", None if socket is None else socket.sid, packet, size)

    def packet_sent(self, socket: gosf.Socket | None, packet: Packet, size: int) -> None:
        self._add("out", None if socket is None else socket.sid, packet, size)

    def broadcast_sent(
        self, packet: Packet, size: int, rooms: tuple[str, ...] | None, recipients: int
    ) -> None:
        self._add("broadcast", packet, size, rooms, recipients)

    def ack_received(self, socket: gosf.Socket, event: str, latency: float) -> None:
        assert latency >= 0
        self._add("acked", socket.sid, event)

    def handler_finished(
        self, socket: gosf.Socket, event: str, duration: float, failed: bool
    ) -> None:
        assert duration >= 0
        self._add("finished", socket.sid, event, failed)

    async def until(self, *entry: Any) -> None:
        await self.changed.until(lambda: entry in self.log)


def make_server(log: list[tuple[Any, ...]], **options: Any) -> gosf.SocketIOServer:
    server = gosf.SocketIOServer(**options)

    @server.on("echo")
    async def echo(socket: gosf.Socket, *args: Any) -> Any:
        log.append(("handler", "echo"))
        return args

    @server.on("join")
    async def join(socket: gosf.Socket, room: str) -> None:
        socket.join(room)

    @server.on("leave")
    async def leave(socket: gosf.Socket, room: str) -> None:
        socket.leave(room)

    @server.on("boom")
    async def boom(socket: gosf.Socket) -> None:
        raise RuntimeError("boom")

    @server.on("ask")
    async def ask(socket: gosf.Socket, question: str) -> Any:
        return await socket.call("question", question, timeout=5)

    @server.on("shout")
    async def shout(socket: gosf.Socket, room: str, text: str) -> int:
        return await server.emit("news", text, to=room)

    @server.on("bye")
    async def bye(socket: gosf.Socket) -> None:
        socket.disconnect()

    @server.on_connect
    async def connect(socket: gosf.Socket, auth: dict[str, Any]) -> None:
        if auth.get("refuse"):
            raise gosf.ConnectionRefused("refused", {"why": "asked"})

    return server


@asynccontextmanager
async def running(server: gosf.SocketIOServer) -> AsyncIterator[None]:
    async with server:
        yield


@asynccontextmanager
async def client(
    server: gosf.SocketIOServer, namespaces: tuple[str, ...] = ("/",), **kwargs: Any
) -> AsyncIterator[gosf.SocketIOClient]:
    sio = gosf.SocketIOClient()
    sio.on("question", lambda question: f"answer to {question}")
    async with sio.connect(
        "http://testserver",
        path="/socket.io",
        namespaces=list(namespaces),
        connector=asgi_connector(server),
        **kwargs,
    ):
        yield sio


def sid_of(sio: gosf.SocketIOClient) -> str:
    sid = sio.sid()
    assert sid is not None
    return sid


async def test_a_connection_is_reported_in_order(anyio_backend: str) -> None:
    log: list[tuple[Any, ...]] = []
    server = make_server(log)
    recorder = Recorder(log)
    server.observe(recorder)
    with anyio.fail_after(5):
        async with running(server):
            async with client(server, auth={"token": "é"}) as sio:
                sid = sid_of(sio)
            await recorder.until("left", sid, sid)
    connect_in = Packet(PacketType.CONNECT, "/", {"token": "é"})
    connect_out = Packet(PacketType.CONNECT, "/", {"sid": sid})
    assert log[:4] == [
        ("in", None, connect_in, size(connect_in)),  # the auth's é is two bytes
        ("joined", sid, sid),
        ("out", sid, connect_out, size(connect_out)),
        ("connected", sid),
    ]
    disconnect_in = Packet(PacketType.DISCONNECT, "/")
    assert log[4:] == [
        ("in", sid, disconnect_in, size(disconnect_in)),
        ("disconnected", sid, gosf.DisconnectReason.CLIENT_NAMESPACE_DISCONNECT, {sid}),
        ("left", sid, sid),
    ]
    assert type(log[5][2]) is gosf.DisconnectReason


async def test_an_event_with_an_ack_in_order_with_its_handler(anyio_backend: str) -> None:
    log: list[tuple[Any, ...]] = []
    server = make_server(log)
    recorder = Recorder(log)
    server.observe(recorder)
    with anyio.fail_after(5):
        async with running(server), client(server) as sio:
            sid = sid_of(sio)
            log.clear()
            assert await sio.call("echo", "héllo ✓", 1) == ("héllo ✓", 1)
            await recorder.until("finished", sid, "echo", False)
            event = log[0][2]
            assert event.type is PacketType.EVENT and event.data == ["echo", "héllo ✓", 1]
            ack = Packet(PacketType.ACK, "/", ["héllo ✓", 1], event.id)
            assert log == [
                ("in", sid, event, size(event)),
                ("handler", "echo"),
                ("out", sid, ack, size(ack)),
                ("finished", sid, "echo", False),
            ]
            assert size(event) > len(encode(event)[0])  # bytes, not characters

            log.clear()
            await sio.emit("boom")
            await recorder.until("finished", sid, "boom", True)  # failed: it raised


async def test_binary_packets_count_their_attachments(anyio_backend: str) -> None:
    log: list[tuple[Any, ...]] = []
    server = make_server(log)
    recorder = Recorder(log)
    server.observe(recorder)
    blob = bytes(range(200))
    with anyio.fail_after(5):
        async with running(server), client(server) as sio:
            sid = sid_of(sio)
            log.clear()
            assert await sio.call("echo", blob, "x") == (blob, "x")
            await recorder.until("finished", sid, "echo", False)
    event, ack = log[0][2], log[2][2]
    assert event == Packet(PacketType.BINARY_EVENT, "/", ["echo", blob, "x"], event.id)
    assert ack == Packet(PacketType.BINARY_ACK, "/", [blob, "x"], event.id)
    assert log[0] == ("in", sid, event, size(event))
    assert log[2] == ("out", sid, ack, size(ack))
    assert size(ack) > len(blob) and len(encode(ack)) == 2


async def test_a_call_to_the_client_reports_its_ack_latency(anyio_backend: str) -> None:
    log: list[tuple[Any, ...]] = []
    server = make_server(log)
    recorder = Recorder(log)
    server.observe(recorder)
    with anyio.fail_after(5):
        async with running(server), client(server) as sio:
            sid = sid_of(sio)
            log.clear()
            assert await sio.call("ask", "why") == "answer to why"
            await recorder.until("finished", sid, "ask", False)
            log = list(log)  # what came before the client left
    question = log[1][2]
    answer = log[2][2]
    assert question == Packet(PacketType.EVENT, "/", ["question", "why"], question.id)
    assert question.id is not None
    assert log[1:] == [
        ("out", sid, question, size(question)),
        ("in", sid, answer, size(answer)),
        ("acked", sid, "question"),
        ("out", sid, Packet(PacketType.ACK, "/", ["answer to why"], log[0][2].id), log[4][3]),
        ("finished", sid, "ask", False),
    ]
    assert answer == Packet(PacketType.ACK, "/", ["answer to why"], question.id)


async def test_rooms_joined_and_left_once_each(anyio_backend: str) -> None:
    log: list[tuple[Any, ...]] = []
    server = make_server(log)
    recorder = Recorder(log)
    server.observe(recorder)
    with anyio.fail_after(5):
        async with running(server), client(server) as sio:
            sid = sid_of(sio)
            for _ in range(2):
                await sio.call("join", "red")
            await sio.call("join", "blue")
            await sio.call("leave", "red")
            await sio.call("leave", "red")  # not in it: nothing to report
            await sio.emit("bye")
            await recorder.until("left", sid, "blue")
    rooms = [entry for entry in log if entry[0] in ("joined", "left", "disconnected")]
    assert rooms == [
        ("joined", sid, sid),
        ("joined", sid, "red"),
        ("joined", sid, "blue"),
        ("left", sid, "red"),
        ("disconnected", sid, gosf.DisconnectReason.SERVER_NAMESPACE_DISCONNECT, {sid, "blue"}),
        ("left", sid, sid),
        ("left", sid, "blue"),
    ]
    disconnect = Packet(PacketType.DISCONNECT, "/")
    assert ("out", sid, disconnect, size(disconnect)) in log


async def test_a_session_that_ends_gives_its_close_reason(anyio_backend: str) -> None:
    log: list[tuple[Any, ...]] = []
    server = make_server(log)
    server.namespace("/chat")
    recorder = Recorder(log)
    server.observe(recorder)
    with anyio.fail_after(5):
        async with running(server):
            async with client(server, ("/", "/chat")) as sio:
                sid, chat_sid = sid_of(sio), sio.sid("/chat")
                (session,) = server.engine.sessions.values()
                session.close(CloseReason.SERVER_DISCONNECT)
                await recorder.until("left", chat_sid, chat_sid)
                await recorder.until("left", sid, sid)
    reasons = {entry[1]: entry[2] for entry in log if entry[0] == "disconnected"}
    assert reasons == {sid: CloseReason.SERVER_DISCONNECT, chat_sid: CloseReason.SERVER_DISCONNECT}
    assert all(type(reason) is CloseReason for reason in reasons.values())


async def test_refused_connections_report_their_connect_error(anyio_backend: str) -> None:
    log: list[tuple[Any, ...]] = []
    server = make_server(log)
    server.observe(Recorder(log))
    with anyio.fail_after(5):
        async with running(server):
            with pytest.raises(gosf.ConnectionRefused):
                async with client(server, auth={"refuse": True}):
                    pass
            with pytest.raises(gosf.ConnectionRefused):
                async with client(server, ("/nowhere",)):
                    pass
    refusals = [entry for entry in log if entry[0] == "out"]
    by_handler = Packet(
        PacketType.CONNECT_ERROR, "/", {"message": "refused", "data": {"why": "asked"}}
    )
    unknown = Packet(PacketType.CONNECT_ERROR, "/nowhere", {"message": "Invalid namespace"})
    assert refusals[0][2:] == (by_handler, size(by_handler))
    assert refusals[0][1] is not None  # the socket the handler refused
    assert refusals[1] == ("out", None, unknown, size(unknown))
    assert not [entry for entry in log if entry[0] in ("connected", "joined", "disconnected")]


async def test_a_broadcast_is_reported_once_with_its_recipients(anyio_backend: str) -> None:
    log: list[tuple[Any, ...]] = []
    server = make_server(log)
    recorder = Recorder(log)
    server.observe(recorder)
    with anyio.fail_after(5):
        async with running(server), client(server) as a, client(server) as b, client(server) as c:
            for sio in (a, b):
                await sio.call("join", "red")
            log.clear()
            c_sid = sid_of(c)
            assert await c.call("shout", "red", "hé") == 2
            await recorder.until("finished", c_sid, "shout", False)
            log = list(log)  # what came before the clients left
    news = Packet(PacketType.EVENT, "/", ["news", "hé"])
    broadcasts = [entry for entry in log if entry[0] == "broadcast"]
    assert broadcasts == [("broadcast", news, size(news), ("red",), 2)]
    # no packet_sent for its recipients: the ack to c is the one packet sent
    assert [entry[1] for entry in log if entry[0] == "out"] == [c_sid]


async def test_a_broadcast_from_another_process_is_reported_where_it_is_delivered(
    anyio_backend: str,
) -> None:
    bus = MemoryBus()
    log: list[tuple[Any, ...]] = []
    sender, receiver = (
        gosf.SocketIOServer(broker=bus.broker()),
        make_server([], broker=bus.broker()),
    )
    recorder = Recorder(log)
    receiver.observe(recorder)
    blob = b"\x00\xff"
    with anyio.fail_after(5):
        async with running(sender), running(receiver), client(receiver) as sio:
            got = anyio.Event()
            sio.on("news", lambda *args: got.set())
            assert await sender.emit("news", blob, "hi") == 0  # none of its own
            await got.wait()  # reported as it was queued, before it arrived
    news = Packet(PacketType.BINARY_EVENT, "/", ["news", blob, "hi"])
    assert [entry for entry in log if entry[0] == "broadcast"] == [
        ("broadcast", news, size(news), None, 1)
    ]


def broken(method: str) -> Any:
    def raising(self: gosf.Observer, *args: Any) -> None:
        raise RuntimeError(f"broken {method}")

    return raising


Raising = type("Raising", (gosf.Observer,), {method: broken(method) for method in METHODS})
"""An observer whose every method raises."""


async def test_an_observer_that_raises_leaves_the_client_served(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "gosf")
    log: list[tuple[Any, ...]] = []
    server = make_server(log)
    server.observe(Raising())
    recorder = Recorder(log)
    server.observe(recorder)  # after the broken one: still told everything
    with anyio.fail_after(5):
        async with running(server), client(server) as a, client(server) as b:
            sid = sid_of(a)
            for _ in range(3):
                assert await a.call("echo", "x") == "x"
            await a.call("join", "red")
            assert await b.call("shout", "red", "hi") == 1
            assert await a.call("ask", "why") == "answer to why"
            await a.emit("bye")
            await recorder.until("left", sid, sid)
    assert len([entry for entry in log if entry[:3] == ("finished", sid, "echo")]) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    failures = [m for m in warnings if m.startswith("observer method")]
    methods = {m.split()[2] for m in failures}
    # In memory, one process: no upgrade, nothing forwarded or relayed.
    unheard = {"session_upgraded", "request_forwarded", "websocket_relayed"}
    assert methods == {f"Raising.{method}" for method in METHODS if method not in unheard}
    assert len(failures) == len(methods)  # once each, the repeats at DEBUG
    assert any("broken packet_received" in m for m in failures)


async def test_a_removed_observer_hears_nothing_more(anyio_backend: str) -> None:
    log: list[tuple[Any, ...]] = []
    kept: list[tuple[Any, ...]] = []
    server = make_server([])
    remove = server.observe(Recorder(log))
    keeper = Recorder(kept)
    server.observe(keeper)
    with anyio.fail_after(5):
        async with running(server), client(server) as sio:
            sid = sid_of(sio)
            await sio.call("echo", 1)
            await keeper.until("finished", sid, "echo", False)
            heard = len(log)
            remove()
            remove()  # twice: nothing more
            await sio.call("echo", 2)
            await sio.call("join", "red")
            await keeper.until("joined", sid, "red")
    assert len(log) == heard
    assert len([entry for entry in kept if entry[:3] == ("finished", sid, "echo")]) == 2


async def test_with_no_observer_left_the_server_holds_none(anyio_backend: str) -> None:
    server = make_server([])
    remove = server.observe(gosf.Observer())
    assert server.namespace("/").observer is not None
    assert server.namespace("/late").observer is not None  # namespaces made later too
    remove()
    assert server.namespace("/").observer is None
    assert server.namespace("/late").observer is None


async def test_an_app_is_observed_through_its_server(anyio_backend: str) -> None:
    app = gosf.App()

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(request.message.text)

    log: list[tuple[Any, ...]] = []
    recorder = Recorder(log)
    app.server.observe(recorder)
    with anyio.fail_after(5):
        async with gosf.testing.connect(app) as tc:
            log.clear()
            assert await tc.request("echo", {"text": "hi"}) == gosf.Message.success("hi")
            await recorder.until("finished", tc.sid, "echo", False)
            log = list(log)  # what came before the client left
    kinds = [(entry[0], entry[2].type if entry[0] in ("in", "out") else None) for entry in log]
    assert kinds == [
        ("in", PacketType.EVENT),
        ("out", PacketType.EVENT),  # GOSF's response: as an event, and as the ack
        ("out", PacketType.ACK),
        ("finished", None),
    ]
    response = log[1][2]
    assert response.data[0] == "echo" and log[1][3] == size(response)


def test_the_methods_fanned_out_are_the_observers_methods() -> None:
    public = {name for name in vars(gosf.Observer) if not name.startswith("_")}
    assert set(METHODS) == public and len(METHODS) == len(public)


class RoomsOnly(gosf.Observer):
    def __init__(self) -> None:
        self.rooms: list[str] = []

    def room_joined(self, socket: gosf.Socket, room: str) -> None:
        self.rooms.append(room)


async def test_an_observer_hears_only_what_it_overrides(anyio_backend: str) -> None:
    rooms_only = RoomsOnly()
    told: list[int] = []
    by_instance = gosf.Observer()
    by_instance.packet_sent = lambda socket, packet, size: told.append(size)  # type: ignore[method-assign]
    assert overrides(rooms_only, "room_joined") and not overrides(rooms_only, "packet_sent")
    assert overrides(by_instance, "packet_sent") and not overrides(by_instance, "room_joined")
    server = make_server([])
    server.observe(rooms_only)
    server.observe(by_instance)
    with anyio.fail_after(5):
        async with running(server), client(server) as sio:
            sid = sid_of(sio)
            await sio.call("join", "red")
    assert rooms_only.rooms == [sid, "red"]
    ack = Packet(PacketType.ACK, "/", [], 0)
    assert told[-1] == size(ack)  # the ack of "join": the last packet sent
