"""examples/chat in a real headless Chromium, driven by Playwright, over loopback.

Needs Debian's ``chromium`` at /usr/bin/chromium (``scripts/install-test-deps``
installs it); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from examples.chat.app import CLIENT_JS
from tests.conftest import Served

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
"""Every Playwright wait gives up after this long."""
TEST_DEADLINE = 60.0
"""And a whole test after this long."""

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

from playwright.async_api import (  # noqa: E402 - only once the browser is known to exist
    BrowserContext,
    Locator,
    Page,
    async_playwright,
    expect,
)

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

_ids = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio only


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[BrowserContext]:
    """A headless Chromium with a fresh profile, closed on the way out."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=TIMEOUT_MS,
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            with anyio.move_on_after(TIMEOUT_MS / 1000, shield=True):
                await context.close()


def log(page: Page, kind: str) -> Locator:
    """The lines of one kind in the page's chat log."""
    return page.locator(f"#log li[data-kind={kind}]")


async def open_chat(context: BrowserContext, server: Served, errors: list[str]) -> Page:
    """A new tab on the chat page, connected; its script errors go to ``errors``."""
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"{message.text} ({message.location.get('url')})")
            if message.type == "error"
            else None
        ),
    )
    await page.goto(f"{server.url}/")
    await expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    return page


# The user's actions. Each first brings its tab to the front, as a user would:
# a background tab gets no animation frames, and Playwright's actionability
# checks wait for those (about a second lost per action otherwise).


async def join(page: Page, name: str, room: str) -> None:
    await page.bring_to_front()
    await page.fill("#name", name)
    await page.fill("#room", room)
    await page.click("#join")
    await expect(page.locator("#chat")).to_be_visible()
    await expect(page.locator("#me")).to_have_text(name)


async def say(page: Page, text: str) -> None:
    await page.bring_to_front()
    await page.fill("#text", text)
    await page.click("#say")


async def whisper(page: Page, to: str, text: str) -> None:
    await page.bring_to_front()
    await page.fill("#whisper-to", to)
    await page.fill("#whisper-text", text)
    await page.click("#whisper")


async def test_a_message_reaches_the_other_tab(chat_server: Served, tmp_path: Path) -> None:
    room, alice, bob = f"room{next(_ids)}", "alice", "bob"
    errors: list[str] = []
    with anyio.fail_after(TEST_DEADLINE):
        async with chromium(tmp_path / "profile") as context:
            a = await open_chat(context, chat_server, errors)
            b = await open_chat(context, chat_server, errors)
            await join(a, alice, room)
            await join(b, bob, room)
            await expect(log(a, "joined")).to_have_text([f"{bob} joined"])
            await expect(b.locator("#members")).to_have_text(f"{alice}, {bob}")

            await say(a, "hello from a real browser")
            await expect(log(b, "message")).to_have_text([f"{alice}: hello from a real browser"])
            await expect(log(a, "self")).to_have_text([f"{alice} (you): hello from a real browser"])
            await expect(a.locator("#text")).to_have_value("")
            # the sender gets its confirmation, never its own broadcast
            await expect(log(a, "message")).to_have_count(0)

            await b.close()
            await expect(log(a, "left")).to_have_text([f"{bob} left (disconnected)"])
            await expect(a.locator("#members")).to_have_text(alice)
    assert errors == []


async def test_a_whisper_reaches_only_its_target(chat_server: Served, tmp_path: Path) -> None:
    room = f"room{next(_ids)}"
    errors: list[str] = []
    with anyio.fail_after(TEST_DEADLINE):
        async with chromium(tmp_path / "profile") as context:
            a = await open_chat(context, chat_server, errors)
            b = await open_chat(context, chat_server, errors)
            c = await open_chat(context, chat_server, errors)
            await join(a, "ann", room)
            await join(b, "ben", room)
            await join(c, "cat", room)

            await whisper(a, "ben", "just between us")
            await expect(log(b, "whisper")).to_have_text(["ann whispers: just between us"])
            await expect(log(a, "self")).to_have_text(["you whisper to ben: just between us"])
            # A message to the room after the whisper: once cat has it, cat would
            # have had a misdirected whisper too (one connection delivers in order).
            await say(b, "thanks")
            await expect(log(c, "message")).to_have_text(["ben: thanks"])
            await expect(log(c, "whisper")).to_have_count(0)
            await expect(log(a, "whisper")).to_have_count(0)

            await whisper(a, "nobody", "hello?")
            await expect(log(a, "error")).to_have_text(["whisper not sent: USER_NOT_FOUND"])
    assert errors == []
