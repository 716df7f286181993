"""No sticky sessions, at the speed of sticky ones: a young session moves to its websocket.

Two servers in one process share a MemoryBus, as in tests/test_forwarding.py
(whose helpers these tests use). A polling client opens its session on one
(the owner) and upgrades through the other: while the session is held
(``upgrade_handover``: its CONNECT not yet handed up), the owner hands it
over and the other process serves it directly; later, it is relayed, as it
always was. Which way a client was served is read from the forwarders'
statistics.
"""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest

from tests.harness import RawWebSocket
from tests.test_forwarding import Hopping, forwarding, http_client, pair, pending_get

pytestmark = pytest.mark.anyio

HOLD = {"upgrade_handover": 0.3}


def ws_target(sid: str) -> str:
    return f"/socket.io/?EIO=4&transport=websocket&sid={sid}"


async def test_a_young_session_upgrading_elsewhere_moves_there(anyio_backend: str) -> None:
    async with pair(**HOLD) as cluster, http_client() as http:
        (owner, other), (owner_server, other_server) = cluster.hosts, cluster.servers
        client = Hopping(http, [other])
        await client.handshake(owner)
        assert (await client.post("40")).text == "ok"  # the CONNECT: held by the owner
        assert owner_server.engine.sessions[client.sid].machine.held
        held = owner_server.engine.sessions[client.sid]
        with anyio.fail_after(10):
            async with RawWebSocket.connect(other, ws_target(client.sid)) as ws:
                async with pending_get(client, other, held) as got:
                    await ws.send("2probe")
                    assert await ws.receive() == "3probe"
                assert got == ["6"]  # the pending GET was released, as without a cluster
                await ws.send("5")
                # The held CONNECT is answered by the process the websocket reached.
                connect = await ws.receive()
                assert isinstance(connect, str) and connect.startswith('40{"sid":"')
                await ws.send('421["echo","direct"]')
                assert await ws.receive() == '431["direct"]'
                await held.wait_finished()  # ended there, its layer above never told
                assert held.close_reason == "handed over" and held.upper is None
                assert client.sid not in owner_server.engine.sessions
                moved, given = forwarding(other_server), forwarding(owner_server)
                assert (moved.sessions_adopted, moved.relays_open) == (1, 0)
                assert (given.sessions_handed_over, given.relays_open) == (1, 0)
                session = other_server.engine.sessions[client.sid]
                assert session.transport == "websocket" and session.upper is not None
                # It polls no more: a request for its sid is refused everywhere.
                for host in (owner, other):
                    response = await http.get(client.url(host))
                    assert response.status_code == 400, response.text
            await session.wait_finished()  # its client closed the websocket
        assert other_server.engine.sessions == {}


async def test_a_session_that_upgraded_late_is_still_relayed(anyio_backend: str) -> None:
    async with pair(upgrade_handover=0.05) as cluster, http_client() as http:
        (owner, other), (owner_server, other_server) = cluster.hosts, cluster.servers
        client = Hopping(http, [other])
        await client.handshake(owner)
        await client.post("40")
        with anyio.fail_after(10):
            (connect,) = await client.get()  # the hold ended: it opened on the owner
            assert connect.startswith("40{")
            async with RawWebSocket.connect(other, ws_target(client.sid)) as ws:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                await ws.send("5")
                await ws.send('421["echo","relayed"]')
                assert await ws.receive() == '431["relayed"]'
                edge, owned = forwarding(other_server), forwarding(owner_server)
                assert (edge.websockets_relayed, edge.relays_open, edge.sessions_adopted) == (
                    1,
                    1,
                    0,
                )
                assert (owned.relays_served, owned.sessions_handed_over) == (1, 0)
                assert owner_server.engine.sessions[client.sid].transport == "websocket"
                assert client.sid not in other_server.engine.sessions


async def test_a_held_session_opens_when_its_hold_ends(anyio_backend: str) -> None:
    """A client that never upgrades gets its CONNECT answered once the hold is over."""
    async with pair(**HOLD) as cluster, http_client() as http:
        owner, other = cluster.hosts
        client = Hopping(http, [owner, other])
        await client.handshake(owner)
        await client.post("40", '421["echo","kept in order"]')
        with anyio.fail_after(10):
            seen: list[str] = []
            while len(seen) < 2:
                seen.extend(await client.get())
        assert seen[0].startswith("40{") and seen[1] == '431["kept in order"]'
        assert not cluster.servers[0].engine.sessions[client.sid].machine.held


async def test_a_held_session_upgrading_on_its_owner_opens_there(anyio_backend: str) -> None:
    async with pair(**HOLD) as cluster, http_client() as http:
        owner, _ = cluster.hosts
        owner_server = cluster.servers[0]
        client = Hopping(http, [owner])
        await client.handshake(owner)
        await client.post("40")
        with anyio.fail_after(10):
            async with RawWebSocket.connect(owner, ws_target(client.sid)) as ws:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                await ws.send("5")
                connect = await ws.receive()
                assert isinstance(connect, str) and connect.startswith("40{")
                session = owner_server.engine.sessions[client.sid]
                assert session.transport == "websocket" and not session.machine.held
        given = forwarding(owner_server)
        assert (given.sessions_handed_over, given.relays_served) == (0, 0)


async def test_upgrades_racing_a_handover_leave_one_owner(anyio_backend: str) -> None:
    """A second websocket for the sid while the first upgrades, and others once
    it has moved: each is closed or refused; the session has one process."""
    async with pair(**HOLD) as cluster, http_client() as http:
        (owner, other), (owner_server, other_server) = cluster.hosts, cluster.servers
        client = Hopping(http, [other])
        await client.handshake(owner)
        await client.post("40")
        with anyio.fail_after(10):
            async with RawWebSocket.connect(other, ws_target(client.sid)) as ws:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                for host in (owner, other):  # while it upgrades: accepted and closed
                    async with RawWebSocket.connect(host, ws_target(client.sid)) as extra:
                        assert extra.status == 101
                        closed = await extra.receive()
                        assert getattr(closed, "code", None) == 1008
                await ws.send("5")
                assert str(await ws.receive()).startswith("40{")
                session = other_server.engine.sessions[client.sid]
                # Moved: the old owner no longer knows the sid; the new one
                # closes a second websocket for it, as for any session of its own.
                async with RawWebSocket.connect(owner, ws_target(client.sid)) as late:
                    assert late.status == 400
                    body: Any = orjson.loads(late.body)
                    assert body["code"] == 1
                async with RawWebSocket.connect(other, ws_target(client.sid)) as late:
                    closed = await late.receive()
                    assert getattr(closed, "code", None) == 1008
                await ws.send('421["echo","still here"]')
                assert await ws.receive() == '431["still here"]'
                assert client.sid not in owner_server.engine.sessions
                assert not session.closed


async def test_an_edge_whose_owner_says_nothing_after_the_upgrade_closes_the_websocket(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait for the owner's word after the ``5`` is bounded: then the
    client's websocket is closed (it reconnects), nothing is adopted."""
    import gosf._cluster.forward as forward_module
    import gosf._cluster.relay as relay_module

    async def silent(*args: Any) -> bool:
        await anyio.sleep_forever()
        return False  # pragma: no cover

    monkeypatch.setattr(forward_module, "hand_over", silent)
    monkeypatch.setattr(relay_module, "UPGRADE_TIMEOUT", 0.2)
    async with pair(**HOLD) as cluster, http_client() as http:
        (owner, other), other_server = cluster.hosts, cluster.servers[1]
        client = Hopping(http, [other])
        await client.handshake(owner)
        await client.post("40")
        with anyio.fail_after(10):
            async with RawWebSocket.connect(other, ws_target(client.sid)) as ws:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                await ws.send("5")
                closed = await ws.receive()
                assert getattr(closed, "code", None) == 1011
        assert forwarding(other_server).sessions_adopted == 0
        assert client.sid not in other_server.engine.sessions
