"""Why a client was disconnected: typed reasons, the same words as ever.

Every reason a client can cause is provoked here on the wire (raw frames over
a bare websocket, raw long-polling requests) and must reach the namespace's
disconnect handlers as the member of :class:`gosf.CloseReason` (the Engine.IO
session's reasons) or :class:`gosf.DisconnectReason` (a Socket.IO namespace's),
equal to the string gosf gave before the reasons were typed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import httpx
import pytest

import gosf
from gosf.protocol import session as session_module
from gosf.protocol.session import Session
from tests.harness import Watch, watch_attribute
from tests.test_engineio_server import (
    Polling,
    make_server,
    record_disconnects,
    running,
    socketio_ws,
)

pytestmark = pytest.mark.anyio

Reason = gosf.CloseReason | gosf.DisconnectReason

# The words gosf has always used: user code compares reasons with them.
OLD_WORDS: dict[Reason, str] = {
    gosf.CloseReason.TRANSPORT_CLOSE: "transport close",
    gosf.CloseReason.TRANSPORT_ERROR: "transport error",
    gosf.CloseReason.CLIENT_CLOSE: "client closed",
    gosf.CloseReason.PING_TIMEOUT: "ping timeout",
    gosf.CloseReason.PARSE_ERROR: "parse error",
    gosf.CloseReason.PROTOCOL_ERROR: "protocol error",
    gosf.CloseReason.PAYLOAD_TOO_LARGE: "payload too large",
    gosf.CloseReason.OVERLAPPING_GET: "overlapping GET requests",
    gosf.CloseReason.OVERLAPPING_POST: "overlapping POST requests",
    gosf.CloseReason.SLOW_CLIENT: "slow client",
    gosf.CloseReason.SERVER_DISCONNECT: "server disconnect",
    gosf.CloseReason.SERVER_SHUTTING_DOWN: "server shutting down",
    gosf.CloseReason.CONNECT_TIMEOUT: "connect timeout",
    gosf.CloseReason.RELAY_OVERFLOW: "relay overflow",
    gosf.CloseReason.HANDED_OVER: "handed over",
    gosf.DisconnectReason.CLIENT_NAMESPACE_DISCONNECT: "client namespace disconnect",
    gosf.DisconnectReason.SERVER_NAMESPACE_DISCONNECT: "server namespace disconnect",
}


def test_every_reason_is_the_string_it_always_was() -> None:
    members: list[Reason] = [*gosf.CloseReason, *gosf.DisconnectReason]
    assert set(members) == set(OLD_WORDS)
    for member in members:
        assert isinstance(member, str)
        assert member == OLD_WORDS[member]
        assert str(member) == f"{member}" == OLD_WORDS[member]  # what logs show


def test_the_public_close_reason_is_the_sessions() -> None:
    assert gosf.CloseReason is session_module.CloseReason


# -- what a client does, and the reason its socket gets ---------------------------------


@dataclass
class Scene:
    """What a provocation acts on: the running server and ways to reach it."""

    server: gosf.SocketIOServer
    host: str
    http: httpx.AsyncClient
    disconnected: anyio.Event
    polls: Watch
    """Notified whenever a session's ``get_pending`` changes."""
    posts: Watch
    """Notified whenever a session's ``post_pending`` changes."""


Provoke = Callable[[Scene], Awaitable[None]]


async def drop_the_websocket(scene: Scene) -> None:
    async with socketio_ws(scene.host):
        pass  # the TCP connection goes without a close frame


async def send_a_close_packet(scene: Scene) -> None:
    async with socketio_ws(scene.host) as ws:
        await ws.send("1")
        await ws.receive()


async def send_a_broken_packet(scene: Scene) -> None:
    async with socketio_ws(scene.host) as ws:
        await ws.send('42["echo"')
        await ws.receive()


async def send_a_packet_not_allowed_here(scene: Scene) -> None:
    async with socketio_ws(scene.host) as ws:
        await ws.send("0")  # an OPEN packet comes from the server only
        await ws.receive()


async def stop_answering_pings(scene: Scene) -> None:
    async with socketio_ws(scene.host) as ws:
        while await ws.receive() == "2":
            pass  # not answered: the next check closes the session


async def leave_the_namespace(scene: Scene) -> None:
    async with socketio_ws(scene.host) as ws:
        await ws.send("41")
        await scene.disconnected.wait()


async def post_too_much(scene: Scene) -> None:
    client = Polling(scene.http)
    await client.connect()
    response = await client.post("4" + "x" * (scene.server.options.max_payload + 1))
    assert response.status_code == 413


async def post_garbage(scene: Scene) -> None:
    client = Polling(scene.http)
    await client.connect()
    assert (await scene.http.post(client.url, content=b"zz")).status_code == 400


async def poll_twice_at_once(scene: Scene) -> None:
    client = Polling(scene.http)
    await client.connect()
    (session,) = scene.server.engine.sessions.values()
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.get)  # answered with the CLOSE once the second one comes
        await scene.polls.until(lambda: session.machine.get_pending)
        assert (await scene.http.get(client.url)).status_code == 400


async def post_twice_at_once(scene: Scene) -> None:
    client = Polling(scene.http)
    await client.connect()
    (session,) = scene.server.engine.sessions.values()
    address, port = scene.host.rsplit(":", 1)
    async with await anyio.connect_tcp(address, int(port)) as first:
        # A POST whose body has not all come: the server is still reading it.
        head = (
            f"POST {client.url} HTTP/1.1\r\nHost: {scene.host}\r\n"
            "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 10\r\n\r\n"
        )
        await first.send(head.encode() + b"4")
        await scene.posts.until(lambda: session.machine.post_pending)
        assert (await client.post("4x")).status_code == 400


async def close_over_polling(scene: Scene) -> None:
    client = Polling(scene.http)
    await client.connect()
    assert (await client.post("1")).text == "ok"


CLIENT_CAUSED: list[tuple[Provoke, Reason]] = [
    (drop_the_websocket, gosf.CloseReason.TRANSPORT_CLOSE),
    (send_a_close_packet, gosf.CloseReason.CLIENT_CLOSE),
    (send_a_broken_packet, gosf.CloseReason.PARSE_ERROR),
    (send_a_packet_not_allowed_here, gosf.CloseReason.PROTOCOL_ERROR),
    (stop_answering_pings, gosf.CloseReason.PING_TIMEOUT),
    (leave_the_namespace, gosf.DisconnectReason.CLIENT_NAMESPACE_DISCONNECT),
    (post_too_much, gosf.CloseReason.PAYLOAD_TOO_LARGE),
    (post_garbage, gosf.CloseReason.PARSE_ERROR),
    (poll_twice_at_once, gosf.CloseReason.OVERLAPPING_GET),
    (post_twice_at_once, gosf.CloseReason.OVERLAPPING_POST),
    (close_over_polling, gosf.CloseReason.CLIENT_CLOSE),
]


@pytest.mark.parametrize(
    ("provoke", "expected"),
    CLIENT_CAUSED,
    ids=[provoke.__name__ for provoke, _ in CLIENT_CAUSED],
)
async def test_a_reason_the_client_causes_reaches_the_disconnect_handler_as_its_member(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch, provoke: Provoke, expected: Reason
) -> None:
    server = make_server(ping_interval=0.2, ping_timeout=0.3, max_payload=2048)
    polls = watch_attribute(monkeypatch, Session, "get_pending")
    posts = watch_attribute(monkeypatch, Session, "post_pending")
    reasons, disconnected = record_disconnects(server)

    async with running(server) as (_, host, http):
        with anyio.fail_after(10):
            await provoke(Scene(server, host, http, disconnected, polls, posts))
            await disconnected.wait()
    assert reasons == [OLD_WORDS[expected]]
    (reason,) = reasons
    assert reason is expected


# -- what the server does --------------------------------------------------------------


async def test_the_server_disconnecting_a_socket_gives_the_namespace_reason(
    anyio_backend: str,
) -> None:
    server = make_server()
    reasons, disconnected = record_disconnects(server)

    @server.on("bye")
    async def bye(socket: gosf.Socket) -> None:
        socket.disconnect()

    async with running(server) as (_, host, _):
        async with socketio_ws(host) as ws:
            with anyio.fail_after(10):
                await ws.send('42["bye"]')
                await disconnected.wait()
    assert reasons == ["server namespace disconnect"]
    assert reasons[0] is gosf.DisconnectReason.SERVER_NAMESPACE_DISCONNECT


async def test_a_server_shutting_down_gives_its_reason(anyio_backend: str) -> None:
    server = make_server()
    reasons, disconnected = record_disconnects(server)

    async with running(server) as (_, host, _):
        async with socketio_ws(host):
            with anyio.fail_after(10):
                await server.shutdown(grace=0)
                await disconnected.wait()
    assert reasons == ["server shutting down"]
    assert reasons[0] is gosf.CloseReason.SERVER_SHUTTING_DOWN
