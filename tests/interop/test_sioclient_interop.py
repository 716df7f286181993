"""gosf's SocketIOClient against other Socket.IO servers, under asyncio and trio.

* python-socketio's ASGI server (``tests/apps/pysio_server.py``), under uvicorn;
* the npm ``socket.io`` 4.x server (Socket.IO 5 / Engine.IO 4);
* the npm ``socket.io`` 2.x server (Socket.IO 4 / Engine.IO 3, GOSF in Go's
  protocol), which the client speaks when created with ``protocol=4``.

The npm servers run ``tests/js/servers/server.cjs`` with the packages of
``tests/js/servers/package-lock.json`` (``npm ci --prefix tests/js/servers``).
Every server runs in a child process on loopback, started once per module,
and has short heartbeats, so a client that gets them wrong is dropped during
the heartbeat test.
"""

from __future__ import annotations

import selectors
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.lowlevel
import pytest

import gosf
from gosf._client.client import SocketIOClient
from tests.conftest import free_port, start_server, stop_server

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

JS_SERVERS = Path(__file__).resolve().parent.parent / "js" / "servers"
READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    protocol: Literal[4, 5]
    process: subprocess.Popen[bytes]
    heartbeat_deadline: float
    """Seconds after which the server drops a client that gets heartbeats wrong."""

    def client(self) -> SocketIOClient:
        return SocketIOClient(protocol=self.protocol)


def wait_ready(process: subprocess.Popen[bytes]) -> None:
    """Wait (bounded) for the node server's ``ready`` line."""
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                line = process.stdout.readline()
                if line.strip() == b"ready":
                    return
                if not line:
                    raise RuntimeError(f"node exited with {process.wait(5)} before listening")
    raise RuntimeError(f"node did not listen within {READY_TIMEOUT}s")


def start_node(version: str) -> tuple[subprocess.Popen[bytes], int]:
    node = shutil.which("node")
    if node is None or not (JS_SERVERS / "node_modules" / "socket.io-v2").is_dir():
        pytest.fail("node and tests/js/servers/node_modules are needed: npm ci in that folder")
    port = free_port()
    process = subprocess.Popen(
        [node, "server.cjs", version, str(port)],
        cwd=JS_SERVERS,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        wait_ready(process)
    except BaseException:
        stop_server(process)
        raise
    return process, port


@pytest.fixture(scope="module", params=["python-socketio", "socket.io-v4", "socket.io-v2"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    name = str(request.param)
    if name == "python-socketio":
        served = start_server("uvicorn", "tests.apps.pysio_server:app")
        process, port, deadline = served.process, served.port, 1.5
        protocol: Literal[4, 5] = 5
    else:
        process, port = start_node(name.removeprefix("socket.io-"))
        protocol, deadline = (5 if name.endswith("v4") else 4), 0.7
    try:
        yield Target(name, f"http://127.0.0.1:{port}", protocol, process, deadline)
        assert process.poll() is None, f"{name} died during the tests"
    finally:
        stop_server(process)


@asynccontextmanager
async def connected(
    target: Target, client: SocketIOClient | None = None, **options: Any
) -> AsyncIterator[SocketIOClient]:
    client = client or target.client()
    async with client.connect(target.url, connect_timeout=10, **options):
        yield client


async def test_call_returns_the_ack(target: Target) -> None:
    with anyio.fail_after(10):
        async with connected(target) as client:
            payload = {"text": "Hello world. é ✓ 🎉", "n": [1, 2.5, None, True]}
            assert await client.call("echo", payload, timeout=5) == payload
            assert await client.call("echo", 1, "two", [3], timeout=5) == (1, "two", [3])
            assert await client.call("echo", timeout=5) is None


async def test_emit_and_event_handler(target: Target) -> None:
    client = target.client()
    send, receive = anyio.create_memory_object_stream[tuple[Any, ...]](1)
    client.on("echo-event", lambda *args: send.send_nowait(args))
    with anyio.fail_after(10):
        async with connected(target, client):
            await client.emit("echo-event", {"a": 1}, "b")
            assert await receive.receive() == ({"a": 1}, "b")


async def test_binary_attachments_both_ways(target: Target) -> None:
    blob = bytes(range(256)) * 4
    client = target.client()
    send, receive = anyio.create_memory_object_stream[tuple[Any, ...]](1)
    client.on("echo-event", lambda *args: send.send_nowait(args))
    with anyio.fail_after(10):
        async with connected(target, client):
            reply = await client.call("echo", {"blob": blob, "nested": [b"x", {"y": b""}]})
            assert reply == {"blob": blob, "nested": [b"x", {"y": b""}]}
            await client.emit("echo-event", b"\x00\xff", "text")
            assert await receive.receive() == (b"\x00\xff", "text")


async def test_namespaces(target: Target) -> None:
    with anyio.fail_after(10):
        async with connected(target, namespaces=["/", "/custom"]) as client:
            assert client.namespaces == {"/", "/custom"}
            assert await client.call("echo", "hi", namespace="/custom") == ("custom", "hi")
            assert await client.call("echo", "hi") == "hi"
            whoami = await client.call("whoami")
            assert whoami["sid"] == client.sid("/")
            assert client.sid("/custom") not in (None, client.sid("/"))


async def test_server_calls_the_client(target: Target) -> None:
    client = target.client()

    @client.on("question")
    async def question(a: int, b: int) -> int:
        await anyio.lowlevel.checkpoint()
        return a + b

    client.on("blob", lambda data: data[::-1])
    with anyio.fail_after(10):
        async with connected(target, client):
            assert await client.call("call-me", "question", 20, 22) == 42
            assert await client.call("call-me", "blob", b"abc") == b"cba"


async def test_refused_connection(target: Target) -> None:
    with anyio.fail_after(10):
        with pytest.raises(gosf.ConnectionRefused) as refused:
            async with connected(target, auth={"token": "bad"}):
                pytest.fail("connected despite the bad token")
    if target.protocol == 5:
        assert refused.value.message == "not authorized"
    assert refused.value.data == {"reason": "bad token"}
    with anyio.fail_after(10):  # auth reaches the server (as a query in protocol 4)
        async with connected(target, auth={"token": "good"}) as client:
            assert (await client.call("whoami"))["auth"] == {"token": "good"}


async def test_server_disconnect(target: Target) -> None:
    with anyio.fail_after(10):
        async with connected(target) as client:
            with pytest.raises(gosf.Disconnected):  # the call in flight fails at once
                await client.call("disconnect-me", 0.1)
            await client.wait_disconnected()
            assert not client.connected
            assert client.disconnect_reason is gosf.ClientDisconnectReason.IO_SERVER_DISCONNECT
            with pytest.raises(gosf.Disconnected):
                await client.emit("echo")


async def test_ack_timeout(target: Target) -> None:
    with anyio.fail_after(10):
        async with connected(target) as client:
            start = anyio.current_time()
            with pytest.raises(TimeoutError):
                await client.call("sleep", 1, timeout=0.2)
            assert anyio.current_time() - start < 0.9
            assert await client.call("echo", "still here") == "still here"


async def test_heartbeat_keeps_the_connection(target: Target) -> None:
    """Short heartbeats: node pings every 0.3 s (v2: wants a ping as often) and gives up
    0.4 s later; python-socketio every 1 s, and gives up 0.5 s later."""
    with anyio.fail_after(10):
        async with connected(target) as client:
            # Time passes on purpose: past the deadline twice, heartbeats kept it up.
            await anyio.sleep(2 * target.heartbeat_deadline + 0.2)
            assert client.connected
            assert await client.call("echo", 1) == 1


async def test_clean_disconnect(target: Target) -> None:
    with anyio.fail_after(15):
        async with connected(target) as client:
            sid = client.sid()
            await client.disconnect()
            assert not client.connected
            assert client.disconnect_reason is gosf.ClientDisconnectReason.IO_CLIENT_DISCONNECT
        async with connected(target) as observer:
            # The server saw the DISCONNECT, not just a closed socket.
            reason = await observer.call("wait-disconnect-reason", sid, 5)
            assert reason is not None, "the server recorded no disconnect within 5 s"
            assert "client" in reason and "transport" not in reason, reason
