"""Rules of the reference Engine.IO server (``socketio/engine.io``) that the stock
clients meet at the edges of a session's life, on the wire.

Each test sends the raw requests and frames that trigger the rule (httpx for
long-polling, a bare websocket for the upgrade) under asyncio and trio:

* a client that closes over polling while its GET waits gets that GET back
  with a NOOP, and its session is gone at once;
* once the client has sent ``5`` on its websocket, polling requests are
  refused, also one sent right behind the ``5`` that may arrive first;
* a second websocket for a session that a websocket carries (or is taking
  over) is accepted and closed, and the first one goes on.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import orjson
import pytest

from gosf.protocol.session import Session
from tests.harness import Closed, RawWebSocket, watch_attribute
from tests.test_engineio_server import (
    Polling,
    echo_works,
    make_server,
    record_disconnects,
    running,
    upgraded,
)
from tests.test_forwarding import Hopping, http_client, pair, upgrade_through

pytestmark = pytest.mark.anyio

_UNKNOWN_SID = 1
_BAD_REQUEST = 3
_CLOSE_POLICY = 1008


def _websocket_target(sid: str) -> str:
    return f"/socket.io/?EIO=4&transport=websocket&sid={sid}"


# -- a client's CLOSE over long-polling ---------------------------------------------


async def test_a_client_close_answers_the_pending_get_with_a_noop_and_ends_the_session(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = watch_attribute(monkeypatch, Session, "get_pending")
    server = make_server()
    reasons, disconnected = record_disconnects(server)

    async with running(server) as (_, _, http):
        client = Polling(http)
        await client.connect()
        (session,) = server.engine.sessions.values()
        pending: list[str] = []

        async def long_poll() -> None:
            pending.extend(await client.get())

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(long_poll)
                await polls.until(lambda: session.machine.get_pending)
                assert (await client.post("1")).text == "ok"
            assert pending == ["6"]
            for after in (await http.get(client.url), await client.post("40")):
                assert after.status_code == 400
                assert after.json()["code"] == _UNKNOWN_SID
            await disconnected.wait()
    # The reference calls it "transport close"; gosf keeps its own reason.
    assert reasons == ["client closed"]


# -- polling once the websocket has taken over ------------------------------------


async def test_a_get_sent_right_after_the_upgrade_packet_is_refused(anyio_backend: str) -> None:
    async with running() as (_, host, http):
        client = Polling(http)
        await client.connect()
        with anyio.fail_after(10):
            async with RawWebSocket.connect(host, _websocket_target(client.sid)) as ws:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                await ws.send("5")
                # No wait for the server to read the "5": the GET may reach
                # it first, over its own connection.
                response = await http.get(client.url)
                assert response.status_code == 400
                assert response.json()["code"] == _BAD_REQUEST
                await echo_works(ws)


async def test_a_get_that_arrives_while_the_upgrade_packet_is_in_flight_is_refused(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = watch_attribute(monkeypatch, Session, "get_pending")
    async with running() as (server, host, http):
        client = Polling(http)
        await client.connect()
        (session,) = server.engine.sessions.values()
        with anyio.fail_after(10):
            async with RawWebSocket.connect(host, _websocket_target(client.sid)) as ws:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                # The "5" in a text frame (masked with zeros) cut in two: the
                # server holds its head when the GET arrives.
                await ws.send_raw(b"\x81\x81\x00\x00\x00\x00")
                responses: list[httpx.Response] = []

                async def late_get() -> None:
                    responses.append(await http.get(client.url))
                    polls.notify()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(late_get)
                    # Waiting at the server, or (a wrong answer) answered at once.
                    await polls.until(lambda: session.machine.get_pending or bool(responses))
                    await ws.send_raw(b"5")
                (response,) = responses
                assert response.status_code == 400
                assert response.json()["code"] == _BAD_REQUEST
                await echo_works(ws)


async def test_a_get_during_the_upgrade_leaves_the_queue_to_the_websocket(
    anyio_backend: str,
) -> None:
    async with running() as (_, host, http):
        client = Polling(http)
        await client.connect()
        with anyio.fail_after(10):
            async with RawWebSocket.connect(host, _websocket_target(client.sid)) as ws:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                await client.post('421["echo","for the websocket"]')  # its ack is queued
                assert await client.get() == ["6"]
                await ws.send("5")
                assert await ws.receive() == '431["for the websocket"]'
                await echo_works(ws)


# -- a second websocket for the session -------------------------------------------


async def _accepted_and_closed(host: str, sid: str) -> None:
    async with RawWebSocket.connect(host, _websocket_target(sid)) as second:
        assert second.status == 101
        assert await second.receive() == Closed(_CLOSE_POLICY)


async def test_a_second_websocket_for_an_upgraded_session_is_accepted_and_closed(
    anyio_backend: str,
) -> None:
    async with running() as (server, host, http):
        client = Polling(http)
        await client.connect()
        with anyio.fail_after(10):
            async with upgraded(host, client) as first:
                await echo_works(first)  # the "5" has been read
                await _accepted_and_closed(host, client.sid)
                await echo_works(first)
                assert len(server.engine.sessions) == 1


async def test_a_second_websocket_for_a_websocket_session_is_accepted_and_closed(
    anyio_backend: str,
) -> None:
    async with running() as (server, host, _):
        with anyio.fail_after(10):
            async with RawWebSocket.connect(host, "/socket.io/?EIO=4&transport=websocket") as first:
                opening = await first.receive()
                assert isinstance(opening, str) and opening.startswith("0")
                sid: Any = orjson.loads(opening[1:])["sid"]
                await first.send("40")
                assert str(await first.receive()).startswith("40{")
                await _accepted_and_closed(host, sid)
                await echo_works(first)
                assert list(server.engine.sessions) == [sid]


async def test_a_second_websocket_during_the_upgrade_is_accepted_and_closed(
    anyio_backend: str,
) -> None:
    async with running() as (server, host, http):
        client = Polling(http)
        await client.connect()
        with anyio.fail_after(10):
            async with RawWebSocket.connect(host, _websocket_target(client.sid)) as first:
                await _accepted_and_closed(host, client.sid)  # before the probe
                await first.send("2probe")
                assert await first.receive() == "3probe"
                await _accepted_and_closed(host, client.sid)  # between probe and upgrade
                await first.send("5")
                await echo_works(first)
                (session,) = server.engine.sessions.values()
                assert session.transport == "websocket"


async def test_a_second_relayed_websocket_for_an_upgraded_session_is_accepted_and_closed(
    anyio_backend: str,
) -> None:
    async with pair() as cluster, http_client() as http:
        owner, other = cluster.hosts
        client = Hopping(http, [other])
        await client.handshake(owner)
        with anyio.fail_after(10):
            async with upgrade_through(other, client.sid) as first:
                await echo_works(first)
                await _accepted_and_closed(other, client.sid)  # relayed to the owner
                await _accepted_and_closed(owner, client.sid)
                await echo_works(first)
