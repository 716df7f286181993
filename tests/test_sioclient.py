"""gosf's Socket.IO client (and its websocket client), under asyncio and trio.

Most tests talk to a gosf server in memory, over ``gosf.testing``'s
connector: the client's logic (calls, events, binary, namespaces, refusals,
heartbeats) needs no network. What is about real sockets stays on loopback:
connection failures and a server's HTTP refusal against hypercorn, and
``peer_server``, a bare websocket server on an anyio listener, driven by a
script, for what a well-behaved server never does (go silent, ping at the
websocket level, send oversized messages) and for TLS.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import anyio
import anyio.lowlevel
import orjson
import pytest
import trustme
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSListener
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    Request,
    TextMessage,
)

import gosf
from gosf._client.client import SocketIOClient
from gosf._client.websocket import connect_websocket
from gosf._errors import ConnectionClosed, HandshakeError
from gosf.testing import asgi_connector
from tests.conftest import free_port
from tests.harness import Watch, serve_app, tapped

pytestmark = pytest.mark.anyio

PROTOCOLS = pytest.mark.parametrize("protocol", [5, 4])


# -- a gosf server ---------------------------------------------------------------------------------


class App:
    """A gosf server with the handlers the tests use; ``left`` maps sid → disconnect reason."""

    def __init__(self, **options: Any) -> None:
        self.server = server = gosf.SocketIOServer(**options)
        self.left: dict[str, str] = {}
        self.leaving = Watch()
        """Told of each disconnect recorded in ``left``."""

        async def check_auth(socket: gosf.Socket, auth: dict[str, Any]) -> None:
            if auth.get("token") == "bad":
                raise gosf.ConnectionRefused("not authorized", {"reason": "bad token"})
            socket.state["auth"] = auth

        async def record(socket: gosf.Socket, reason: str) -> None:
            self.left[socket.sid] = reason
            self.leaving.notify()

        for namespace in ("/", "/admin"):
            server.on_connect(check_auth, namespace=namespace)
            server.on_disconnect(record, namespace=namespace)

        @server.on("echo")
        async def echo(socket: gosf.Socket, *args: Any) -> tuple[Any, ...]:
            return args

        @server.on("echo", namespace="/admin")
        async def admin_echo(socket: gosf.Socket, *args: Any) -> tuple[Any, ...]:
            return ("admin", *args)

        @server.on("echo-event")
        async def echo_event(socket: gosf.Socket, *args: Any) -> None:
            await socket.emit("echo-event", *args)

        async def whoami(socket: gosf.Socket) -> dict[str, Any]:
            return {"sid": socket.sid, "protocol": socket.protocol, "auth": socket.state["auth"]}

        server.on("whoami")(whoami)
        server.on("whoami", namespace="/admin")(whoami)

        @server.on("call-me")
        async def call_me(socket: gosf.Socket, wait: float, event: str, *args: Any) -> Any:
            try:
                return await socket.call(event, *args, timeout=wait)
            except TimeoutError:
                return "no answer"

        @server.on("burst")
        async def burst(socket: gosf.Socket, count: int) -> None:
            for i in range(count):
                await socket.emit("tick", i)

        @server.on("sleep")
        async def sleep(socket: gosf.Socket, seconds: float) -> str:
            await anyio.sleep(seconds)
            return "slept"

        @server.on("disconnect-me")
        async def disconnect_me(socket: gosf.Socket, delay: float) -> None:
            await anyio.sleep(delay)
            socket.disconnect()  # never acks: a call in flight fails when the namespace goes


Connect = Callable[..., AbstractAsyncContextManager[SocketIOClient]]
"""``connect(client, **options)``: ``client.connect`` to the server under test."""


@asynccontextmanager
async def running(
    record: Callable[[str | bytes], None] | None = None, **options: Any
) -> AsyncIterator[tuple[App, Connect]]:
    """The test server, in memory; ``record`` sees every message its clients receive."""
    app = App(**options)
    connector = asgi_connector(app.server)
    if record is not None:
        connector = tapped(connector, record)

    def connect(client: SocketIOClient, **options: Any) -> AbstractAsyncContextManager[Any]:
        return client.connect("http://testserver", connector=connector, **options)

    async with app.server:
        yield app, connect


@asynccontextmanager
async def on_loopback(**options: Any) -> AsyncIterator[tuple[App, str]]:
    """The test server under hypercorn on a loopback port, for what needs a real socket."""
    app = App(**options)
    async with serve_app(app.server.asgi) as host:
        yield app, f"http://{host}"


class Received:
    """Every message the in-memory server's clients received, for waits on what
    the client's API does not show (heartbeats, an ack that came too late)."""

    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.watch = Watch()

    def __call__(self, frame: str | bytes) -> None:
        self.frames.append(frame)
        self.watch.notify()

    async def until(self, condition: Callable[[list[str | bytes]], bool]) -> None:
        await self.watch.until(lambda: condition(self.frames))


def collector() -> tuple[Callable[..., None], anyio.abc.ObjectReceiveStream[tuple[Any, ...]]]:
    """A sync handler that passes its arguments on, and where to read them."""
    send, receive = anyio.create_memory_object_stream[tuple[Any, ...]](100)
    return lambda *args: send.send_nowait(args), receive


# -- calls, events, binary, namespaces -------------------------------------------------------------


@PROTOCOLS
async def test_call_and_emit(protocol: Literal[4, 5]) -> None:
    client = SocketIOClient(protocol=protocol)
    handler, events = collector()
    client.on("echo-event", handler)
    with anyio.fail_after(10):
        async with running() as (_, connect), connect(client) as connected:
            assert connected is client and client.connected
            payload = {"text": "é ✓ 🎉", "n": [1, 2.5, None, True]}
            assert await client.call("echo", payload) == payload
            assert await client.call("echo", 1, "two") == (1, "two")
            assert await client.call("echo") is None
            await client.emit("echo-event", {"a": 1}, [2])
            assert await events.receive() == ({"a": 1}, [2])
            assert (await client.call("whoami"))["protocol"] == protocol


@PROTOCOLS
async def test_binary_both_ways(protocol: Literal[4, 5]) -> None:
    blob = bytes(range(256)) * 8
    client = SocketIOClient(protocol=protocol)
    handler, events = collector()
    client.on("echo-event", handler)
    with anyio.fail_after(10):
        async with running() as (_, connect), connect(client):
            data = {"blob": blob, "nested": [b"", {"x": bytearray(b"y")}]}
            assert await client.call("echo", data) == {"blob": blob, "nested": [b"", {"x": b"y"}]}
            await client.emit("echo-event", b"\x00", "text", [b"\xff"])
            assert await events.receive() == (b"\x00", "text", [b"\xff"])


@PROTOCOLS
async def test_namespaces(protocol: Literal[4, 5]) -> None:
    client = SocketIOClient(protocol=protocol)
    with anyio.fail_after(10):
        async with running() as (app, connect), connect(client, namespaces=["/", "/admin"]):
            assert client.namespaces == {"/", "/admin"}
            assert await client.call("echo", 1, namespace="/admin") == ("admin", 1)
            sid, admin_sid = client.sid("/"), client.sid("/admin")
            assert sid is not None and admin_sid is not None and admin_sid != sid
            admin_server_sid = (await client.call("whoami", namespace="/admin"))["sid"]
            if protocol == 5:  # protocol 4 CONNECT packets carry no sid: 2.x servers use
                assert admin_sid == admin_server_sid  # the Engine.IO one, gosf does not

            await client.disconnect("/admin")  # leaves one namespace, keeps the connection
            assert client.namespaces == {"/"} and client.connected
            await app.leaving.until(lambda: admin_server_sid in app.left)
            assert app.left[admin_server_sid] == "client namespace disconnect"
            with pytest.raises(gosf.Disconnected):
                await client.call("echo", namespace="/admin")
            assert await client.call("echo", 2) == 2


async def test_protocol_4_connects_the_default_namespace_implicitly() -> None:
    client = SocketIOClient(protocol=4)
    with anyio.fail_after(10):
        async with running() as (_, connect), connect(client, namespaces="/admin", auth={"k": 1}):
            assert client.namespaces == {"/", "/admin"}
            assert (await client.call("whoami"))["auth"] == {"k": "1"}  # a query: strings


# -- server → client -------------------------------------------------------------------------------


@PROTOCOLS
async def test_server_calls_the_client(
    protocol: Literal[4, 5], caplog: pytest.LogCaptureFixture
) -> None:
    client = SocketIOClient(protocol=protocol)

    @client.on("add")
    async def add(a: int, b: int) -> int:
        await anyio.lowlevel.checkpoint()
        return a + b

    def fail() -> None:
        raise RuntimeError("handler bug")

    client.on("pair", lambda: ("a", b"b"))
    client.on("nothing", lambda: None)
    client.on("fail", fail)
    client.on("unsendable", lambda: object())
    with anyio.fail_after(10):
        async with running() as (_, connect), connect(client):
            assert await client.call("call-me", 5, "add", 20, 22) == 42
            assert await client.call("call-me", 5, "pair") == ("a", b"b")
            assert await client.call("call-me", 5, "nothing") is None
            answers: dict[str, Any] = {}

            async def unanswered(event: str) -> None:
                answers[event] = await client.call("call-me", 0.3, event)

            with caplog.at_level(logging.ERROR, logger="gosf.client"):
                async with anyio.create_task_group() as tg:  # the three waits at once
                    for event in ("fail", "no-such-handler", "unsendable"):
                        tg.start_soon(unanswered, event)
            assert answers == dict.fromkeys(("fail", "no-such-handler", "unsendable"), "no answer")
            assert "handler bug" in caplog.text  # logged, and the client goes on
            assert "cannot send the ack" in caplog.text
            assert await client.call("call-me", 5, "add", 1, 1) == 2


async def test_sync_handlers_run_in_order() -> None:
    client = SocketIOClient()
    ticks: list[int] = []
    client.on("tick", ticks.append)
    with anyio.fail_after(10):
        async with running() as (_, connect), connect(client):
            await client.call("burst", 50)
            await client.call("echo")  # after the ticks, in the same stream
    assert ticks == list(range(50))


# -- refusals, disconnects, timeouts ---------------------------------------------------------------


@PROTOCOLS
async def test_refused_connection(protocol: Literal[4, 5]) -> None:
    client = SocketIOClient(protocol=protocol)
    with anyio.fail_after(10):
        async with running() as (_, connect):
            with pytest.raises(gosf.ConnectionRefused) as refused:
                async with connect(client, auth={"token": "bad"}):
                    pytest.fail("connected")
            if protocol == 5:
                assert refused.value.message == "not authorized"
            assert refused.value.data == {"reason": "bad token"}
            assert not client.connected

            with pytest.raises(gosf.ConnectionRefused, match="Invalid namespace"):
                async with connect(client, namespaces=["/", "/nope"]):
                    pytest.fail("connected")
            async with connect(client):  # the same client connects again
                assert await client.call("echo", 1) == 1


@PROTOCOLS
async def test_server_disconnect(protocol: Literal[4, 5]) -> None:
    client = SocketIOClient(protocol=protocol)
    with anyio.fail_after(10):
        async with running() as (_, connect), connect(client):
            with pytest.raises(gosf.Disconnected):  # the call in flight fails at once
                await client.call("disconnect-me", 0.05)
            await client.wait_disconnected()
            assert not client.connected and client.namespaces == frozenset()
            assert client.disconnect_reason is gosf.ClientDisconnectReason.IO_SERVER_DISCONNECT
            with pytest.raises(gosf.Disconnected):
                await client.emit("echo")


async def test_ack_timeout() -> None:
    client = SocketIOClient()
    received = Received()
    with anyio.fail_after(10):
        async with running(received) as (_, connect), connect(client):
            start = anyio.current_time()
            with pytest.raises(TimeoutError):
                await client.call("sleep", 0.5, timeout=0.1)
            assert anyio.current_time() - start < 0.4
            assert await client.call("echo", "still here") == "still here"
            # the late ack arrives and is dropped
            await received.until(lambda frames: any(str(f).endswith('["slept"]') for f in frames))
            assert await client.call("echo", 1) == 1


@PROTOCOLS
async def test_disconnect_is_clean(protocol: Literal[4, 5]) -> None:
    client = SocketIOClient(protocol=protocol)
    with anyio.fail_after(10):
        async with running() as (app, connect):
            async with connect(client):
                sid = (await client.call("whoami"))["sid"]
                await client.disconnect()
                assert not client.connected
                assert client.disconnect_reason is gosf.ClientDisconnectReason.IO_CLIENT_DISCONNECT
                await client.wait_disconnected()
            async with connect(client):  # leaving the block disconnects too
                second = (await client.call("whoami"))["sid"]
            assert not client.connected
            await app.leaving.until(lambda: sid in app.left and second in app.left)
    # the server got DISCONNECT packets, not just a closed socket
    assert app.left[sid] == app.left[second] == "client namespace disconnect"


# -- heartbeats ------------------------------------------------------------------------------------


@PROTOCOLS
async def test_heartbeat_keeps_the_connection(protocol: Literal[4, 5]) -> None:
    """The server drops a client 0.7 s after a missed heartbeat (v4: unanswered
    ping; v3: the client's ping not coming)."""
    client = SocketIOClient(protocol=protocol)
    received = Received()
    heartbeat = "2" if protocol == 5 else "3"  # the server's PING; v3: its PONG to ours
    with anyio.fail_after(10):
        async with (
            running(received, ping_interval=0.2, ping_timeout=0.5) as (_, connect),
            connect(client),
        ):
            # Four heartbeats take 0.8 s at least: longer than a missed one leaves a client.
            await received.until(lambda frames: frames.count(heartbeat) >= 4)
            assert client.connected
            assert await client.call("echo", 1) == 1


# -- a scripted websocket peer ---------------------------------------------------------------------


class Peer:
    """The server end of one websocket, for scripts."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.pending: list[Event] = []

    async def event(self) -> Event:
        while not self.pending:
            try:
                data: bytes | None = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = None
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    async def send(self, event: Event) -> None:
        await self.stream.send(self.ws.send(event))

    async def accept(self) -> str:
        request = await self.event()
        assert isinstance(request, Request)
        await self.send(AcceptConnection())
        return request.target

    async def message(self) -> str | bytes:
        event = await self.event()
        assert isinstance(event, TextMessage | BytesMessage), event
        return event.data if isinstance(event.data, str) else bytes(event.data)


Script = Callable[[Peer], Awaitable[None]]


@asynccontextmanager
async def peer_server(
    script: Script, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """Serve ``script`` for each websocket on a loopback port; yields the port."""
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(SocketAttribute.local_port)
    listener = tcp if ssl_context is None else TLSListener(tcp, ssl_context, False)

    async def handle(stream: ByteStream) -> None:
        async with stream:
            try:
                await script(Peer(stream))
            except (anyio.BrokenResourceError, anyio.EndOfStream, ssl.SSLError):
                pass  # the client went away: what some tests want

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield port
        tg.cancel_scope.cancel()


async def engineio_peer(peer: Peer, *, ping_ms: int = 100) -> None:
    """Open an Engine.IO 4 session, connect "/", then stay silent (never ping)."""
    await peer.accept()
    info = {"sid": "s1", "upgrades": [], "pingInterval": ping_ms, "pingTimeout": ping_ms}
    await peer.send(TextMessage("0" + orjson.dumps(info).decode()))
    assert await peer.message() == "40"
    await peer.send(TextMessage('40{"sid":"n1"}'))
    while not isinstance(await peer.event(), CloseConnection):
        pass


async def test_silent_server_counts_as_dead() -> None:
    client = SocketIOClient()
    with anyio.fail_after(5):
        async with peer_server(engineio_peer) as port:
            async with client.connect(f"ws://127.0.0.1:{port}"):
                start = anyio.current_time()
                await client.wait_disconnected()
                assert 0.15 < anyio.current_time() - start < 1.0  # pingInterval + pingTimeout
                assert client.disconnect_reason is gosf.ClientDisconnectReason.PING_TIMEOUT


async def test_tls_verifies_the_server_and_takes_a_ca_bundle() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client = SocketIOClient()
    with anyio.fail_after(10), ca.cert_pem.tempfile() as ca_file:
        async with peer_server(engineio_peer, server_context) as port:
            with pytest.raises(ssl.SSLCertVerificationError):  # not a CA the system trusts
                async with client.connect(f"https://127.0.0.1:{port}"):
                    pytest.fail("connected")
            async with client.connect(f"https://127.0.0.1:{port}", ca_file=ca_file):
                assert client.connected and client.sid() == "n1"


# -- the websocket client --------------------------------------------------------------------------


async def test_websocket_answers_pings_and_reports_the_close() -> None:
    async def script(peer: Peer) -> None:
        assert await peer.accept() == "/path?x=1"
        await peer.send(Ping(b"hi"))
        await peer.send(TextMessage("after ping"))
        pong = await peer.event()
        assert isinstance(pong, Pong) and pong.payload == b"hi"
        assert await peer.message() == b"binary"
        await peer.send(CloseConnection(4000, "bye"))
        assert isinstance(await peer.event(), CloseConnection)

    with anyio.fail_after(5):
        async with peer_server(script) as port:
            async with connect_websocket(f"ws://127.0.0.1:{port}/path?x=1") as ws:
                assert await ws.receive() == "after ping"
                await ws.send(b"binary")
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.receive()
                assert (closed.value.code, closed.value.reason) == (4000, "bye")
                with pytest.raises(ConnectionClosed):
                    await ws.send("too late")


async def test_websocket_bounds_message_size() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.send(TextMessage("x" * 100, message_finished=False))
        await peer.send(TextMessage("y" * 100))
        await peer.send(BytesMessage(b"z" * 1000))
        closing = await peer.event()
        assert isinstance(closing, CloseConnection) and closing.code == 1009

    with anyio.fail_after(5):
        async with peer_server(script) as port:
            async with connect_websocket(f"ws://127.0.0.1:{port}", max_message_size=500) as ws:
                assert await ws.receive() == "x" * 100 + "y" * 100  # fragments joined
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.receive()
                assert closed.value.code == 1009


async def test_connect_failures() -> None:
    client = SocketIOClient()
    with anyio.fail_after(10):
        with pytest.raises(OSError):  # nothing listens there
            async with client.connect(f"http://127.0.0.1:{free_port()}"):
                pytest.fail("connected")
        with pytest.raises(ValueError, match="namespace"):
            async with client.connect("http://127.0.0.1:1/admin"):
                pytest.fail("connected")
        with pytest.raises(ValueError, match="websocket URL"):
            async with client.connect("ftp://127.0.0.1:1"):
                pytest.fail("connected")
        async with on_loopback() as (_, url):
            with pytest.raises(HandshakeError) as refused:
                async with client.connect(url, path="/elsewhere"):
                    pytest.fail("connected")
            assert refused.value.status_code == 403
            async with client.connect(url):
                with pytest.raises(RuntimeError, match="already connected"):
                    async with client.connect(url):
                        pytest.fail("connected twice")

        async def hang_up(peer: Peer) -> None:
            await peer.accept()  # then closes the connection without an OPEN packet

        async with peer_server(hang_up) as port:
            with pytest.raises(gosf.Disconnected, match="while connecting"):
                async with client.connect(f"ws://127.0.0.1:{port}"):
                    pytest.fail("connected")

        async def mute(peer: Peer) -> None:
            await anyio.sleep_forever()  # accepts TCP, never answers the upgrade

        async with peer_server(mute) as port:
            start = anyio.current_time()
            with pytest.raises(TimeoutError):
                async with client.connect(f"ws://127.0.0.1:{port}", connect_timeout=0.3):
                    pytest.fail("connected")
            assert anyio.current_time() - start < 2


def test_reserved_and_bad_arguments() -> None:
    client = SocketIOClient()
    with pytest.raises(ValueError, match="reserved"):
        client.on("connect", lambda: None)
    with pytest.raises(ValueError, match="protocol"):
        SocketIOClient(protocol=3)  # type: ignore[arg-type]
