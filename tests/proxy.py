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
async def round_robin(
    backends: list[str], *, websockets_to: str | None = None
) -> AsyncIterator[RoundRobin]:
    """Balance connections over ``backends`` (``host:port`` each); yields the balancer.

    ``websockets_to``: send every websocket request (its request line says
    ``transport=websocket``) to this backend instead, the others in turn: an
    upgrade that surely lands away from a session made elsewhere.
    """
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    balancer = RoundRobin(f"127.0.0.1:{port}", dict.fromkeys(backends, 0))
    turns = itertools.cycle(backends)

    async def serve(client: SocketStream) -> None:
        first = b""
        async with client:
            if websockets_to is not None:
                with anyio.move_on_after(10):
                    try:
                        first = await client.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        return
            websocket = b"transport=websocket" in first.partition(b"\r\n")[0]
            backend = websockets_to if websocket and websockets_to else next(turns)
            balancer.connections[backend] = balancer.connections.get(backend, 0) + 1
            address, backend_port = backend.rsplit(":", 1)
            try:
                upstream = await anyio.connect_tcp(address, int(backend_port))
            except OSError:
                return
            if first:
                await upstream.send(first)
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
