"""The msgpack parser on the wire: npm socket.io-client v4 with
``socket.io-msgpack-parser`` against a gosf server (``parser="msgpack"``) on
loopback, under asyncio and trio; and a client sending bad msgpack, which is
closed alone.

``tests/js/msgpack_client.cjs`` drives the npm client and reports what it saw.
"""

from __future__ import annotations

import base64
import json
import shutil
from typing import Any

import anyio
import msgpack
import pytest

import gosf
import gosf.testing
from tests.harness import Closed, RawWebSocket, serve_app
from tests.node import JS

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

WAIT = 20


def make_server() -> gosf.SocketIOServer:
    server = gosf.SocketIOServer(parser="msgpack")

    @server.on("echo")
    async def echo(socket: gosf.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @server.on("call-me")
    async def call_me(socket: gosf.Socket, a: int, b: int) -> Any:
        return await socket.call("question", a, b, timeout=5)

    @server.on("whoami")
    async def whoami(socket: gosf.Socket) -> dict[str, Any]:
        return {"auth": dict(socket.auth), "namespace": socket.namespace.name}

    @server.on("disconnect-me")
    async def disconnect_me(socket: gosf.Socket) -> None:
        socket.disconnect()

    server.namespace("/custom").on("echo", echo)
    return server


async def run_client(host: str, transports: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "socket.io-msgpack-parser").is_dir():
        pytest.fail("node and tests/js/node_modules are required: run ./scripts/test (npm ci)")
    with anyio.fail_after(WAIT + 10):
        result = await anyio.run_process(
            [node, str(JS / "msgpack_client.cjs"), f"http://{host}", transports], check=False
        )
    assert result.returncode == 0, result.stderr.decode()
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
async def test_npm_msgpack_client(transports: str) -> None:
    async with serve_app(make_server()) as host:
        seen = await run_client(host, transports)

    assert seen["echo"]["text"] == "é ✓"
    assert base64.b64decode(seen["echo"]["blob"]) == bytes(range(256))
    assert seen["echo"]["list"] == [1, 2.5]
    # The client's ack, a Buffer, came back to the handler as bytes and out again as bin.
    assert seen["serverAck"] == {"type": "Buffer", "data": [42]}
    assert seen["whoami"] == {"auth": {"token": "t"}, "namespace": "/"}
    assert seen["custom"] == "hi"
    assert seen["refused"] == "Invalid namespace"
    assert seen["serverDisconnect"] == "io server disconnect"


def pack(obj: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


async def connect_raw(ws: RawWebSocket) -> None:
    """The Engine.IO OPEN, then a msgpack CONNECT to "/" and its answer."""
    opening = await ws.receive()
    assert isinstance(opening, str) and opening.startswith("0")
    await ws.send(pack({"type": 0, "nsp": "/"}))
    answer = await ws.receive()
    assert isinstance(answer, bytes)
    assert msgpack.unpackb(answer)["type"] == 0


@pytest.mark.parametrize(
    "bad",
    [
        b"\xc1",  # a byte msgpack never uses
        pack({"type": 2, "nsp": "/", "data": ["echo"]}) + b"\x00",  # trailing bytes
        pack({"type": 9, "nsp": "/", "data": ["echo"]}),  # no such packet type
        pack({"type": 2, "nsp": "/", "data": "echo"}),  # an event that is no array
        '2["echo"]',  # a JSON text packet
    ],
)
async def test_bad_msgpack_closes_the_offender_only(bad: str | bytes) -> None:
    async with serve_app(make_server()) as host:
        target = "/socket.io/?EIO=4&transport=websocket"
        async with (
            RawWebSocket.connect(host, target) as good,
            RawWebSocket.connect(host, target) as offender,
        ):
            await connect_raw(good)
            await connect_raw(offender)
            await offender.send(bad if isinstance(bad, bytes) else "4" + bad)
            with anyio.fail_after(WAIT):
                closed = await offender.receive()
                while not isinstance(closed, Closed):  # a ping may come first
                    closed = await offender.receive()
            assert closed.code == 1008  # policy violation: bad input

            await good.send(pack({"type": 2, "nsp": "/", "data": ["echo", b"\x00\x01"], "id": 1}))
            with anyio.fail_after(WAIT):
                answer = await good.receive()
            assert isinstance(answer, bytes)
            reply = msgpack.unpackb(answer)
            assert reply == {"type": 3, "nsp": "/", "data": [b"\x00\x01"], "id": 1}


async def test_gosf_client_with_the_msgpack_parser() -> None:
    """gosf's own client speaks msgpack too (in memory): binary data both ways,
    acks both ways, a namespace refused."""
    server = make_server()
    client = gosf.SocketIOClient(parser="msgpack")

    @client.on("question")
    async def question(a: int, b: int) -> bytes:
        return bytes([a * b])

    connector = gosf.testing.asgi_connector(server)
    nowhere = gosf.SocketIOClient(parser="msgpack")
    with anyio.fail_after(WAIT):
        async with server:
            async with client.connect("http://testserver", auth={"t": 1}, connector=connector):
                assert await client.call("echo", b"\x00\xff", timeout=5) == b"\x00\xff"
                assert await client.call("call-me", 6, 7, timeout=5) == b"*"
                whoami = await client.call("whoami", timeout=5)
                assert whoami == {"auth": {"t": 1}, "namespace": "/"}
            with pytest.raises(gosf.ConnectionRefused, match="Invalid namespace"):
                async with nowhere.connect(
                    "http://testserver", namespaces=["/nowhere"], connector=connector
                ):
                    pass


def test_observers_read_msgpack_broadcasts_of_other_processes() -> None:
    """A broadcast another process published is decoded for the observers with the
    parser it was encoded with (the JSON decoder refuses a lone binary part)."""
    from gosf._socketio.observers import Observers
    from gosf.protocol.parser import MSGPACK_PARSER

    seen: list[tuple[Any, ...]] = []

    class Recorder(gosf.Observer):
        def broadcast_sent(self, packet: Any, size: int, rooms: Any, recipients: int) -> None:
            seen.append((packet.data, rooms, recipients))

    observers = Observers(lambda: None)
    observers.add(Recorder())
    observers.delivered(MSGPACK_PARSER.encode_event("/", "news", [b"\x01"]), ("red",), 2)
    assert seen == [(["news", b"\x01"], ("red",), 2)]
