"""The Engine.IO server over real loopback HTTP and websockets, in-process.

hypercorn runs inside the test's event loop (asyncio or trio); httpx and a
bare wsproto client send exactly the requests under test. These tests pin the
wire behaviour the stock clients rely on and the handling of bad input.
"""

from __future__ import annotations

import gc
import math
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import orjson
import pytest

import gosf
from gosf._engineio.session import EngineSession
from gosf._engineio.wswriter import WebSocketWriter
from gosf._socketio.workers import Workers
from gosf.protocol.engineio import Packet, PacketType, decode_payload, encode_payload
from gosf.protocol.session import Session
from tests.harness import (
    Closed,
    RawWebSocket,
    Watch,
    serve_app,
    sessions_end,
    watch_attribute,
)

pytestmark = pytest.mark.anyio

EIO4 = "/socket.io/?EIO=4&transport=polling"


def make_server(**options: Any) -> gosf.SocketIOServer:
    server = gosf.SocketIOServer(**options)

    @server.on("echo")
    async def echo(socket: gosf.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    return server


def record_disconnects(server: gosf.SocketIOServer) -> tuple[list[str], anyio.Event]:
    """The reasons ``server``'s disconnect handler gets, in order, and an
    event set at the first."""
    reasons: list[str] = []
    disconnected = anyio.Event()

    @server.on_disconnect
    async def gone(socket: gosf.Socket, reason: str) -> None:
        reasons.append(reason)
        disconnected.set()

    return reasons, disconnected


@asynccontextmanager
async def running(
    server: gosf.SocketIOServer | None = None, **options: Any
) -> AsyncIterator[tuple[gosf.SocketIOServer, str, httpx.AsyncClient]]:
    server = server or make_server(**options)
    async with serve_app(server.asgi) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
            yield server, host, http


class Polling:
    """An Engine.IO polling client made of plain HTTP requests."""

    def __init__(self, http: httpx.AsyncClient, eio: int = 4) -> None:
        self.http = http
        self.eio = eio
        self.sid = ""

    @property
    def url(self) -> str:
        return f"/socket.io/?EIO={self.eio}&transport=polling&sid={self.sid}"

    async def handshake(self) -> dict[str, Any]:
        response = await self.http.get(f"/socket.io/?EIO={self.eio}&transport=polling")
        assert response.status_code == 200, response.text
        (packet,) = decode_payload(response.content, self.eio)
        assert packet.type is PacketType.OPEN
        assert isinstance(packet.data, str)
        info: dict[str, Any] = orjson.loads(packet.data)
        self.sid = info["sid"]
        return info

    async def connect(self) -> None:
        """Open a session and connect the default namespace."""
        await self.handshake()
        await self.post("40")
        await self.get()

    async def get(self) -> list[str]:
        response = await self.http.get(self.url)
        assert response.status_code == 200, response.text
        packets = decode_payload(response.content, self.eio)
        return [f"{p.type.value}{p.data!s}" for p in packets if isinstance(p.data, str)]

    async def post(self, *packets: str) -> httpx.Response:
        body, content_type = encode_payload(
            [Packet(PacketType(int(p[0])), p[1:]) for p in packets], self.eio
        )
        return await self.http.post(self.url, content=body, headers={"content-type": content_type})


async def test_polling_handshake_announces_exact_settings(anyio_backend: str) -> None:
    async with running(ping_interval=1.5, ping_timeout=0.25, max_payload=12345) as (_, _, http):
        info = await Polling(http).handshake()
    assert info["upgrades"] == ["websocket"]
    assert info["pingInterval"] == 1500
    assert info["pingTimeout"] == 250  # milliseconds, as the spec says
    assert info["maxPayload"] == 12345
    assert isinstance(info["sid"], str) and len(info["sid"]) >= 16


async def test_websocket_handshake_offers_no_upgrade(anyio_backend: str) -> None:
    async with running() as (_, host, _):
        async with RawWebSocket.connect(host, "/socket.io/?EIO=4&transport=websocket") as ws:
            first = await ws.receive()
    assert isinstance(first, str) and first.startswith("0{")
    assert orjson.loads(first[1:])["upgrades"] == []


async def test_socketio_over_polling(anyio_backend: str) -> None:
    async with running() as (_, _, http):
        client = Polling(http)
        await client.handshake()
        assert (await client.post("40")).text == "ok"
        (connect,) = await client.get()
        assert connect.startswith('40{"sid":"')
        await client.post('421["echo","hi",{"n":1}]')
        assert await client.get() == ['431["hi",{"n":1}]']


async def test_server_disconnect_over_polling_sends_close_in_its_own_response(
    anyio_backend: str,
) -> None:
    server = make_server()

    @server.on("bye")
    async def bye(socket: gosf.Socket) -> None:
        socket.disconnect()

    async with running(server) as (_, _, http):
        client = Polling(http)
        await client.connect()
        await client.post('42["bye"]')
        assert await client.get() == ["41"]
        assert await client.get() == ["1"]
        assert (await http.get(client.url)).json()["code"] == 1


async def test_eio3_polling_connects_default_namespace_implicitly(anyio_backend: str) -> None:
    async with running() as (_, _, http):
        client = Polling(http, eio=3)
        info = await client.handshake()
        assert "maxPayload" not in info
        assert await client.get() == ["40"]
        await client.post('421["echo","v2"]')
        assert await client.get() == ['431["v2"]']
        await client.post("2")  # Engine.IO 3: the client pings, the server pongs
        assert await client.get() == ["3"]


async def test_eio3_binary_payloads_both_ways(anyio_backend: str) -> None:
    # socket.io JS 2.x in a browser (XHR2) polls without b64 and gets binary
    # payloads; the attachment follows its BINARY_EVENT packet.
    async with running() as (_, _, http):
        client = Polling(http, eio=3)
        await client.handshake()
        assert await client.get() == ["40"]
        body, content_type = encode_payload(
            [
                Packet(PacketType.MESSAGE, '51-1["echo",{"_placeholder":true,"num":0}]'),
                Packet(PacketType.MESSAGE, b"\x00\xff binary"),
            ],
            3,
        )
        assert content_type == "application/octet-stream"
        response = await http.post(client.url, content=body, headers={"content-type": content_type})
        assert response.text == "ok"
        reply = await http.get(client.url)
        assert reply.headers["content-type"] == "application/octet-stream"
        packets = decode_payload(reply.content, 3, content_type=reply.headers["content-type"])
        assert packets == [
            Packet(PacketType.MESSAGE, '61-1[{"_placeholder":true,"num":0}]'),
            Packet(PacketType.MESSAGE, b"\x00\xff binary"),
        ]


BAD_REQUESTS = [
    ("GET", "/socket.io/?EIO=5&transport=polling", 400, 5),
    ("GET", "/socket.io/?transport=polling", 400, 5),
    ("GET", "/socket.io/?EIO=4&transport=carrier-pigeon", 400, 0),
    ("GET", "/socket.io/?EIO=4&transport=polling&sid=nope", 400, 1),
    ("POST", "/socket.io/?EIO=4&transport=polling", 400, 2),
    ("GET", "/socket.io/?EIO=4&transport=websocket", 400, 3),
    ("PUT", "/socket.io/?EIO=4&transport=polling&sid=", 400, 1),
    ("GET", "/socket.io/?EIO=3&transport=polling&j=0", 400, 3),
]


@pytest.mark.parametrize(("method", "url", "status", "code"), BAD_REQUESTS)
async def test_bad_requests_get_json_errors(
    anyio_backend: str, method: str, url: str, status: int, code: int
) -> None:
    async with running() as (_, _, http):
        response = await http.request(method, url)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        assert response.json()["code"] == code
        # the server keeps serving
        await Polling(http).handshake()


async def test_unsupported_method_on_a_session(anyio_backend: str) -> None:
    async with running() as (_, _, http):
        client = Polling(http)
        await client.handshake()
        response = await http.put(client.url, content=b"4x")
        assert response.status_code == 400
        assert response.json()["code"] == 3


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("/socket.io/?EIO=9&transport=websocket", 5),
        ("/socket.io/?EIO=4&transport=websocket&sid=unknown", 1),
    ],
)
async def test_bad_websocket_requests_get_json_errors(
    anyio_backend: str, target: str, code: int
) -> None:
    async with running() as (_, host, http):
        async with RawWebSocket.connect(host, target) as ws:
            assert ws.status == 400
            assert orjson.loads(ws.body)["code"] == code
        await Polling(http).handshake()


async def test_duplicate_get_closes_the_session(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = watch_attribute(monkeypatch, Session, "get_pending")
    async with running() as (server, _, http):
        client = Polling(http)
        await client.handshake()
        first: list[str] = []

        async def pending_get() -> None:
            first.extend(await client.get())

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pending_get)
                await polls.until(
                    lambda: any(s.machine.get_pending for s in server.engine.sessions.values())
                )
                second = await http.get(client.url)
                assert second.status_code == 400
        assert first == ["1"]
        assert (await http.get(client.url)).json()["code"] == 1


async def test_oversize_post_is_refused_and_only_that_session_closed(anyio_backend: str) -> None:
    async with running(max_payload=2048) as (_, _, http):
        offender, bystander = Polling(http), Polling(http)
        await offender.handshake()
        await bystander.handshake()
        await bystander.post("40")
        await bystander.get()
        response = await offender.post("4" + "x" * 4096)
        assert response.status_code == 413
        assert (await http.get(offender.url)).json()["code"] == 1
        await bystander.post('421["echo","fine"]')
        assert await bystander.get() == ['431["fine"]']


@pytest.mark.parametrize(
    "body", [b"zz", b"4hi\x1e", b"\x1e\x1e", b"9", b'42["echo"', b"41[1]", b'42{"a":1}']
)
async def test_bad_payload_post_closes_only_that_session(anyio_backend: str, body: bytes) -> None:
    async with running() as (_, _, http):
        offender, bystander = Polling(http), Polling(http)
        await offender.handshake()
        await bystander.handshake()
        await offender.post("40")
        await offender.get()
        response = await http.post(offender.url, content=body)
        assert response.status_code == 400
        assert (await http.get(offender.url)).json()["code"] == 1
        await bystander.post("40")
        await bystander.get()
        await bystander.post('421["echo","fine"]')
        assert await bystander.get() == ['431["fine"]']


@asynccontextmanager
async def socketio_ws(host: str, namespace_connect: str = "40") -> AsyncIterator[RawWebSocket]:
    async with RawWebSocket.connect(host, "/socket.io/?EIO=4&transport=websocket") as ws:
        assert str(await ws.receive()).startswith("0{")
        await ws.send(namespace_connect)
        answer = await ws.receive()
        while answer == "2":  # a short pingInterval may ping first on a loaded machine
            await ws.send("3")
            answer = await ws.receive()
        assert str(answer).startswith("40")
        yield ws


async def echo_works(ws: RawWebSocket) -> None:
    await ws.send('427["echo","alive"]')
    reply = await ws.receive()
    while reply == "2":  # answer heartbeats that get in the way
        await ws.send("3")
        reply = await ws.receive()
    assert reply == '437["alive"]'


async def test_ping_timeout_closes_the_session_on_time(anyio_backend: str) -> None:
    async with running(ping_interval=0.2, ping_timeout=0.3) as (server, host, _):
        async with socketio_ws(host) as ws:
            with anyio.fail_after(5):
                assert await ws.receive() == "2"
                pinged = anyio.current_time()
                closed = await ws.receive()
                waited = anyio.current_time() - pinged
        assert isinstance(closed, Closed)
        assert waited >= 0.25  # not before pingTimeout has passed
        await sessions_end(server.engine)


async def test_answered_pings_keep_the_session(anyio_backend: str) -> None:
    async with running(ping_interval=0.1, ping_timeout=0.2) as (_, host, _):
        async with socketio_ws(host) as ws:
            with anyio.fail_after(5):
                for _ in range(5):
                    assert await ws.receive() == "2"
                    await ws.send("3")
                await echo_works(ws)


async def test_one_silent_client_among_many_is_closed_on_time(anyio_backend: str) -> None:
    # One heartbeat loop serves every session: the client that stops
    # answering is closed after pingTimeout, the ones that answer stay.
    async with running(ping_interval=0.15, ping_timeout=0.25) as (server, host, _):
        async with (
            socketio_ws(host) as first,
            socketio_ws(host) as silent,
            socketio_ws(host) as last,
        ):
            with anyio.fail_after(5):
                assert await silent.receive() == "2"
                pinged = anyio.current_time()
                for _ in range(4):  # the others keep answering meanwhile
                    for ws in (first, last):
                        assert await ws.receive() == "2"
                        await ws.send("3")
                assert isinstance(await silent.receive(), Closed)
                assert anyio.current_time() - pinged >= 0.2
                await echo_works(first)
                await echo_works(last)
        await sessions_end(server.engine)


@pytest.mark.parametrize(("interval", "pong_timeout"), [(0.2, 0.15), (0.15, 0.4)])
async def test_pings_come_a_ping_interval_after_each_pong(
    anyio_backend: str, interval: float, pong_timeout: float
) -> None:
    # The check at the pong deadline sends the next ping when the pong came;
    # with pingInterval < pingTimeout the pong schedules an earlier check.
    # Either way pings come pingInterval after the last pong, and the
    # schedule holds one live entry per session: stale ones (earlier pong
    # deadlines) only while pingInterval < pingTimeout, until they are due.
    async with running(ping_interval=interval, ping_timeout=pong_timeout) as (server, host, _):
        async with socketio_ws(host) as ws:
            with anyio.fail_after(5):
                assert await ws.receive() == "2"
                for _ in range(3):
                    await ws.send("3")
                    ponged = anyio.current_time()
                    assert await ws.receive() == "2"
                    waited = anyio.current_time() - ponged
                    assert interval * 0.9 <= waited < interval + pong_timeout
                stale = 0 if interval > pong_timeout else math.ceil(pong_timeout / interval)
                assert len(server.engine._beats) <= 1 + stale
                await echo_works(ws)


async def test_eio3_session_lives_while_the_client_pings_and_dies_when_silent(
    anyio_backend: str,
) -> None:
    # Engine.IO 3: the client pings; silence for pingInterval + pingTimeout closes.
    # Wide margins: a loaded machine may stall the client for a while.
    async with running(ping_interval=0.2, ping_timeout=0.3) as (server, host, _):
        async with RawWebSocket.connect(host, "/socket.io/?EIO=3&transport=websocket") as ws:
            with anyio.fail_after(5):
                assert str(await ws.receive()).startswith("0{")
                assert await ws.receive() == "40"  # socket.io 2.x: "/" joined implicitly
                for _ in range(8):  # 0.8 s alive, longer than one window (0.5 s)
                    await anyio.sleep(0.1)
                    await ws.send("2")
                    silent_since = anyio.current_time()
                    assert await ws.receive() == "3"
                assert isinstance(await ws.receive(), Closed)
                assert anyio.current_time() - silent_since >= 0.4
        await sessions_end(server.engine)


async def test_a_closed_session_is_not_kept_alive_by_its_heartbeat(anyio_backend: str) -> None:
    # The heartbeat schedule holds sessions weakly: a session that ended is
    # garbage once the server forgot it, long before its next check is due.
    server = make_server(ping_interval=60, ping_timeout=60)
    returned = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await server.asgi(scope, receive, send)
        finally:
            if scope["type"] == "websocket":
                returned.set()  # the websocket's ASGI call, which hosted the session

    async with serve_app(app) as host:
        async with socketio_ws(host):
            (session,) = server.engine.sessions.values()
            gone = weakref.ref(session)
            del session
        with anyio.fail_after(5):
            await returned.wait()
        assert not server.engine.sessions
        gc.collect()
        assert gone() is None  # its heartbeat check is due only in 60 s


async def test_an_idle_websocket_client_has_no_writer_task(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What other tasks queue for a websocket client is written by a task
    # started on demand: none is left once connected, nor after each ping.
    writers = watch_attribute(monkeypatch, WebSocketWriter, "has_task")
    async with running(ping_interval=0.1, ping_timeout=1) as (server, host, _):
        async with socketio_ws(host) as ws:
            (session,) = server.engine.sessions.values()
            await writers.until(lambda: not has_writer_task(session))
            with anyio.fail_after(5):
                for _ in range(3):
                    assert await ws.receive() == "2"
                    await ws.send("3")
                    await writers.until(lambda: not has_writer_task(session))
                await echo_works(ws)


def has_writer_task(session: EngineSession) -> bool:
    return session.writer is not None and session.writer.has_task


def handler_workers(server: gosf.SocketIOServer) -> int:
    """Worker tasks alive for the server's only client (its "/" socket)."""
    (socket,) = server.namespaces["/"].sockets.values()
    return socket.workers.running


async def test_a_client_gone_quiet_keeps_no_handler_worker(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A handler runs in a worker task that waits for the client's next event
    # (cheaper than a task per event); a heartbeat ends it once it is idle,
    # and the next event starts one again.
    workers = watch_attribute(monkeypatch, Workers, "running")
    async with running(ping_interval=0.2, ping_timeout=1) as (server, host, _):
        async with socketio_ws(host) as ws:
            with anyio.fail_after(5):
                await echo_works(ws)
                assert handler_workers(server) == 1  # idle, waiting for the next event
                assert await ws.receive() == "2"
                await ws.send("3")
                await workers.until(lambda: handler_workers(server) == 0)
                await echo_works(ws)
                assert handler_workers(server) == 1


async def test_an_eio3_client_gone_quiet_keeps_no_worker_nor_writer(anyio_backend: str) -> None:
    # Engine.IO 3 has no server ping: the heartbeat check ends the idle
    # worker, and wakes a writer that waits for traffic so that it ends too.
    server = make_server(ping_interval=0.2, ping_timeout=0.2)

    @server.on("shout")
    async def shout(socket: gosf.Socket) -> None:
        await server.emit("heard", 1)  # queued for the sender: a writer task writes it

    async with running(server) as (_, host, _):
        async with RawWebSocket.connect(host, "/socket.io/?EIO=3&transport=websocket") as ws:
            with anyio.fail_after(5):
                assert str(await ws.receive()).startswith("0{")
                assert await ws.receive() == "40"
                (session,) = server.engine.sessions.values()
                await ws.send('42["shout"]')
                assert await ws.receive() == '42["heard",1]'
                assert handler_workers(server) == 1
                for _ in range(8):  # 0.8 s, two checks at least (pingInterval + pingTimeout)
                    await ws.send("2")
                    assert await ws.receive() == "3"
                    await anyio.sleep(0.1)
                assert handler_workers(server) == 0
                assert not has_writer_task(session)
                await ws.send('421["echo","alive"]')
                assert await ws.receive() == '431["alive"]'


async def test_a_running_handler_gets_its_own_broadcast_at_once(anyio_backend: str) -> None:
    # A broadcast that includes the sender is written while the sender's
    # handler still runs: nothing waits for the handler to end.
    server = make_server()
    release = anyio.Event()

    @server.on("tick")
    async def tick(socket: gosf.Socket) -> str:
        await server.emit("tock", 1)
        await release.wait()
        return "done"

    async with running(server) as (_, host, _):
        async with socketio_ws(host) as sender, socketio_ws(host) as other:
            with anyio.fail_after(5):
                await sender.send('425["tick"]')
                assert await sender.receive() == '42["tock",1]'
                assert await other.receive() == '42["tock",1]'
                release.set()
                assert await sender.receive() == '435["done"]'


async def test_oversize_websocket_message_closes_only_the_offender(anyio_backend: str) -> None:
    async with running(max_payload=2048) as (_, host, _):
        async with socketio_ws(host) as bystander, socketio_ws(host) as offender:
            with anyio.fail_after(5):
                await offender.send('42["echo","' + "x" * 4096 + '"]')
                closed = await offender.receive()
                assert closed == Closed(1009)
                await echo_works(bystander)


async def test_attachments_larger_than_max_payload_together_close_the_offender(
    anyio_backend: str,
) -> None:
    # Each attachment fits max_payload; together they do not: the connection
    # holds no more than max_payload bytes for one unfinished packet.
    async with running(max_payload=2048) as (_, host, _):
        async with socketio_ws(host) as bystander, socketio_ws(host) as offender:
            with anyio.fail_after(5):
                placeholders = ",".join(f'{{"_placeholder":true,"num":{n}}}' for n in range(3))
                await offender.send(f'453-["echo",{placeholders}]')
                for _ in range(3):
                    await offender.send(b"x" * 1000)
                closed = await offender.receive()
                assert closed == Closed(1009)
                await echo_works(bystander)


@pytest.mark.parametrize(
    "frame",
    [
        "4",
        "49",
        '42["echo"',
        "42{}",
        "42[1]",
        "42[]",
        "4/nope,0",
        '43abc["x"]',
        "9",
        "7",
        "41x",
        '451-["echo",{"_placeholder":true,"num":0}]"',
        '42["echo"]garbage',
        b"\x00\x01",
    ],
)
async def test_malformed_frame_closes_only_the_offender(
    anyio_backend: str, frame: str | bytes
) -> None:
    async with running() as (_, host, _):
        async with socketio_ws(host) as bystander, socketio_ws(host) as offender:
            with anyio.fail_after(5):
                await offender.send(frame)
                closed = await offender.receive()
                assert isinstance(closed, Closed)
                await echo_works(bystander)


async def test_upgrade_from_polling(anyio_backend: str) -> None:
    async with running() as (_, host, http):
        client = Polling(http)
        await client.connect()
        with anyio.fail_after(10):
            async with upgraded(host, client) as ws:
                await echo_works(ws)
                after = await http.get(client.url)
                assert after.status_code == 400
                assert after.json()["code"] == 3


@asynccontextmanager
async def upgraded(host: str, client: Polling) -> AsyncIterator[RawWebSocket]:
    """Upgrade ``client``'s session to a websocket, as the stock clients do."""
    pending: list[str] = []
    released = anyio.Event()

    async def pending_get() -> None:
        pending.extend(await client.get())
        released.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(pending_get)
        target = f"/socket.io/?EIO=4&transport=websocket&sid={client.sid}"
        async with RawWebSocket.connect(host, target) as ws:
            await ws.send("2probe")
            assert await ws.receive() == "3probe"
            await released.wait()
            assert pending == ["6"]  # the pending GET is released with a NOOP
            await ws.send("5")
            yield ws


async def test_the_websocket_takes_an_upgraded_session_over(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the upgrade the session lives in the websocket's ASGI call: the
    # polling task ends at once, a handler started while polling goes on in
    # the session's own task group (its ack goes out over the websocket).
    transports = watch_attribute(monkeypatch, Session, "transport")
    server = make_server()
    release = anyio.Event()

    @server.on("wait")
    async def wait(socket: gosf.Socket) -> str:
        await release.wait()
        return "released"

    async with running(server) as (_, host, http):
        client = Polling(http)
        await client.connect()
        (session,) = server.engine.sessions.values()
        with anyio.fail_after(10):
            await client.post('421["wait"]')  # runs in the polling task's task group
            async with upgraded(host, client) as ws:
                await transports.until(lambda: session.transport == "websocket")
                await echo_works(ws)  # a new handler, in the websocket's call
                done = session._predecessor_done
                assert done is not None
                await done.wait()  # the polling task has ended; "wait" still runs
                release.set()
                assert await ws.receive() == '431["released"]'
                await echo_works(ws)


async def test_closing_a_taken_over_session_cancels_what_the_polling_task_runs(
    anyio_backend: str,
) -> None:
    server = make_server()
    started, cancelled, disconnected = anyio.Event(), anyio.Event(), anyio.Event()

    @server.on("forever")
    async def forever(socket: gosf.Socket) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    @server.on_disconnect
    async def gone(socket: gosf.Socket, reason: str) -> None:
        assert cancelled.is_set()  # disconnect handlers run once the handlers have ended
        disconnected.set()

    async with running(server) as (_, host, http):
        client = Polling(http)
        await client.connect()
        with anyio.fail_after(10):
            await client.post('421["forever"]')
            await started.wait()
            async with upgraded(host, client) as ws:
                await echo_works(ws)
            await cancelled.wait()
            await disconnected.wait()
        await sessions_end(server.engine)


async def test_cors_allow_list(anyio_backend: str) -> None:
    async with running(cors_allowed_origins=["http://good.example"]) as (_, _, http):
        good = await http.get(EIO4, headers={"origin": "http://good.example"})
        assert good.status_code == 200
        assert good.headers["access-control-allow-origin"] == "http://good.example"
        assert good.headers["access-control-allow-credentials"] == "true"
        evil = await http.get(EIO4, headers={"origin": "http://evil.example"})
        assert evil.status_code == 403
        assert "access-control-allow-origin" not in evil.headers
        preflight = await http.options(
            EIO4,
            headers={
                "origin": "http://good.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        assert preflight.status_code == 204
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["access-control-allow-headers"] == "content-type"


async def test_cors_default_is_same_origin(anyio_backend: str) -> None:
    async with running() as (_, host, http):
        same = await http.get(EIO4, headers={"origin": f"http://{host}"})
        assert same.status_code == 200
        cross = await http.get(EIO4, headers={"origin": "http://elsewhere.example"})
        assert cross.status_code == 403
        async with RawWebSocket.connect(host, "/socket.io/?EIO=4&transport=websocket") as ws:
            assert ws.status == 101  # no Origin header: not a browser, allowed


async def test_trailing_garbage_after_upgrade_request_does_not_kill_the_server(
    anyio_backend: str,
) -> None:
    # hypercorn issue 225: under its trio worker this request used to take the
    # whole server down. gosf guards the connection handler (see
    # gosf/_engineio/hypercorn_guard.py).
    async with running() as (_, host, http):
        address, port = host.split(":")
        with anyio.fail_after(10):
            stream = await anyio.connect_tcp(address, int(port))
            await stream.send(
                b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                b"Host: " + host.encode() + b"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==\r\n"
                b"\r\nx\r\n"
            )
            try:
                await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
            await stream.aclose()
            await anyio.sleep(0.2)
            await Polling(http).handshake()


async def test_slow_polling_client_is_disconnected_by_broadcasts(anyio_backend: str) -> None:
    server = make_server(max_outbound_buffer=4)

    @server.on("shout")
    async def shout(socket: gosf.Socket, count: int) -> int:
        for i in range(count):
            await server.emit("news", i)
        return count

    async with running(server) as (_, _, http):
        slow, fast = Polling(http), Polling(http)
        for client in (slow, fast):
            await client.handshake()
            await client.post("40")
            await client.get()
        # `fast` reads as it goes; `slow` never polls, so its queue fills up.
        await fast.post('421["shout",3]')
        assert await fast.get() == ['42["news",0]', '42["news",1]', '42["news",2]', "431[3]"]
        await fast.post('422["shout",3]')
        assert len(await fast.get()) == 4
        assert (await http.get(slow.url)).json()["code"] == 1  # slow client was dropped


async def test_handlers_are_cancelled_when_the_client_disconnects(anyio_backend: str) -> None:
    server = make_server()
    events: list[str] = []
    started, disconnected = anyio.Event(), anyio.Event()

    @server.on("forever")
    async def forever(socket: gosf.Socket) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            events.append("handler cancelled")

    async def on_disconnect(socket: gosf.Socket, reason: str) -> None:
        events.append(f"disconnected: {reason}")
        disconnected.set()

    server.on_disconnect(on_disconnect)
    async with running(server) as (_, host, _):
        with anyio.fail_after(5):
            async with socketio_ws(host) as ws:
                await ws.send('42["forever"]')
                await started.wait()
            await disconnected.wait()
    assert events == ["handler cancelled", "disconnected: transport close"]


async def test_concurrent_handlers_per_client_are_bounded(anyio_backend: str) -> None:
    server = make_server(max_concurrent_handlers=2)
    running_now = 0
    peak = 0
    release = anyio.Event()
    started = Watch()

    @server.on("hold")
    async def hold(socket: gosf.Socket, n: int) -> int:
        nonlocal running_now, peak
        running_now += 1
        peak = max(peak, running_now)
        started.notify()
        await release.wait()
        running_now -= 1
        return n

    async with running(server) as (_, host, _):
        async with socketio_ws(host) as ws:
            with anyio.fail_after(5):
                for n in range(5):
                    await ws.send(f'42{n}["hold",{n}]')
                await started.until(lambda: running_now == 2)
                await anyio.sleep(0.1)
                assert running_now == 2  # the reader waits for a free slot
                release.set()
                replies = {await ws.receive() for _ in range(5)}
    assert peak == 2
    assert replies == {f"43{n}[{n}]" for n in range(5)}


async def test_server_call_times_out_without_ack(anyio_backend: str) -> None:
    server = make_server()
    outcome: list[str] = []
    answered = anyio.Event()

    @server.on("ask")
    async def ask(socket: gosf.Socket) -> None:
        try:
            await socket.call("question", timeout=0.2)
        except TimeoutError:
            outcome.append("timeout")
        finally:
            answered.set()

    async with running(server) as (_, host, _):
        async with socketio_ws(host) as ws:
            with anyio.fail_after(5):
                await ws.send('42["ask"]')
                assert await ws.receive() == '420["question"]'  # never acked
                await answered.wait()
    assert outcome == ["timeout"]
