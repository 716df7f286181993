"""The chat's screenshots in docs/images: ``python -m tests.e2e.screenshots [OUT_DIR]``
with the test dependencies installed (``.nox/tests/bin/python`` once ``./scripts/test`` ran).

Serves ``examples.chat.app:app`` on a free loopback port, plays a short
conversation between three tabs of a headless Chromium at phone and desktop
width, and saves what the first tab shows as ``chat-phone.png`` and
``chat-desktop.png``. The browser tests run it too (into a temporary folder),
so it keeps working as the page changes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio
from playwright.async_api import expect

from tests.conftest import ROOT, Served, serving
from tests.e2e.browser import VIEWPORTS, Viewport, chromium, join, log, open_chat, say, whisper

DOCS_IMAGES = ROOT / "docs" / "images"
ROOMS = {"phone": "lobby", "desktop": "release"}
DEADLINE = 60.0
"""Seconds one viewport's scene may take."""


async def shoot(server: Served, viewport: Viewport, out_dir: Path, profile: Path) -> Path:
    """Play the scene at ``viewport`` and save ``chat-<viewport>.png`` in ``out_dir``.

    Raises:
        RuntimeError: the page logged a script error.
        TimeoutError: the scene did not finish within ``DEADLINE``.
    """
    errors: list[str] = []
    path = out_dir / f"chat-{viewport.name}.png"
    room = ROOMS[viewport.name]  # one room each: the first scene's tabs may still be leaving
    with anyio.fail_after(DEADLINE):
        async with chromium(profile, viewport) as context:
            ada = await open_chat(context, server, errors)
            bob = await open_chat(context, server, errors)
            cat = await open_chat(context, server, errors)
            await join(ada, "ada", room)
            await join(bob, "bob", room)
            await join(cat, "cat", room)
            await say(bob, "Morning! Is the release branch green?")
            await say(ada, "Green under asyncio and trio, both servers.")
            await say(cat, "Nice. I'll tag it after lunch.")
            await whisper(cat, "ada", "Coffee first?")
            await expect(log(ada, "whisper")).to_have_count(1)
            await whisper(ada, "dan", "Are you around?")
            await expect(ada.locator("#log li[data-kind=error]")).to_have_count(1)
            await ada.fill("#whisper-to", "cat")
            await ada.fill("#whisper-text", "Yes please")
            await ada.bring_to_front()
            await ada.screenshot(path=path, animations="disabled", caret="hide")
    if errors:
        raise RuntimeError(f"the chat page logged errors: {errors}")
    return path


async def shoot_all(server: Served, out_dir: Path, profiles: Path) -> list[Path]:
    """Every viewport's screenshot, one after the other."""
    await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
    return [
        await shoot(server, viewport, out_dir, profiles / viewport.name) for viewport in VIEWPORTS
    ]


def main(argv: list[str]) -> None:
    """Serve the chat and write its screenshots to ``argv[0]`` (docs/images)."""
    out_dir = Path(argv[0]) if argv else DOCS_IMAGES
    with serving("hypercorn-trio", "examples.chat.app:app") as server:
        with tempfile.TemporaryDirectory() as profiles:
            paths = anyio.run(shoot_all, server, out_dir, Path(profiles))
    for path in paths:
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
