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
async def two_servers() -> AsyncIterator[tuple[str, str]]:
    bus = MemoryBus()
    async with serve_app(cluster_app(bus)) as first, serve_app(cluster_app(bus)) as second:
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
