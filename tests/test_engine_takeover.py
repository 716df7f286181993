"""The hand-over of a polling-born session to its websocket (EngineSession.host
with take_over), at the Engine.IO level, in memory: the races a wire test
cannot time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import TaskStatus

from gosf._engineio.server import EngineServer
from gosf._engineio.session import EngineSession
from gosf._engineio.wswriter import WebSocketWriter
from gosf._options import ServerOptions
from gosf.protocol.engineio import Packet
from gosf.protocol.session import CloseReason

pytestmark = pytest.mark.anyio


class Handler:
    """The layer above, reduced to what the hand-over touches."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    async def on_open(self, session: EngineSession) -> None:
        pass

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        pass

    async def on_close(self, session: EngineSession, reason: str) -> None:
        self.closed.append(reason)

    def on_beat(self, session: EngineSession) -> None:
        pass

    def on_upgrade(self, session: EngineSession) -> None:
        pass


@asynccontextmanager
async def engine() -> AsyncIterator[tuple[EngineServer, Handler]]:
    handler = Handler()
    server = EngineServer(ServerOptions(), handler)
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        yield server, handler
        tg.cancel_scope.cancel()


def polling_session(server: EngineServer) -> EngineSession:
    return server.new_session(protocol=4, transport="polling", b64=False, scope={})


async def polling_task(
    session: EngineSession,
    ended: anyio.Event | None = None,
    *,
    task_status: TaskStatus[anyio.CancelScope],
) -> None:
    """The polling-born session's own task, in a scope the test can cancel;
    ``ended`` is set when it returns (whether it handed over or wound up).

    The session's task runs up to its first wait before ``start`` returns.
    """
    try:
        with anyio.CancelScope() as scope:
            task_status.started(scope)
            await session.run()
    finally:
        if ended is not None:
            ended.set()


def reading(session: EngineSession) -> Callable[[], Awaitable[None]]:
    """The websocket's reading, as the taking-over host's body: attached, it
    is cancelled when the session closes."""

    async def send_frame(packet: Packet) -> None:
        pass

    async def body() -> None:
        assert session.reading is not None
        writer = WebSocketWriter(session, send_frame, session.reading)
        session.attach_websocket(writer)
        await anyio.sleep_forever()

    return body


async def test_a_polling_task_cancelled_as_it_is_taken_over_still_hands_over(
    anyio_backend: str,
) -> None:
    # The polling task is cancelled in the very step the websocket takes the
    # session over (a server stopping mid-upgrade): it must hand over, not
    # wind the session up itself (that waited, shielded, for itself).
    with anyio.fail_after(5):
        async with engine() as (server, handler), anyio.create_task_group() as tg:
            session = polling_session(server)
            polling_ended = anyio.Event()
            polling = await tg.start(polling_task, session, polling_ended)

            async def websocket() -> None:
                polling.cancel()  # the polling task is told before it sees the take-over
                await session.host(reading(session), take_over=True)

            tg.start_soon(websocket)
            await polling_ended.wait()  # it handed over (winding up itself, it never ended)
            assert session.taken_over and not session.closed
            session.close(CloseReason.CLIENT_CLOSE)
            await session.wait_finished()
            assert handler.closed == ["client closed"]


async def test_tasks_started_while_polling_outlive_the_hand_over_and_end_with_the_session(
    anyio_backend: str,
) -> None:
    # The session's tasks are held in a group of their own, not in the task
    # hosting it: the polling task ends at the hand-over, they go on, and
    # closing the session cancels them; the session ends after them.
    with anyio.fail_after(5):
        async with engine() as (server, handler):
            session = polling_session(server)
            cancelled = anyio.Event()

            async def handler_task() -> None:
                try:
                    await anyio.sleep_forever()
                finally:
                    cancelled.set()

            async with anyio.create_task_group() as tg:
                polling_ended = anyio.Event()
                await tg.start(polling_task, session, polling_ended)
                session.start_soon(handler_task)  # started before the upgrade
                tg.start_soon(lambda: session.host(reading(session), take_over=True))
                await polling_ended.wait()  # the polling task has handed over
                assert not cancelled.is_set()  # its task outlives the hand-over
                session.close(CloseReason.CLIENT_CLOSE)
                await cancelled.wait()
            await session.wait_finished()
            assert handler.closed == ["client closed"]
