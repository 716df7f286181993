"""The broker seam: broadcasts reach the clients of other servers, once, under asyncio and trio.

Two apps in one process share a MemoryBus (the same seam a RedisBroker plugs
into), each served by its own hypercorn on its own port; clients connect to
one or the other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import pytest

import gosf
from gosf.brokers import MemoryBus
from tests.harness import serve_app
from tests.sioclient import SioClient

pytestmark = pytest.mark.anyio


def cluster_app(bus: MemoryBus) -> gosf.App:
    app = gosf.App(broker=bus.broker())

    @app.listen("join")
    async def join(client: gosf.Client, request: gosf.Request) -> None:
        client.join(request.message.text)

    @app.listen("say")
    async def say(client: gosf.Client, request: gosf.Request) -> None:
        await client.broadcast("room", "said", gosf.Message.success(request.message.text))

    @app.listen("announce")
    async def announce(client: gosf.Client, request: gosf.Request) -> None:
        await app.broadcast("", "news", gosf.Message.success(request.message.text))

    @app.listen("tell-room")
    async def tell_room(client: gosf.Client, request: gosf.Request) -> None:
        await app.broadcast("room", "room-news", gosf.Message.success(request.message.text))

    return app


@asynccontextmanager
async def two_apps() -> AsyncIterator[tuple[tuple[gosf.App, str], tuple[gosf.App, str]]]:
    bus = MemoryBus()
    app1, app2 = cluster_app(bus), cluster_app(bus)
    async with serve_app(app1) as first, serve_app(app2) as second:
        yield (app1, first), (app2, second)


@asynccontextmanager
async def two_servers() -> AsyncIterator[tuple[str, str]]:
    async with two_apps() as ((_, first), (_, second)):
        yield first, second


async def settle(*clients: SioClient) -> None:
    """A round trip on each client: what was sent before has arrived."""
    for client in clients:
        await client.call("join", {"text": "sync"})


async def test_broadcasts_cross_servers_exactly_once(anyio_backend: str) -> None:
    async with two_servers() as (first, second), AsyncExitStack() as stack:
        a1 = await stack.enter_async_context(SioClient.connect(first))
        a2 = await stack.enter_async_context(SioClient.connect(first))
        b1 = await stack.enter_async_context(SioClient.connect(second))
        outsider = await stack.enter_async_context(SioClient.connect(second))
        for client in (a1, a2, b1):
            await client.call("join", {"text": "room"})

        await a1.call("tell-room", {"text": "to the room"})
        for client in (a1, a2, b1):
            assert await client.next_event("room-news") == [
                {"success": True, "text": "to the room"}
            ]

        await b1.call("announce", {"text": "to all"})
        for client in (a1, a2, b1, outsider):
            assert await client.next_event("news") == [{"success": True, "text": "to all"}]

        await b1.call("say", {"text": "from b1"})
        for client in (a1, a2):
            assert await client.next_event("said") == [{"success": True, "text": "from b1"}]

        with anyio.fail_after(5):
            await settle(a1, a2, b1, outsider)
        # exactly once, the sender skipped, the outsider out of the room
        for client in (a1, a2, b1, outsider):
            assert client.events("room-news") == []
            assert client.events("news") == []
            assert client.events("said") == []
        assert outsider.events("room-news") == [] and b1.events("said") == []


async def test_cluster_queries_see_and_act_on_both_servers(anyio_backend: str) -> None:
    async with two_apps() as ((app1, first), (app2, second)), AsyncExitStack() as stack:
        a1 = await stack.enter_async_context(SioClient.connect(first))
        a2 = await stack.enter_async_context(SioClient.connect(first))
        b1 = await stack.enter_async_context(SioClient.connect(second))
        await a1.call("join", {"text": "red"})
        await b1.call("join", {"text": "red"})
        await a2.call("join", {"text": "blue"})

        for app in (app1, app2):
            assert await app.cluster_rooms() == {"red": 2, "blue": 1}
            assert await app.cluster_client_count() == 3
        assert {client.sid for client in app1.members()} == {a1.sid, a2.sid}  # local only

        # join / leave a client of the other server
        assert await app1.join_client(b1.sid, "room") is True
        assert b1.sid in app2.clients and "room" in app2.clients[b1.sid].rooms
        await a1.call("tell-room", {"text": "joined remotely"})
        assert await b1.next_event("room-news") == [{"success": True, "text": "joined remotely"}]
        assert (await app2.cluster_rooms())["room"] == 1
        assert await app1.leave_client(b1.sid, "room") is True
        assert "room" not in await app1.cluster_rooms()
        await a1.call("tell-room", {"text": "left remotely"})
        # a local one too
        assert await app2.join_client(a2.sid, "green") is True
        assert (await app1.cluster_rooms())["green"] == 1

        # unknown sids: no process has them
        assert await app1.disconnect_client("nobody") is False
        assert await app1.join_client("nobody", "red") is False
        assert await app2.leave_client("nobody", "red") is False
        with pytest.raises(ValueError):
            await app1.join_client(b1.sid, "")
        with pytest.raises(ValueError):
            await app1.cluster_rooms(timeout=0)

        # disconnect a client of the other server, then one of this server
        assert await app1.disconnect_client(b1.sid) is True
        with anyio.fail_after(5):
            await b1.disconnected.wait()
        assert b1.disconnect_reason == "io server disconnect"
        assert await app2.disconnect_client(a2.sid) is True
        with anyio.fail_after(5):
            await a2.disconnected.wait()
            for _ in range(500):  # a2's socket closes in its own task
                if await app2.cluster_client_count() == 1:
                    break
                await anyio.sleep(0.01)
        assert await app2.cluster_client_count() == 1
        assert await app2.cluster_rooms() == {"red": 1}
        with anyio.fail_after(5):
            await settle(a1)
        assert b1.events("room-news") == []  # the broadcast after the leave did not reach it


async def test_cluster_queries_of_a_single_process(anyio_backend: str) -> None:
    app = cluster_app(MemoryBus())
    lone = gosf.App()  # LocalBroker: this process only
    lone.listen("join", app.endpoints["join"])
    async with serve_app(lone) as host, SioClient.connect(host) as client:
        await client.call("join", {"text": "red"})
        assert await lone.cluster_rooms() == {"red": 1}
        assert await lone.cluster_client_count() == 1
        assert await lone.leave_client(client.sid, "red") is True
        assert await lone.cluster_rooms() == {}
        assert await lone.join_client("nobody", "red") is False
