"""What a connect leaves behind and how its request is read, after the cuts of
issue 14's connect-cost slice (see "Connects with many clients already held"
in docs/performance.md).

* A handshake's query is read the same way whether it is split by hand (no
  escapes: every Engine.IO client's own) or by ``parse_qsl`` (escapes).
* An idle connected client holds no containers it has not used yet: its
  socket has no handler workers until its first event, its packet decoder
  no attachment list until a binary packet.

Over real loopback HTTP and websockets, under asyncio and trio.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import anyio
import pytest

import gosf
from gosf._engineio.http import query_params
from tests.test_engineio_server import echo_works, running, socketio_ws

pytestmark = pytest.mark.anyio

QUERIES = (
    "",
    "EIO=4&transport=websocket",
    "EIO=4&transport=polling&t=OqRz1b&sid=abc-_DEF",
    "a",
    "a=",
    "=x",
    "a=b=c",
    "&&a=1&&",
    "a=1&a=2",
    "token=a%2Bb&name=J+Doe",
    "x=%E2%82%AC&y=%zz",
    "caf\u00e9=cr\u00e8me",
)


@pytest.mark.parametrize("query", QUERIES)
def test_a_query_reads_as_parse_qsl_reads_it(query: str) -> None:
    raw = query.encode("latin-1")
    expected = dict(parse_qsl(query, keep_blank_values=True))
    assert query_params({"query_string": raw}) == expected


async def test_escaped_and_plain_handshake_queries_both_connect(anyio_backend: str) -> None:
    async with running() as (_, _, http):
        for target in (
            "/socket.io/?EIO=4&transport=polling&&t=x",
            "/socket.io/?EIO=%34&transport=polling&t=a+b",
        ):
            response = await http.get(target)
            assert response.status_code == 200, (target, response.text)
            assert response.content.startswith(b"0{")


async def test_a_socketio_2_client_gets_its_escaped_query_as_auth(anyio_backend: str) -> None:
    server = gosf.SocketIOServer()
    auths: list[dict[str, Any]] = []

    @server.on_connect
    async def connected(socket: gosf.Socket, auth: dict[str, Any]) -> None:
        auths.append(dict(auth))

    async with running(server) as (_, _, http):
        response = await http.get("/socket.io/?EIO=3&transport=polling&token=a%2Bb&who=J+Doe&n=")
        assert response.status_code == 200
    assert auths == [{"token": "a+b", "who": "J Doe", "n": ""}]


async def test_an_idle_client_has_no_workers_until_its_first_event(anyio_backend: str) -> None:
    async with running() as (server, host, _):
        async with socketio_ws(host) as ws:
            (socket,) = server.namespaces["/"].sockets.values()
            assert not socket.has_workers
            with anyio.fail_after(5):
                await echo_works(ws)
            assert socket.has_workers
            assert socket.workers.running == 1


async def test_a_client_that_leaves_without_an_event_never_had_workers(
    anyio_backend: str,
) -> None:
    server = gosf.SocketIOServer()
    gone: list[gosf.Socket] = []
    disconnected = anyio.Event()

    @server.on_disconnect
    async def left(socket: gosf.Socket, reason: str) -> None:
        gone.append(socket)
        disconnected.set()

    async with running(server) as (_, host, _):
        async with socketio_ws(host) as ws:
            await ws.send("41")
        with anyio.fail_after(5):
            await disconnected.wait()
    (socket,) = gone
    assert not socket.has_workers
    assert socket.workers.closed  # made now, it refuses jobs as the closed socket does


async def test_an_idle_decoder_holds_no_attachment_list(anyio_backend: str) -> None:
    async with running() as (server, host, _):
        async with socketio_ws(host) as ws:
            (session,) = server.engine.sessions.values()
            assert session.upper is not None
            decoder = session.upper.decoder
            assert decoder._attachments is None
            # A binary event still reassembles, and the decoder lets go after.
            await ws.send('451-7["echo",{"_placeholder":true,"num":0}]')
            await ws.send(b"\x00\x01")
            with anyio.fail_after(5):
                reply = await ws.receive()
                while reply == "2":
                    await ws.send("3")
                    reply = await ws.receive()
                assert reply == '461-7[{"_placeholder":true,"num":0}]'
                assert await ws.receive() == b"\x00\x01"
            assert decoder._attachments is None
