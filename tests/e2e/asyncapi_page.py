"""The AsyncAPI docs page in a headless Chromium: ``python -m tests.e2e.asyncapi_page [OUT_DIR]``
writes ``asyncapi-page.png`` (docs/images by default) with the test dependencies installed.

Serves ``examples.chat.app:app`` on a free loopback port and opens its docs
page (``/asyncapi``) with every request to another origin refused, so the
page is seen rendering offline, from what it embeds. The browser test runs
it too (into a temporary folder).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from playwright.async_api import Page, Route, expect

from tests.conftest import ROOT, Served, serving
from tests.e2e.browser import DESKTOP, chromium

DOCS_IMAGES = ROOT / "docs" / "images"
DEADLINE = 60.0
"""Seconds the scene may take."""


@dataclass
class Visit:
    """What the page did: what it asked for, what it refused to render."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rendered: int = 0
    screenshot: Path | None = None


async def visit(server: Served, out_dir: Path, profile: Path) -> Visit:
    """Open the docs page, wait until it rendered, save ``asyncapi-page.png`` in ``out_dir``.

    Raises:
        TimeoutError: the scene did not finish within ``DEADLINE``.
    """
    seen = Visit()
    path = out_dir / "asyncapi-page.png"
    with anyio.fail_after(DEADLINE):
        async with chromium(profile, DESKTOP) as context:

            async def only_the_app(route: Route) -> None:
                seen.requests.append(route.request.url)
                if route.request.url.startswith(server.url + "/"):
                    await route.continue_()
                else:
                    await route.abort()

            await context.route("**/*", only_the_app)
            page: Page = await context.new_page()
            page.on("pageerror", lambda error: seen.errors.append(str(error)))
            page.on(
                "console",
                lambda msg: seen.errors.append(msg.text) if msg.type == "error" else None,
            )
            await page.goto(server.url + "/asyncapi")
            await expect(page.locator("body[data-rendered]")).to_have_count(1)
            seen.rendered = int(await page.locator("body").get_attribute("data-rendered") or 0)
            await expect(page.locator("#op-chat\\.join")).to_be_visible()
            await page.screenshot(path=path, full_page=False, animations="disabled")
            seen.screenshot = path
    return seen


def main(argv: list[str]) -> None:
    """Serve the chat and write the docs page's screenshot to ``argv[0]`` (docs/images)."""
    out_dir = Path(argv[0]) if argv else DOCS_IMAGES
    out_dir.mkdir(parents=True, exist_ok=True)
    with serving("hypercorn-trio", "examples.chat.app:app") as server:
        with tempfile.TemporaryDirectory() as profile:
            seen = anyio.run(visit, server, out_dir, Path(profile))
    print(f"{seen.screenshot}: {seen.rendered} operations, requests {seen.requests}")


if __name__ == "__main__":
    main(sys.argv[1:])
