"""A round-robin TCP load balancer on loopback, for tests of clusters without sticky sessions.

Each new connection goes to the next backend in turn; bytes are piped both
ways until either side closes. Nothing is parsed: an HTTP client that keeps a
connection alive keeps its backend, one that opens a connection per request
(``Connection: close``) lands on a different backend each time.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import SocketStream

__all__ = ("RoundRobin", "python_socketio_per_request", "round_robin")


@dataclass
class RoundRobin:
    """The running balancer: its address and how many connections each backend got."""

    host: str
    connections: dict[str, int] = field(default_factory=dict)


async def _pipe(source: SocketStream, sink: SocketStream) -> None:
    try:
        async for chunk in source:
            await sink.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    finally:
        try:
            await sink.send_eof()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass


@asynccontextmanager
async def round_robin(backends: list[str]) -> AsyncIterator[RoundRobin]:
    """Balance connections over ``backends`` (``host:port`` each); yields the balancer."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    balancer = RoundRobin(f"127.0.0.1:{port}", dict.fromkeys(backends, 0))
    turns = itertools.cycle(backends)

    async def serve(client: SocketStream) -> None:
        backend = next(turns)
        balancer.connections[backend] += 1
        address, backend_port = backend.rsplit(":", 1)
        async with client:
            try:
                upstream = await anyio.connect_tcp(address, int(backend_port))
            except OSError:
                return
            async with upstream, anyio.create_task_group() as tg:
                tg.start_soon(_pipe, client, upstream)
                await _pipe(upstream, client)
                tg.cancel_scope.cancel()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield balancer
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def python_socketio_per_request() -> AsyncIterator[Any]:
    """A python-socketio ``AsyncClient`` (no reconnection) that opens a new
    connection for every HTTP request, so a balancer spreads its requests.

    asyncio only (python-socketio's client); disconnected on the way out.
    """
    import aiohttp
    import socketio

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    client = socketio.AsyncClient(reconnection=False, http_session=session)
    try:
        yield client
    finally:
        await client.disconnect()
        await session.close()
