"""A running app takes SIGINT/SIGTERM first: it drains, then hands the signal on.

In process, under asyncio and trio: a handler the test installs plays the ASGI
server's. The real servers' command lines are in tests/interop/test_shutdown.py.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

import anyio
import pytest

import gosf
import gosf.testing

pytestmark = pytest.mark.anyio


class ServerHandler:
    """Stands for the server's SIGTERM handler, installed before the app runs."""

    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.called = anyio.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.order.append(signal.Signals(signum).name)
        self.called.set()


@pytest.fixture
def order() -> list[str]:
    return []


@pytest.fixture
def server_handler(order: list[str]) -> Iterator[ServerHandler]:
    handler = ServerHandler(order)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield handler
    finally:
        signal.signal(signal.SIGTERM, previous)


class DrainStarted(logging.Handler):
    """Sets ``started`` when gosf logs that a signal started the drain."""

    def __init__(self) -> None:
        super().__init__()
        self.started = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "draining" in record.getMessage():
            self.started.set()


async def test_a_signal_drains_then_reaches_the_servers_handler(
    server_handler: ServerHandler, order: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gosf")
    app = gosf.App({"shutdown_grace": 5})
    running = anyio.Event()
    release = anyio.Event()

    @app.listen("slow")
    async def slow(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        running.set()
        await release.wait()
        order.append("answered")
        return gosf.Message.success("finished")

    watcher = DrainStarted()
    logging.getLogger("gosf").addHandler(watcher)
    sigint_before = signal.getsignal(signal.SIGINT)
    try:
        with anyio.fail_after(10):
            async with gosf.testing.serve(app) as server, server.client() as client:
                assert signal.getsignal(signal.SIGTERM) is not server_handler  # gosf's now
                replies: list[Any] = []
                async with anyio.create_task_group() as tg:

                    async def in_flight() -> None:
                        replies.append(await client.request("slow"))

                    tg.start_soon(in_flight)
                    await running.wait()
                    signal.raise_signal(signal.SIGTERM)
                    await watcher.started.wait()
                    assert order == []  # the server has not heard of it yet
                    release.set()
                await server_handler.called.wait()
                assert replies == [gosf.Message.success("finished")]
                # the answer went out, then the server's handler got the signal
                assert order == ["answered", "SIGTERM"]
                assert not app.server.engine.accepting  # drained: new clients are refused
    finally:
        logging.getLogger("gosf").removeHandler(watcher)
    # the handlers the app replaced are back
    assert signal.getsignal(signal.SIGTERM) is server_handler
    assert signal.getsignal(signal.SIGINT) is sigint_before


async def test_handlers_are_put_back_when_no_signal_came(server_handler: ServerHandler) -> None:
    sigint_before = signal.getsignal(signal.SIGINT)
    async with gosf.testing.serve(gosf.App()):
        assert signal.getsignal(signal.SIGTERM) is not server_handler
    assert not server_handler.called.is_set()
    assert signal.getsignal(signal.SIGTERM) is server_handler
    assert signal.getsignal(signal.SIGINT) is sigint_before


async def test_drain_on_signal_off_leaves_the_signals_alone(server_handler: ServerHandler) -> None:
    sigint_before = signal.getsignal(signal.SIGINT)
    async with gosf.testing.serve(gosf.App({"drain_on_signal": False})):
        assert signal.getsignal(signal.SIGTERM) is server_handler
        assert signal.getsignal(signal.SIGINT) is sigint_before
