"""Why gosf's Socket.IO client was disconnected: typed reasons, the same words as ever.

Each reason the client can get is provoked here, against gosf's server in
memory (``gosf.testing.asgi_connector``) or a scripted websocket peer on
loopback for what a well-behaved server never does (go silent, drop the
connection, send garbage). The reason must arrive as the member of
:class:`gosf.ClientDisconnectReason`, equal to the string the client gave
before the reasons were typed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import orjson
import pytest
from wsproto.events import CloseConnection, TextMessage

import gosf
from gosf.testing import asgi_connector
from tests.test_sioclient import Peer, Script, peer_server

pytestmark = pytest.mark.anyio

PROTOCOLS = pytest.mark.parametrize("protocol", [5, 4])

# socket.io-client's words, which gosf's client has always given: user code
# compares reasons with them.
OLD_WORDS = {
    "IO_SERVER_DISCONNECT": "io server disconnect",
    "IO_CLIENT_DISCONNECT": "io client disconnect",
    "PING_TIMEOUT": "ping timeout",
    "TRANSPORT_CLOSE": "transport close",
    "TRANSPORT_ERROR": "transport error",
    "PARSE_ERROR": "parse error",
}


def test_every_reason_is_the_string_it_always_was() -> None:
    reasons = gosf.ClientDisconnectReason
    assert {member.name: member.value for member in reasons} == OLD_WORDS
    for member in reasons:
        assert isinstance(member, str)
        assert member == OLD_WORDS[member.name]
        assert str(member) == f"{member}" == OLD_WORDS[member.name]  # what logs show


def assert_reason(client: gosf.SocketIOClient, name: str) -> None:
    """The client's reason is the member called ``name``, and its old string."""
    reason = client.disconnect_reason
    assert reason is gosf.ClientDisconnectReason[name], reason
    assert reason == OLD_WORDS[name]


# -- gosf's server, in memory ------------------------------------------------------------


@asynccontextmanager
async def in_memory(protocol: Literal[4, 5]) -> AsyncIterator[gosf.SocketIOClient]:
    """A client connected to a gosf server that disconnects whoever emits "leave-me"."""
    server = gosf.SocketIOServer()

    @server.on("leave-me")
    async def leave_me(socket: gosf.Socket) -> None:
        socket.disconnect()

    client = gosf.SocketIOClient(protocol=protocol)
    async with server, client.connect("http://testserver", connector=asgi_connector(server)):
        yield client


@PROTOCOLS
async def test_the_server_disconnects_the_client(protocol: Literal[4, 5]) -> None:
    with anyio.fail_after(10):
        async with in_memory(protocol) as client:
            await client.emit("leave-me")
            await client.wait_disconnected()
            assert_reason(client, "IO_SERVER_DISCONNECT")


@PROTOCOLS
async def test_the_client_disconnects(protocol: Literal[4, 5]) -> None:
    with anyio.fail_after(10):
        async with in_memory(protocol) as client:
            await client.disconnect()
            assert_reason(client, "IO_CLIENT_DISCONNECT")


async def test_leaving_the_block_disconnects() -> None:
    with anyio.fail_after(10):
        async with in_memory(5) as client:
            assert client.disconnect_reason is None
        assert_reason(client, "IO_CLIENT_DISCONNECT")


async def test_a_call_in_flight_fails_with_the_reason() -> None:
    with anyio.fail_after(10):
        async with in_memory(5) as client:
            with pytest.raises(gosf.Disconnected) as failed:
                await client.call("leave-me")
            assert str(failed.value) == "io server disconnect"


# -- a scripted peer on loopback ---------------------------------------------------------


async def connected_peer(peer: Peer, *, ping_ms: int = 10_000) -> None:
    """Open an Engine.IO 4 session, connect "/" and wait for the client's "go".

    The script misbehaves only then: earlier, the client would still be
    connecting, and fail its ``connect`` instead of reporting a reason.
    """
    await peer.accept()
    info = {"sid": "s1", "upgrades": [], "pingInterval": ping_ms, "pingTimeout": ping_ms}
    await peer.send(TextMessage("0" + orjson.dumps(info).decode()))
    assert await peer.message() == "40"
    await peer.send(TextMessage('40{"sid":"n1"}'))
    assert await peer.message() == '42["go"]'


async def goes_silent(peer: Peer) -> None:
    await connected_peer(peer, ping_ms=100)
    while not isinstance(await peer.event(), CloseConnection):  # never pings
        pass


async def drops_the_connection(peer: Peer) -> None:
    await connected_peer(peer)
    await peer.stream.aclose()  # no close frame: the TCP connection just ends


async def closes_the_websocket(peer: Peer) -> None:
    await connected_peer(peer)
    await peer.send(CloseConnection(1001))


async def sends_engineio_close(peer: Peer) -> None:
    await connected_peer(peer)
    await peer.send(TextMessage("1"))
    while not isinstance(await peer.event(), CloseConnection):
        pass


def sends(frame: str) -> Script:
    async def script(peer: Peer) -> None:
        await connected_peer(peer)
        await peer.send(TextMessage(frame))
        while not isinstance(await peer.event(), CloseConnection):
            pass

    return script


@pytest.mark.parametrize(
    ("script", "name"),
    [
        pytest.param(goes_silent, "PING_TIMEOUT", id="silent"),
        pytest.param(drops_the_connection, "TRANSPORT_CLOSE", id="dropped"),
        pytest.param(closes_the_websocket, "TRANSPORT_CLOSE", id="websocket-closed"),
        pytest.param(sends_engineio_close, "TRANSPORT_CLOSE", id="engineio-close"),
        pytest.param(sends('42["news", '), "PARSE_ERROR", id="bad-json"),
        pytest.param(sends("9"), "PARSE_ERROR", id="bad-engineio-packet"),
        pytest.param(sends("0{}"), "PARSE_ERROR", id="second-open"),
    ],
)
async def test_the_server_misbehaves(script: Script, name: str) -> None:
    client = gosf.SocketIOClient()
    with anyio.fail_after(10):
        async with peer_server(script) as port, client.connect(f"ws://127.0.0.1:{port}"):
            await client.emit("go")
            await client.wait_disconnected()
            assert_reason(client, name)
