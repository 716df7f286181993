"""A session's tasks (``SessionDriver.start_soon``): its task group is opened
only while it has tasks, and the session owns them all the same (its end
cancels them and waits for them)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import gosf
from gosf._engineio.driver import SessionDriver
from gosf.protocol.session import CloseReason
from tests.harness import Closed, watch_attribute
from tests.test_engine_takeover import engine, polling_session, polling_task
from tests.test_engineio_server import echo_works, make_server, running, socketio_ws

pytestmark = pytest.mark.anyio


async def test_an_idle_websocket_client_holds_no_task_group(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connect starts short-lived tasks (the connect deadline, maybe a
    # writer): once they end, the session holds no group. A handler opens
    # one; when the heartbeat has ended its idle worker, the group goes too.
    held = watch_attribute(monkeypatch, SessionDriver, "_tasks")
    server = make_server(ping_interval=0.2, ping_timeout=1)
    release = anyio.Event()

    @server.on("wait")
    async def wait(socket: gosf.Socket) -> str:
        await release.wait()
        return "released"

    async with running(server) as (_, host, _):
        async with socketio_ws(host) as ws:
            (session,) = server.engine.sessions.values()
            with anyio.fail_after(5):
                await held.until(lambda: session._tasks is None)
                assert session.reading is not None  # the reading's own cancel scope
                await ws.send('421["wait"]')
                await held.until(lambda: session._tasks is not None)  # the handler's worker
                release.set()
                reply = await ws.receive()
                while reply == "2":
                    await ws.send("3")
                    reply = await ws.receive()
                assert reply == '431["released"]'
                await held.until(lambda: session._tasks is None)  # the beat ended the worker
                await echo_works(ws)  # the next event opens a group again


async def test_closing_a_websocket_session_cancels_its_handler_and_the_session_ends(
    anyio_backend: str,
) -> None:
    server = make_server()
    started, cancelled, disconnected = anyio.Event(), anyio.Event(), anyio.Event()
    order: list[str] = []

    @server.on("forever")
    async def forever(socket: gosf.Socket) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            order.append("handler cancelled")
            cancelled.set()

    @server.on_disconnect
    async def gone(socket: gosf.Socket, reason: str) -> None:
        order.append(f"disconnect: {reason}")
        disconnected.set()

    async with running(server) as (_, host, _):
        async with socketio_ws(host) as ws:
            (session,) = server.engine.sessions.values()
            with anyio.fail_after(5):
                await ws.send('42["forever"]')
                await started.wait()
                session.close(CloseReason.SERVER_DISCONNECT)
                await cancelled.wait()
                await session.wait_finished()
                await disconnected.wait()
                assert order == ["handler cancelled", "disconnect: server disconnect"]
                closing = await ws.receive()
                while closing != Closed(1000):
                    closing = await ws.receive()  # the DISCONNECT and CLOSE packets first
                assert not server.engine.sessions
                with pytest.raises(RuntimeError):
                    session.start_soon(anyio.sleep_forever)  # its tasks are over


async def test_the_end_of_a_session_waits_for_its_tasks_and_refuses_new_ones(
    anyio_backend: str,
) -> None:
    # In memory: a task that takes a while to end (it shields its cleanup)
    # holds the session's end, and the layer above is told after it.
    with anyio.fail_after(5):
        async with engine() as (server, handler), anyio.create_task_group() as tg:
            session = polling_session(server)
            await tg.start(polling_task, session)
            cleaned = anyio.Event()
            release = anyio.Event()

            async def task() -> None:
                try:
                    await anyio.sleep_forever()
                finally:
                    with anyio.CancelScope(shield=True):
                        await release.wait()
                        cleaned.set()

            session.start_soon(task)
            await anyio.wait_all_tasks_blocked()
            session.close(CloseReason.CLIENT_CLOSE, discard=True)
            await anyio.wait_all_tasks_blocked()
            assert handler.closed == []  # still waiting for the task
            with pytest.raises(RuntimeError):
                session.start_soon(anyio.sleep_forever)
            release.set()
            await session.wait_finished()
            assert cleaned.is_set()
            assert handler.closed == ["client closed"]


async def test_a_task_started_after_the_group_closed_opens_another(
    anyio_backend: str,
) -> None:
    # The group closes with its last task; the next task opens a new one.
    with anyio.fail_after(5):
        async with engine() as (server, _), anyio.create_task_group() as tg:
            session = polling_session(server)
            await tg.start(polling_task, session)
            ran = anyio.Event()

            async def second() -> None:
                ran.set()

            async def first() -> None:
                await anyio.lowlevel.checkpoint()

            session.start_soon(first)
            await anyio.wait_all_tasks_blocked()
            assert session._tasks is None  # the group has closed
            session.start_soon(second)
            await ran.wait()
            session.close(CloseReason.CLIENT_CLOSE, discard=True)
            await session.wait_finished()


async def test_a_failing_task_ends_its_session_not_the_server(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A session's tasks run in a task of the server's task group: one that
    # raises (a bug, not a handler's error, which the layer above catches)
    # ends its own session, is logged, and the server serves the others.
    server = make_server()
    failed = anyio.Event()
    broken: list[SessionDriver] = []

    @server.on("break")
    async def break_session(socket: gosf.Socket) -> None:
        async def bug() -> None:
            failed.set()
            raise RuntimeError("a bug in a session task")

        broken.append(socket.session)
        socket.session.start_soon(bug)

    async with running(server) as (_, host, _):
        async with socketio_ws(host) as other, socketio_ws(host) as ws:
            with anyio.fail_after(5):
                await ws.send('42["break"]')
                await failed.wait()
                (session,) = broken
                await session.wait_finished()
                assert session.close_reason is CloseReason.SERVER_DISCONNECT
                closing = await ws.receive()
                while closing != Closed(1000):
                    closing = await ws.receive()  # DISCONNECT and CLOSE first
                await echo_works(other)
                assert len(server.engine.sessions) == 1
    assert "a bug in a session task" in caplog.text
