"""Driving the chat page in a real headless Chromium: shared by the browser tests and
by the script that takes the docs' screenshots (``tests/e2e/screenshots.py``).

Debian's ``chromium`` at /usr/bin/chromium is used (``scripts/install-test-deps``
installs it); Playwright's own browser downloads never are. Import Playwright
only once ``CHROMIUM`` is known to exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
from playwright.async_api import BrowserContext, Locator, Page, async_playwright, expect

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


@dataclass(frozen=True)
class Viewport:
    """A window size the chat must look right at."""

    name: str
    width: int
    height: int
    mobile: bool

    def __str__(self) -> str:
        return self.name


PHONE = Viewport("phone", 390, 844, mobile=True)
DESKTOP = Viewport("desktop", 1280, 800, mobile=False)
VIEWPORTS = (PHONE, DESKTOP)


@asynccontextmanager
async def chromium(profile: Path, viewport: Viewport = DESKTOP) -> AsyncIterator[BrowserContext]:
    """A headless Chromium with a fresh profile whose pages are ``viewport`` sized;
    closed on the way out."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=TIMEOUT_MS,
            viewport={"width": viewport.width, "height": viewport.height},
            device_scale_factor=1,
            is_mobile=viewport.mobile,
            has_touch=viewport.mobile,
            color_scheme="light",
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            with anyio.move_on_after(TIMEOUT_MS / 1000, shield=True):
                await context.close()


def log(page: Page, kind: str) -> Locator:
    """The text of the lines of one kind in the page's chat log."""
    return page.locator(f"#log li[data-kind={kind}] .text")


def senders(page: Page, kind: str) -> Locator:
    """Who each line of one kind in the chat log is from (or to)."""
    return page.locator(f"#log li[data-kind={kind}] .who")


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
    await expect(page.locator("#text")).to_have_value("")


async def whisper(page: Page, to: str, text: str) -> None:
    await page.bring_to_front()
    await page.fill("#whisper-to", to)
    await page.fill("#whisper-text", text)
    await page.click("#whisper")
