"""python-socketio's client with more long requests in flight than the server's handler slots.

The case of the report, scaled down: 70 requests held by the server while
heartbeats come and go, with 64 handler slots. The client must stay
connected and get every answer. The server runs in the test's process
(hypercorn on loopback) so the test can hold its handlers; python-socketio
needs asyncio, so this test runs on that backend only. Websocket only: over
long-polling python-engineio's client refuses a response of more than 16
packets (``Payload.max_decode_packets``), which 70 answers at once make.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import socketio

import gosf
from tests.harness import HeartbeatChecks, serve_app

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

REQUESTS = 70
SLOTS = 64
PING = 0.3
"""pingInterval and pingTimeout, seconds: small, so several heartbeats pass quickly."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_more_long_requests_than_slots_all_answered_across_heartbeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks = HeartbeatChecks(monkeypatch)
    server = gosf.SocketIOServer(
        ping_interval=PING, ping_timeout=PING, max_concurrent_handlers=SLOTS
    )
    release = anyio.Event()
    started: list[int] = []
    slots_taken = anyio.Event()

    @server.on("slow")
    async def slow(socket: gosf.Socket, n: int) -> int:
        started.append(n)
        if len(started) == SLOTS:
            slots_taken.set()
        await release.wait()
        return n

    async with serve_app(server) as host:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(f"http://{host}", transports=["websocket"], wait_timeout=5)
        sid = client.get_sid()
        results: dict[int, Any] = {}

        async def call(n: int) -> None:
            results[n] = await client.call("slow", n, timeout=10)

        try:
            async with anyio.create_task_group() as tg:
                for n in range(REQUESTS):
                    tg.start_soon(call, n)
                with anyio.fail_after(5):
                    await slots_taken.wait()
                assert len(started) == SLOTS
                (session,) = server.engine.sessions.values()
                await checks.pass_(4, timeout=10)  # several heartbeats with every slot taken
                assert not session.closed
                release.set()
            assert results == {n: n for n in range(REQUESTS)}
            assert started == list(range(REQUESTS))
            assert client.connected and client.get_sid() == sid
        finally:
            await client.disconnect()


async def test_a_polling_client_gets_a_burst_larger_than_its_payload_limit() -> None:
    # python-engineio's client drops the connection on a GET response of more
    # than 16 packets; a burst of answers must reach it over several GETs.
    server = gosf.SocketIOServer()
    burst = 40

    @server.on("burst")
    async def send_burst(socket: gosf.Socket) -> None:
        for n in range(burst):
            await socket.emit("n", n)

    async with serve_app(server) as host:
        client = socketio.AsyncClient(reconnection=False)
        got: list[int] = []
        all_in = anyio.Event()

        async def on_n(n: int) -> None:
            got.append(n)
            if len(got) == burst:
                all_in.set()

        client.on("n", on_n)

        await client.connect(f"http://{host}", transports=["polling"], wait_timeout=5)
        try:
            with anyio.fail_after(10):
                await client.emit("burst")
                await all_in.wait()
            assert got == list(range(burst))
            assert client.connected
        finally:
            await client.disconnect()
