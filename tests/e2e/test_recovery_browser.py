"""Connection state recovery in a real headless Chromium (issue 15): the stock
socket.io v4 browser client, served offline by ``tests/apps/recovery_page.py``,
against gosf under hypercorn's asyncio and trio workers, over websocket and
long-polling.

The page joins a room and stores state; then its network drops
(Playwright's ``set_offline``: Chromium closes the websocket, or fails the
pending poll, and refuses to reconnect). While it is away gosf's own client
broadcasts five events to the room; the network comes back and the page
reconnects on its own. It must say ``recovered``, keep its id, and get the
five events it missed, in order, exactly once, then the next one live.

Needs Debian's ``chromium`` at /usr/bin/chromium (``scripts/install-test-deps``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import gosf
from tests.apps.browser_app import CLIENTS
from tests.conftest import Served, serving
from tests.e2e.browser import CHROMIUM, chromium

if not CHROMIUM.exists() or not CLIENTS["/v4.js"].is_file():
    pytest.skip(
        "chromium or tests/js/node_modules missing: run ./scripts/test (as root for chromium)",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

TEST_DEADLINE = 60.0
"""Seconds a whole test may take."""
MISSED = 5
"""Events broadcast while the page is offline."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio only


@pytest.fixture(scope="module", params=["hypercorn-asyncio", "hypercorn-trio"])
def recovery_server(request: pytest.FixtureRequest) -> Iterator[Served]:
    with serving(str(request.param), "tests.apps.recovery_page:asgi") as server:
        yield server


# The page's socket.io calls, with the ack's one argument as the result.
CALL = "([event, ...args]) => socket.timeout(5000).emitWithAck(event, ...args)"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_the_browser_client_recovers_after_its_network_drops(
    recovery_server: Served, transport: str, tmp_path: Path
) -> None:
    with anyio.fail_after(TEST_DEADLINE):
        async with chromium(tmp_path / "profile") as context:
            page = await context.new_page()
            await page.goto(f"{recovery_server.url}/recovery.html?transports={transport}")
            await page.wait_for_function("seen.length === 1")
            assert await page.evaluate(CALL, ["join", "room"]) is None
            assert await page.evaluate(CALL, ["remember", "kept"]) is None
            first: dict[str, Any] = (await page.evaluate("seen"))[0]

            sender = gosf.SocketIOClient()
            async with sender.connect(recovery_server.url):
                await sender.call("shout", "room", 0, timeout=5)
                await page.wait_for_function("news.length === 1")

                await context.set_offline(True)
                await page.wait_for_function("seen.length === 2")  # the page saw it drop
                for n in range(1, MISSED + 1):
                    # Acked once queued for every member: the page's socket is parked.
                    await sender.call("shout", "room", n, timeout=5)
                assert await page.evaluate("seen.length") == 2  # still away
                await context.set_offline(False)
                await page.wait_for_function("seen.length === 3")  # back on its own

                await sender.call("shout", "room", MISSED + 1, timeout=5)
                # A round trip on the page's socket after the broadcast's ack: the
                # live event has been written out to it before the reply.
                recall = await page.evaluate(CALL, ["recall"])
                seen: list[dict[str, Any]] = await page.evaluate("seen")
                news: list[list[Any]] = await page.evaluate("news")

    assert first["recovered"] is False
    assert "disconnect" in seen[1]
    assert seen[2] == {"connect": first["connect"], "recovered": True}
    # Each event once, in order, each with its offset (the client strips none).
    assert news == [[n, "string"] for n in range(MISSED + 2)]
    # Rooms and state came back; the connect handler did not run again.
    assert recall == {"value": "kept", "connects": 1, "recovered": True, "rooms": ["room"]}
