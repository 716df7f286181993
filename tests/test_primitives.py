"""A server chooses its backend's events and wake-ups once, when it starts
(``EngineServer.serve``), and its sessions and sockets use what it chose:
no backend is sniffed per event. In memory, under both backends."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import anyio.to_thread
import pytest

import gosf
from gosf._backend import current_backend
from gosf._engineio.event import Primitives, Wakeup, choose_primitives
from gosf.testing import asgi_connector

pytestmark = pytest.mark.anyio

CALLS = 5


def echo_server() -> gosf.SocketIOServer:
    server = gosf.SocketIOServer()

    @server.on("echo")
    async def echo(socket: gosf.Socket, n: int) -> int:
        return n

    return server


@asynccontextmanager
async def client(server: gosf.SocketIOServer) -> AsyncIterator[gosf.SocketIOClient]:
    sio = gosf.SocketIOClient()
    connector = asgi_connector(server)
    async with sio.connect("http://testserver", path="/socket.io", connector=connector):
        yield sio


async def echo_calls(sio: gosf.SocketIOClient) -> None:
    for n in range(CALLS):
        assert await sio.call("echo", n, timeout=5) == n


async def test_the_backend_is_asked_once_per_serve(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes: list[str | None] = []

    def counted() -> Literal["asyncio", "trio"] | None:
        backend = current_backend()
        probes.append(backend)
        return backend

    monkeypatch.setattr("gosf._engineio.event.current_backend", counted)
    server = echo_server()
    for serve in (1, 2):
        async with server:
            assert server.engine.primitives.backend == anyio_backend
            async with client(server) as sio:
                await echo_calls(sio)
        assert probes == [anyio_backend] * serve


async def test_hand_overs_use_the_servers_primitives(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Wakeup] = []
    woken: list[Wakeup] = []

    def recording() -> Primitives[Wakeup]:
        chosen = choose_primitives()

        def wakeup() -> Wakeup:
            made.append(chosen.wakeup())
            return made[-1]

        def wake(w: Wakeup) -> None:
            woken.append(w)
            chosen.wake(w)

        return dataclasses.replace(chosen, wakeup=wakeup, wake=wake)

    monkeypatch.setattr("gosf._engineio.server.choose_primitives", recording)
    server = echo_server()
    async with server, client(server) as sio:
        await echo_calls(sio)
    # Each handler's worker waits for the next event on a wake-up, which that event sets.
    assert len(woken) >= CALLS - 1
    assert set(map(id, woken)) <= set(map(id, made))


async def test_an_asyncio_and_a_trio_server_share_a_process(anyio_backend: str) -> None:
    """Nothing global: a server of the other backend, in a thread meanwhile,
    chooses its own primitives and serves its clients while this one does."""
    other = "trio" if anyio_backend == "asyncio" else "asyncio"

    async def serve_other() -> str:
        with anyio.fail_after(10):
            there = echo_server()
            async with there, client(there) as sio:
                await echo_calls(sio)
                return there.engine.primitives.backend

    here = echo_server()
    async with here, client(here) as sio, anyio.create_task_group() as tg:
        tg.start_soon(echo_calls, sio)
        backend = await anyio.to_thread.run_sync(lambda: anyio.run(serve_other, backend=other))
        await echo_calls(sio)
        assert (here.engine.primitives.backend, backend) == (anyio_backend, other)
