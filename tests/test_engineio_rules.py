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
import orjson
import pytest

from tests.harness import Closed, RawWebSocket
from tests.test_engineio_server import Polling, echo_works, running, upgraded
from tests.test_forwarding import Hopping, http_client, pair, upgrade_through

pytestmark = pytest.mark.anyio

_UNKNOWN_SID = 1
_BAD_REQUEST = 3
_CLOSE_POLICY = 1008


def _websocket_target(sid: str) -> str:
    return f"/socket.io/?EIO=4&transport=websocket&sid={sid}"


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
