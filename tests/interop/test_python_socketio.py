"""python-socketio's AsyncClient (the reference Python client) against gosf.

The server runs in a child process under hypercorn (asyncio and trio workers)
and uvicorn; the client needs asyncio (it is built on aiohttp), so these
tests run on the asyncio backend only. Every transport setup is covered:
websocket only, polling only, and polling upgraded to websocket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import socketio

from tests.conftest import Served

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

TRANSPORTS = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "upgrade": ["polling", "websocket"],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=list(TRANSPORTS))
def transports(request: pytest.FixtureRequest) -> list[str]:
    return TRANSPORTS[str(request.param)]


async def connect(served: Served, transports: list[str], **kwargs: Any) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(served.url, transports=transports, wait_timeout=5, **kwargs)
    return client


@pytest.fixture
async def client(served: Served, transports: list[str]) -> AsyncIterator[socketio.AsyncClient]:
    client = await connect(served, transports, namespaces=["/", "/custom"])
    try:
        yield client
    finally:
        await client.disconnect()


async def test_ack_round_trip(client: socketio.AsyncClient) -> None:
    with anyio.fail_after(10):
        payload = {"text": "Hello world. é ✓ 🎉", "n": [1, 2.5, None, True]}
        assert await client.call("echo", payload, timeout=5) == payload
        assert await client.call("echo", (1, "two", [3]), timeout=5) == (1, "two", [3])


async def test_event_reply(client: socketio.AsyncClient) -> None:
    received: list[Any] = []
    got = anyio.Event()

    async def on_echo(*args: Any) -> None:
        received.append(args)
        got.set()

    client.on("echo-event", on_echo)
    with anyio.fail_after(10):
        await client.emit("echo-event", {"a": 1})
        await got.wait()
    assert received == [({"a": 1},)]


async def test_binary_attachments(client: socketio.AsyncClient) -> None:
    blob = bytes(range(256)) * 4
    with anyio.fail_after(10):
        reply = await client.call("echo", {"blob": blob, "nested": [b"x", {"y": b""}]}, timeout=5)
    assert reply == {"blob": blob, "nested": [b"x", {"y": b""}]}


async def test_custom_namespace(client: socketio.AsyncClient) -> None:
    with anyio.fail_after(10):
        assert await client.call("echo", "hi", namespace="/custom", timeout=5) == ["custom", "hi"]
        # the default namespace is a separate socket with its own handlers
        assert await client.call("echo", "hi", timeout=5) == "hi"


async def test_server_initiated_ack(client: socketio.AsyncClient) -> None:
    async def question(a: int, b: int) -> int:
        return a * b

    client.on("question", question)
    with anyio.fail_after(10):
        assert await client.call("call-me", ("question", 6, 7), timeout=8) == 42


async def test_connection_refused_by_connect_handler(served: Served, transports: list[str]) -> None:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []

    async def on_connect_error(data: Any) -> None:
        errors.append(data)

    client.on("connect_error", on_connect_error)
    with anyio.fail_after(10), pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            served.url, transports=transports, auth={"token": "bad"}, wait_timeout=5
        )
    assert errors == [{"message": "not authorized", "data": {"reason": "bad token"}}]


async def test_auth_payload_reaches_the_server(served: Served, transports: list[str]) -> None:
    client = await connect(served, transports, auth={"token": "good", "user": 7})
    try:
        with anyio.fail_after(10):
            info = await client.call("whoami", timeout=5)
        assert info["auth"] == {"token": "good", "user": 7}
        assert info["protocol"] == 5
        assert info["sid"] == client.get_sid()
    finally:
        await client.disconnect()


async def test_unknown_namespace_is_refused(served: Served, transports: list[str]) -> None:
    with anyio.fail_after(10), pytest.raises(socketio.exceptions.ConnectionError):
        await connect(served, transports, namespaces=["/nope"])


async def test_upgrade_reaches_websocket(served: Served) -> None:
    client = await connect(served, ["polling", "websocket"])
    try:
        # python-engineio's client upgrades within connect(): nothing to wait for.
        assert client.transport() == "websocket"
        with anyio.fail_after(10):
            info = await client.call("whoami", timeout=5)
        assert info["transport"] == "websocket"
    finally:
        await client.disconnect()


async def test_server_disconnects_client(served: Served, transports: list[str]) -> None:
    client = await connect(served, transports)
    gone = anyio.Event()

    async def on_disconnect(*args: Any) -> None:
        gone.set()

    client.on("disconnect", on_disconnect)
    try:
        with anyio.fail_after(10):
            await client.emit("disconnect-me")
            await gone.wait()
    finally:
        await client.disconnect()


async def test_room_broadcast_between_clients(served: Served, transports: list[str]) -> None:
    first = await connect(served, transports)
    second = await connect(served, transports)
    got = anyio.Event()
    received: list[Any] = []

    async def on_room(*args: Any) -> None:
        received.append(args)
        got.set()

    second.on("room-message", on_room)
    try:
        with anyio.fail_after(10):
            assert "lobby" in await second.call("join", "lobby", timeout=5)
            assert await first.call("to-room", ("lobby", "hello"), timeout=5) == 1
            await got.wait()
        assert received == [("hello",)]
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_heartbeat_keeps_idle_client_connected(served: Served, transports: list[str]) -> None:
    # The interop app pings every second with a 2 s timeout: an idle client
    # answering pings must survive several intervals.
    client = await connect(served, transports)
    try:
        with anyio.fail_after(15):
            await anyio.sleep(3.5)
            assert client.connected
            assert await client.call("echo", "still here", timeout=5) == "still here"
    finally:
        await client.disconnect()
