"""The examples, served the way the README says, answering a real client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import socketio

from tests.conftest import SERVERS, Served, serving

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


@pytest.fixture(scope="module", params=SERVERS)
def echo_server(request: pytest.FixtureRequest) -> Iterator[Served]:
    """examples/echo.py under `hypercorn examples.echo:asgi --worker-class ...` and uvicorn."""
    with serving(str(request.param), "examples.echo:asgi", cli=True) as server:
        yield server


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
async def test_echo_answers_with_ack_and_event(echo_server: Served, transports: list[str]) -> None:
    client = socketio.AsyncClient(reconnection=False)
    events: list[Any] = []
    got_event = anyio.Event()

    async def on_echo(data: Any) -> None:
        events.append(data)
        got_event.set()

    client.on("echo", on_echo)
    await client.connect(echo_server.url, transports=transports, wait_timeout=5)
    try:
        with anyio.fail_after(10):
            ack = await client.call("echo", {"text": "Hello world."}, timeout=5)
            await got_event.wait()
    finally:
        await client.disconnect()
    assert ack == {"success": True, "text": "Hello world."}
    assert events == [{"success": True, "text": "Hello world."}]
