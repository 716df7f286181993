"""The Redis broker's Streams mode against a real redis-server, under asyncio and trio.

Two brokers stand for two processes; the second reaches Redis through a
pipe the test can cut (every connection closed, new ones closed at once)
and mend, as a process briefly cut off from Redis while the other goes on
broadcasting. In Streams mode it then reads what it missed; on pub/sub it
has lost it (the same scenario, for contrast).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import coredis
import pytest
from anyio.abc import SocketStream

from gosf.brokers import Broadcast
from tests import redis_fixtures
from tests.redis_fixtures import RedisServer
from tests.test_redis_broker import WAIT, channel, connected, make_broker, running

pytestmark = pytest.mark.anyio

redis_server = redis_fixtures.redis_server


class Cuttable:
    """A TCP pipe to a backend on loopback, which the test cuts and mends."""

    def __init__(self, backend_port: int) -> None:
        self.backend_port = backend_port
        self.port = 0
        self.open = True
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self) -> None:
        """Close every connection through the pipe, and each new one at once."""
        self.open = False
        for scope in self._scopes:
            scope.cancel()

    def mend(self) -> None:
        self.open = True

    async def _serve(self, client: SocketStream) -> None:
        async with client:
            if not self.open:
                return
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    upstream = await anyio.connect_tcp("127.0.0.1", self.backend_port)
                    async with upstream, anyio.create_task_group() as tg:
                        tg.start_soon(_pipe, client, upstream)
                        await _pipe(upstream, client)
                        tg.cancel_scope.cancel()
                finally:
                    self._scopes.discard(scope)


async def _pipe(source: SocketStream, sink: SocketStream) -> None:
    try:
        async for chunk in source:
            await sink.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass


@asynccontextmanager
async def cuttable(backend_port: int) -> AsyncIterator[Cuttable]:
    pipe = Cuttable(backend_port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    pipe.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, pipe._serve)
        yield pipe
        tg.cancel_scope.cancel()


def text(n: int) -> Broadcast:
    return Broadcast("/", (f'2["news",{n}]',))


@pytest.mark.parametrize("streams", [True, False], ids=["streams", "pubsub"])
async def test_a_process_cut_off_for_a_while_misses_nothing_in_streams_mode(
    redis_server: RedisServer, streams: bool
) -> None:
    chan = channel()
    async with cuttable(redis_server.port) as pipe:
        sender = make_broker(redis_server.url, chan, streams=streams)
        cut_off = make_broker(pipe.url, chan, streams=streams)
        async with running(sender, cut_off) as (_, inbox):
            await connected(sender, cut_off)
            await sender.publish(text(0))
            await inbox.wait_for(1)
            pipe.cut()
            await connected(cut_off, state=False)
            for n in range(1, 21):
                await sender.publish(text(n))
            pipe.mend()
            await connected(cut_off)
            await sender.publish(text(21))
            await inbox.until(lambda: any(b.parts == text(21).parts for b in inbox.received))
            got = [int(str(b.parts[0])[9:-1]) for b in inbox.received]
    if streams:
        assert got == list(range(22))  # in order, once each
    else:
        assert got == [0, 21]  # pub/sub kept nothing for it


async def test_the_stream_is_bounded(redis_server: RedisServer) -> None:
    chan = channel()
    sender = make_broker(redis_server.url, chan, streams=True, stream_maxlen=100)
    async with running(sender):
        await connected(sender)
        for n in range(300):
            await sender.publish(text(n))
    client: coredis.Redis[bytes] = coredis.Redis.from_url(redis_server.url)
    async with client:
        with anyio.fail_after(WAIT):
            length = await client.xlen(f"{chan}:stream")
    assert 100 <= length < 300  # trimmed, roughly to its bound (MAXLEN ~)
