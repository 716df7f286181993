"""Server-side events between the servers of a cluster (Node's ``serverSideEmit``
and ``serverSideEmitWithAck``), on a MemoryBus in memory, under both backends.
Across real processes on Redis: tests/interop/test_cluster.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest

import gosf
from gosf.brokers import MemoryBus

pytestmark = pytest.mark.anyio

WAIT = 5


@asynccontextmanager
async def cluster(count: int) -> AsyncIterator[list[gosf.SocketIOServer]]:
    bus = MemoryBus()
    async with AsyncExitStack() as stack:
        servers = [gosf.SocketIOServer(broker=bus.broker()) for _ in range(count)]
        for server in servers:
            await stack.enter_async_context(server)
        yield servers


def node_of(server: gosf.SocketIOServer) -> str:
    return server.broker.node_id


async def test_an_event_reaches_every_other_server() -> None:
    heard: list[tuple[str, tuple[Any, ...]]] = []
    both = anyio.Event()
    async with cluster(3) as servers:
        for server in servers:

            def record(server: gosf.SocketIOServer = server) -> Any:
                async def on_hello(*args: Any) -> None:
                    heard.append((node_of(server), args))
                    if len(heard) == 2:
                        both.set()

                return on_hello

            server.on_server_side("hello")(record())

        sender = servers[0]
        assert await sender.server_side_emit("hello", 1, {"a": [2]}) == 2
        with anyio.fail_after(WAIT):
            await both.wait()
    # The sender does not hear its own event.
    assert sorted(heard) == sorted((node_of(s), (1, {"a": [2]})) for s in servers[1:])


async def test_processes_without_a_handler_do_not_count() -> None:
    async with cluster(3) as (sender, with_handler, _without):
        took = anyio.Event()

        @with_handler.on_server_side("hello", namespace="/chat")
        async def on_hello() -> None:
            took.set()

        assert await sender.server_side_emit("hello", namespace="/chat") == 1
        assert await sender.server_side_emit("hello") == 0  # another namespace
        with anyio.fail_after(WAIT):
            await took.wait()


async def test_acks_gather_every_answer_by_node() -> None:
    async with cluster(3) as servers:
        for server in servers:

            def answer(node: str) -> Any:
                async def on_ping(n: int) -> dict[str, Any]:
                    return {"node": node, "n": n + 1}

                return on_ping

            server.on_server_side("ping")(answer(node_of(server)))

        with anyio.fail_after(WAIT):
            acks = await servers[0].server_side_emit_with_ack("ping", 41, timeout=WAIT)
    assert acks == gosf.ServerSideAcks(
        {node_of(s): {"node": node_of(s), "n": 42} for s in servers[1:]}, missing=0
    )


async def test_a_server_that_does_not_answer_in_time_is_reported_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "gosf")
    never = anyio.Event()  # never set: the slow handler overruns the timeout
    async with cluster(4) as (sender, quick, slow, failing):

        @quick.on_server_side("ping")
        async def on_ping_quick() -> str:
            return "pong"

        @slow.on_server_side("ping")
        async def on_ping_slow() -> str:
            await never.wait()
            return "late"

        @failing.on_server_side("ping")
        async def on_ping_failing() -> str:
            raise RuntimeError("boom")

        with anyio.fail_after(WAIT):
            acks = await sender.server_side_emit_with_ack("ping", timeout=0.5)
    assert acks.answers == {node_of(quick): "pong"}
    assert acks.missing == 2
    assert "server-side event handler of 'ping' failed" in caplog.text


async def test_a_lone_server_gets_no_answers() -> None:
    async with cluster(1) as (server,):

        @server.on_server_side("ping")
        async def on_ping() -> str:
            raise AssertionError("a server does not hear its own events")

        assert await server.server_side_emit_with_ack("ping", timeout=0.1) == gosf.ServerSideAcks(
            {}, 0
        )
        assert await server.server_side_emit("ping") == 0


async def test_registration_and_timeouts_are_checked() -> None:
    server = gosf.SocketIOServer()

    @server.on_server_side("ping")
    async def on_ping() -> None:
        pass

    with pytest.raises(ValueError, match="already has a handler"):
        server.on_server_side("ping")(on_ping)
    with pytest.raises(TypeError, match="async function"):
        server.on_server_side("sync")(lambda: None)
    async with server:
        with pytest.raises(ValueError, match="timeout"):
            await server.server_side_emit_with_ack("ping", timeout=0)
