"""The official Socket.IO Admin UI (npm ``@socket.io/admin-ui`` 0.5.1, served by
gosf at ``/admin-ui/``) in a real headless Chromium, against
``tests/apps/admin_app.py`` with two gosf clients connected: a wrong password is
refused, the right one logs in, a reload stays logged in, the clients and their rooms show, and one
disconnected from the UI is gone. Nothing is loaded from outside loopback: the
page works offline. The socket list's screenshot goes to a temporary folder;
``GOSF_DOCS_SCREENSHOTS=1`` puts it in docs/images for docs/admin.md.

Needs Debian's ``chromium`` at /usr/bin/chromium (``scripts/install-test-deps``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import pytest

import gosf
from tests.conftest import Served, serving
from tests.e2e.browser import CHROMIUM, DESKTOP, chromium

if not CHROMIUM.exists():
    pytest.skip(
        "chromium is not installed: run ./scripts/test as root or apt-get install chromium",
        allow_module_level=True,
    )

from playwright.async_api import Page, Route, expect

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

TEST_DEADLINE = 60.0
"""Seconds the whole test may take."""
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SCREENSHOT = "admin-ui-sockets.png"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio only


@pytest.fixture(scope="module")
def admin_server() -> Iterator[Served]:
    with serving("hypercorn-asyncio", "tests.apps.admin_app:asgi") as served:
        yield served


@asynccontextmanager
async def client_in(served: Served, room: str) -> AsyncIterator[gosf.SocketIOClient]:
    """A gosf client connected over a websocket, in ``room``."""
    client = gosf.SocketIOClient()
    async with client.connect(served.url):
        await client.call("join", room, timeout=5)
        yield client


async def log_in(page: Page, served: Served, password: str) -> None:
    await page.get_by_label("Server URL").fill(served.url)
    await page.get_by_label("Username").fill("admin")
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Connect").click()


async def test_the_admin_ui(admin_server: Served, tmp_path: Path) -> None:
    outside: list[str] = []

    async def loopback_only(route: Route) -> None:
        if route.request.url.startswith(admin_server.url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    with anyio.fail_after(TEST_DEADLINE):
        async with AsyncExitStack() as stack:
            red = await stack.enter_async_context(client_in(admin_server, "red"))
            await stack.enter_async_context(client_in(admin_server, "blue"))
            context = await stack.enter_async_context(chromium(tmp_path / "profile", DESKTOP))
            await context.route("**/*", loopback_only)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{admin_server.url}/admin-ui/")

            await log_in(page, admin_server, "wrong")
            await expect(page.get_by_text("invalid credentials")).to_be_visible()
            await log_in(page, admin_server, "secret")
            await expect(page.get_by_label("Server URL")).to_be_hidden()

            # A reload logs in again with the session id, not the password.
            await page.reload()
            await expect(page.get_by_text("connected", exact=True).first).to_be_visible()
            await expect(page.get_by_label("Server URL")).to_be_hidden()

            await page.goto(f"{admin_server.url}/admin-ui/#/sockets/")
            rows = page.locator("tbody tr")
            # The two clients on "/" (the namespace the page shows first).
            await expect(rows).to_have_count(2)
            sids = sorted(await rows.locator("td:first-child").all_inner_texts())
            await page.goto(f"{admin_server.url}/admin-ui/#/rooms/")
            for room in ("red", "blue"):
                await expect(page.get_by_role("cell", name=room, exact=True)).to_be_visible()

            await page.goto(f"{admin_server.url}/admin-ui/#/sockets/")
            await expect(rows).to_have_count(2)
            shots = DOCS_IMAGES if os.environ.get("GOSF_DOCS_SCREENSHOTS") == "1" else tmp_path
            await page.screenshot(path=str(shots / SCREENSHOT))
            red_sid = next(iter(await admin_sids(red)))
            assert red_sid in sids
            await rows.filter(has_text=red_sid).locator("button").click()
            # The click reaches the row too, which opens the socket's page (as
            # it does for a user): back to the list.
            await page.goto(f"{admin_server.url}/admin-ui/#/sockets/")
            await expect(rows).to_have_count(1)
            await expect(rows.filter(has_text=red_sid)).to_have_count(0)

    assert outside == [], "the page loaded something from outside loopback"
    assert errors == []


async def admin_sids(client: gosf.SocketIOClient) -> set[str]:
    """The sid of ``client``'s socket in "/", as the server knows it (its own room)."""
    rooms: list[str] = await client.call("join", "red", timeout=5)
    return {room for room in rooms if room != "red"}
