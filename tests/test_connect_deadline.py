"""The connect deadline (``connect_timeout``): a session that joins no
namespace in time is closed, by the heartbeat schedule rather than a task of
its own (``Connection.check_connect_due``, ``EngineSession.beat_by``)."""

from __future__ import annotations

import anyio
import pytest

import gosf
from gosf._engineio.driver import SessionDriver
from tests.harness import Closed, RawWebSocket
from tests.test_engineio_server import (
    echo_works,
    make_server,
    record_disconnects,
    running,
    socketio_ws,
)

pytestmark = pytest.mark.anyio

ENGINE_ONLY = "/socket.io/?EIO=4&transport=websocket"


async def until_closed(ws: RawWebSocket) -> list[object]:
    """Everything the server sends until it closes the websocket, answering pings."""
    frames: list[object] = []
    while True:
        frame = await ws.receive()
        if isinstance(frame, Closed):
            return frames
        if frame == "2":
            await ws.send("3")
        frames.append(frame)


async def test_a_session_that_joins_no_namespace_is_closed_at_its_deadline(
    anyio_backend: str,
) -> None:
    # The first ping is far off: the deadline brings its own beat.
    server = make_server(connect_timeout=0.3, ping_interval=30, ping_timeout=30)
    async with running(server) as (_, host, _):
        async with RawWebSocket.connect(host, ENGINE_ONLY) as ws:
            assert str(await ws.receive()).startswith("0{")
            (session,) = server.engine.sessions.values()
            with anyio.fail_after(5):
                assert await until_closed(ws) == ["1"]  # CLOSE
                await session.wait_finished()
            assert session.close_reason is gosf.CloseReason.CONNECT_TIMEOUT


async def test_the_deadline_outlasts_heartbeats_before_it(anyio_backend: str) -> None:
    # Pings come before the deadline and the client answers them: each beat
    # puts the deadline back on the schedule until it has passed.
    server = make_server(connect_timeout=0.8, ping_interval=0.1, ping_timeout=5)
    async with running(server) as (_, host, _):
        async with RawWebSocket.connect(host, ENGINE_ONLY) as ws:
            assert str(await ws.receive()).startswith("0{")
            (session,) = server.engine.sessions.values()
            with anyio.fail_after(5):
                opened = anyio.current_time()
                frames = await until_closed(ws)
                await session.wait_finished()
            assert anyio.current_time() - opened >= 0.8
            assert frames.count("2") >= 2 and frames[-1] == "1"
            assert session.close_reason is gosf.CloseReason.CONNECT_TIMEOUT


async def test_a_connected_client_outlives_the_deadline(anyio_backend: str) -> None:
    server = make_server(connect_timeout=0.2, ping_interval=0.1, ping_timeout=5)
    reasons, _ = record_disconnects(server)
    async with running(server) as (_, host, _):
        async with socketio_ws(host) as ws:
            (session,) = server.engine.sessions.values()
            with anyio.fail_after(5):
                # Pings past the deadline, answered: each beat checked it.
                for _ in range(4):
                    assert await ws.receive() == "2"
                    await ws.send("3")
                await echo_works(ws)
            assert not session.closed
            assert reasons == []


async def test_a_connect_starts_no_task(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deadline is kept by the heartbeat schedule: connecting a websocket
    # client (Engine.IO open, Socket.IO CONNECT) starts no task of the session's.
    started: list[object] = []
    original = SessionDriver.start_soon

    def counting(self: SessionDriver, func: object, *args: object) -> None:
        started.append(func)
        original(self, func, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(SessionDriver, "start_soon", counting)
    async with running(make_server()) as (server, host, _):
        async with socketio_ws(host) as ws:
            (session,) = server.engine.sessions.values()
            assert started == []
            assert session._tasks is None
            await echo_works(ws)  # the first event starts its handler's worker
            assert started != []
