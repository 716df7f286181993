"""examples/chat in a real headless Chromium, driven by Playwright, over loopback,
at a phone's width (390x844) and a desktop's (1280x800).

Needs Debian's ``chromium`` at /usr/bin/chromium (``scripts/install-test-deps``
installs it); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from playwright.async_api import Page, expect

from examples.chat.app import CLIENT_JS
from tests.conftest import Served, start_server, stop_server
from tests.e2e.browser import (
    CHROMIUM,
    VIEWPORTS,
    Viewport,
    chromium,
    join,
    log,
    open_chat,
    say,
    senders,
    whisper,
)
from tests.e2e.screenshots import shoot_all

TEST_DEADLINE = 60.0
"""Seconds a whole test may take."""
RECONNECT_MS = 15_000
"""How long a page may take to find a restarted server: the page's longest delay
between two tries (four seconds) and the time to connect, with room to spare."""

if not CHROMIUM.exists():
    pytest.skip(
        "chromium is not installed: run ./scripts/test as root or apt-get install chromium",
        allow_module_level=True,
    )
if not CLIENT_JS.is_file():
    pytest.skip(
        f"{CLIENT_JS} is missing: run scripts/install-test-deps (npm ci --prefix examples/chat)",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

_ids = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio only


@pytest.fixture(params=VIEWPORTS, ids=str)
def viewport(request: pytest.FixtureRequest) -> Viewport:
    """Each test that takes it runs at a phone's width and at a desktop's."""
    size: Viewport = request.param
    return size


def unique(prefix: str) -> str:
    """A name no other test uses (the server is shared by the module)."""
    return f"{prefix}{next(_ids)}"


# Everything a user must be able to see and reach, wherever it is on the page.
FITS = """() => {
    const width = document.documentElement.clientWidth;
    const outside = [];
    for (const element of document.querySelectorAll("button, input, #status, h1, h2, #log")) {
        const box = element.getBoundingClientRect();
        if (box.width === 0 && box.height === 0) continue;  // not shown
        if (box.left < 0 || box.right > width + 0.5) {
            outside.push(`${element.id || element.tagName}: ${box.left}..${box.right} of ${width}`);
        }
    }
    const scrolled = document.documentElement.scrollWidth;
    if (scrolled > width) outside.push(`the page scrolls sideways: ${scrolled} > ${width}`);
    return outside;
}"""


async def assert_fits(page: Page) -> None:
    """Every control and heading of ``page`` is within the window's width."""
    outside: list[Any] = await page.evaluate(FITS)
    assert outside == [], outside


async def test_the_page_fits_the_window(
    chat_server: Served, viewport: Viewport, tmp_path: Path
) -> None:
    errors: list[str] = []
    with anyio.fail_after(TEST_DEADLINE):
        async with chromium(tmp_path / "profile", viewport) as context:
            page = await open_chat(context, chat_server, errors)
            await assert_fits(page)
            await join(page, unique("someone_with_a_long_name"), unique("a-room-with-a-long-name"))
            await say(page, "a-long-word-with-no-spaces-" * 4)
            await expect(log(page, "self")).to_have_count(1)
            await assert_fits(page)
            for button in ("#say", "#whisper", "#leave"):
                await expect(page.locator(button)).to_be_in_viewport()
    assert errors == []


async def test_a_message_reaches_the_other_tab(
    chat_server: Served, viewport: Viewport, tmp_path: Path
) -> None:
    room, alice, bob = unique("room"), "alice", "bob"
    errors: list[str] = []
    with anyio.fail_after(TEST_DEADLINE):
        async with chromium(tmp_path / "profile", viewport) as context:
            a = await open_chat(context, chat_server, errors)
            b = await open_chat(context, chat_server, errors)
            await join(a, alice, room)
            await join(b, bob, room)
            await expect(log(a, "joined")).to_have_text([f"{bob} joined"])
            await expect(b.locator("#members li")).to_have_text([alice, bob])

            await say(a, "hello from a real browser")
            await expect(log(b, "message")).to_have_text(["hello from a real browser"])
            await expect(senders(b, "message")).to_have_text([alice])
            await expect(log(a, "self")).to_have_text(["hello from a real browser"])
            # the sender gets its confirmation, never its own broadcast
            await expect(log(a, "message")).to_have_count(0)

            await b.close()
            await expect(log(a, "left")).to_have_text([f"{bob} went offline"])
            await expect(a.locator("#members li")).to_have_text([alice])
    assert errors == []


async def test_a_whisper_reaches_only_its_target(
    chat_server: Served, viewport: Viewport, tmp_path: Path
) -> None:
    room = unique("room")
    errors: list[str] = []
    with anyio.fail_after(TEST_DEADLINE):
        async with chromium(tmp_path / "profile", viewport) as context:
            a = await open_chat(context, chat_server, errors)
            b = await open_chat(context, chat_server, errors)
            c = await open_chat(context, chat_server, errors)
            await join(a, "ann", room)
            await join(b, "ben", room)
            await join(c, "cat", room)

            await whisper(a, "ben", "just between us")
            await expect(log(b, "whisper")).to_have_text(["just between us"])
            await expect(senders(b, "whisper")).to_have_text(["ann whispers"])
            await expect(log(a, "self")).to_have_text(["just between us"])
            await expect(senders(a, "self")).to_have_text(["whisper to ben"])
            # A message to the room after the whisper: once cat has it, cat would
            # have had a misdirected whisper too (one connection delivers in order).
            await say(b, "thanks")
            await expect(log(c, "message")).to_have_text(["thanks"])
            await expect(log(c, "whisper")).to_have_count(0)
            await expect(log(a, "whisper")).to_have_count(0)
    assert errors == []


async def test_errors_are_explained_not_coded(
    chat_server: Served, viewport: Viewport, tmp_path: Path
) -> None:
    errors: list[str] = []
    with anyio.fail_after(TEST_DEADLINE):
        async with chromium(tmp_path / "profile", viewport) as context:
            page = await open_chat(context, chat_server, errors)
            await join(page, "ann", unique("room"))
            await whisper(page, "nobody", "hello?")
            error = page.locator("#log li[data-kind=error]")
            await expect(error).to_have_text(
                ["Whisper not sent: nobody called nobody is here right now."]
            )
            await expect(error).to_have_attribute("data-code", "USER_NOT_FOUND")
            await expect(page.locator("#whisper-text")).to_have_value("hello?")  # kept to retry

            # the server's own check, which the page's input pattern usually spares it
            await page.locator("#whisper-to").evaluate("box => box.value = 'two words'")
            await page.click("#whisper")
            await expect(error.nth(1)).to_have_text("Whisper not sent: that is not a valid name.")
            await expect(error.nth(1)).to_have_attribute("data-code", "TO_INVALID")
    assert errors == []


class RestartableServer:
    """The chat under hypercorn's trio worker, which a test can stop and start again
    on the same port: what a deploy or a crash looks like to the browser."""

    KIND = "hypercorn-trio"
    TARGET = "examples.chat.app:app"

    def __init__(self) -> None:
        self.served = start_server(self.KIND, self.TARGET)

    async def stop(self) -> None:
        """SIGTERM, as a deploy sends it: gosf drains and disconnects every client."""
        await anyio.to_thread.run_sync(stop_server, self.served.process)

    async def start(self) -> None:
        """A fresh process on the same port, knowing nothing of the old one's rooms."""
        port = self.served.port
        self.served = await anyio.to_thread.run_sync(
            lambda: start_server(self.KIND, self.TARGET, port=port)
        )


@pytest.fixture
def restartable() -> Iterator[RestartableServer]:
    server = RestartableServer()
    try:
        yield server
    finally:
        stop_server(server.served.process)


async def test_a_server_restart_rejoins_the_room(
    restartable: RestartableServer, viewport: Viewport, tmp_path: Path
) -> None:
    room = unique("room")
    errors: list[str] = []
    with anyio.fail_after(TEST_DEADLINE):
        async with chromium(tmp_path / "profile", viewport) as context:
            a = await open_chat(context, restartable.served, errors)
            b = await open_chat(context, restartable.served, errors)
            await join(a, "ann", room)
            await join(b, "ben", room)

            await restartable.stop()
            for page in (a, b):
                status = page.locator("#status")
                await expect(status).to_have_attribute("data-state", "reconnecting")
                await expect(status).to_have_text("Reconnecting…")
                lost = "Connection lost: reconnecting…"
                await expect(log(page, "system").last).to_have_text(lost)
                await expect(page.locator("#say")).to_be_disabled()
                # still in the room, as far as the user is concerned
                await expect(page.locator("#chat")).to_be_visible()
            await b.fill("#text", "typed while the server was away")

            await restartable.start()
            for page, name in ((a, "ann"), (b, "ben")):
                # socket.io's next try may be a whole reconnection delay away
                status = page.locator("#status")
                await expect(status).to_have_attribute(
                    "data-state", "connected", timeout=RECONNECT_MS
                )
                await expect(page.locator("#status")).to_have_text("Connected")
                await expect(log(page, "system").last).to_have_text(
                    f"Reconnected: back in {room} as {name}."
                )
                await expect(page.locator("#members li")).to_have_text(["ann", "ben"])
                await expect(page.locator("#say")).to_be_enabled()
            # what ben typed survived, and the new server delivers it to the room
            await expect(b.locator("#text")).to_have_value("typed while the server was away")
            await b.bring_to_front()
            await b.click("#say")
            await expect(log(a, "message")).to_have_text(["typed while the server was away"])
            await say(a, "welcome back")
            await expect(log(b, "message")).to_have_text(["welcome back"])
    # The browser itself logs each refused try as a console error: that is the
    # test's doing, not the page's.
    refused = ("net::ERR_CONNECTION_REFUSED", "WebSocket connection to")
    assert [error for error in errors if not any(word in error for word in refused)] == []


def png_size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, from its header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_the_docs_screenshots_can_be_taken(chat_server: Served, tmp_path: Path) -> None:
    paths = await shoot_all(chat_server, tmp_path / "images", tmp_path / "profiles")
    assert {path.name: png_size(path) for path in paths} == {
        f"chat-{viewport.name}.png": (viewport.width, viewport.height) for viewport in VIEWPORTS
    }
