"""The official Socket.IO Admin UI (npm ``@socket.io/admin-ui`` 0.5.1, served by
gosf at ``/admin-ui/``) in a real headless Chromium, against
``tests/apps/admin_app.py`` with two gosf clients connected, in one process and
in two workers joined by a real redis-server: a wrong password is
refused, the right one logs in, a reload stays logged in, the clients and their rooms show, and one
disconnected from the UI is gone. Nothing is loaded from outside loopback: the
page works offline. The screenshots of the socket list and the servers go to a
temporary folder; ``GOSF_DOCS_SCREENSHOTS=1`` puts the two workers' in
docs/images for docs/admin.md.

Needs Debian's ``chromium`` at /usr/bin/chromium (``scripts/install-test-deps``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

import gosf
from tests.cluster_workers import two_workers
from tests.conftest import Served, serving
from tests.e2e.browser import CHROMIUM, DESKTOP, chromium
from tests.redis_fixtures import running_redis

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


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio only


@dataclass
class Setup:
    """Where the page is served and the UI connects, and where each client goes."""

    ui: Served
    red: Served
    blue: Served
    join: str  # how a client joins a room: the server's handler, or the GOSF endpoint
    servers: int


@pytest.fixture(scope="module", params=["one-server", "two-workers"])
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    """A SocketIOServer with ``gosf.admin.instrument`` in one process, or a GOSF app
    with its ``admin`` key in two workers on a real redis-server (the red client
    on the other worker than the UI's)."""
    if request.param == "one-server":
        with serving("hypercorn-asyncio", "tests.apps.admin_app:asgi") as served:
            yield Setup(served, served, served, "join", 1)
    else:
        with (
            running_redis() as redis,
            two_workers(redis.url, "tests.apps.admin_app:app") as (first, second),
        ):
            yield Setup(first, second, first, "gosf", 2)


@asynccontextmanager
async def client_in(served: Served, room: str, join: str) -> AsyncIterator[gosf.SocketIOClient]:
    """A gosf client connected over a websocket, in ``room``."""
    client = gosf.SocketIOClient()
    async with client.connect(served.url):
        if join == "gosf":
            await client.call("join", {"text": room}, timeout=5)
        else:
            await client.call("join", room, timeout=5)
        yield client


async def log_in(page: Page, served: Served, password: str) -> None:
    await page.get_by_label("Server URL").fill(served.url)
    await page.get_by_label("Username").fill("admin")
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Connect").click()


async def test_the_admin_ui(setup: Setup, tmp_path: Path) -> None:
    admin_server = setup.ui
    outside: list[str] = []

    async def loopback_only(route: Route) -> None:
        if route.request.url.startswith(admin_server.url):  # the page and its connection
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    with anyio.fail_after(TEST_DEADLINE):
        async with AsyncExitStack() as stack:
            red = await stack.enter_async_context(client_in(setup.red, "red", setup.join))
            await stack.enter_async_context(client_in(setup.blue, "blue", setup.join))
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
            # The two clients on "/" (the namespace the page shows first), of every process.
            await expect(rows).to_have_count(2)
            sids = sorted(await rows.locator("td:first-child").all_inner_texts())
            await page.goto(f"{admin_server.url}/admin-ui/#/rooms/")
            for room in ("red", "blue"):
                await expect(page.get_by_role("cell", name=room, exact=True)).to_be_visible()

            # The docs' screenshots are those of the cluster.
            to_docs = os.environ.get("GOSF_DOCS_SCREENSHOTS") == "1" and setup.servers == 2
            shots = DOCS_IMAGES if to_docs else tmp_path
            await page.goto(f"{admin_server.url}/admin-ui/#/servers/")
            await expect(rows).to_have_count(setup.servers)
            await page.screenshot(path=str(shots / "admin-ui-servers.png"))

            await page.goto(f"{admin_server.url}/admin-ui/#/sockets/")
            await expect(rows).to_have_count(2)
            await page.screenshot(path=str(shots / "admin-ui-sockets.png"))
            red_sid = red.sid()
            assert red_sid in sids
            await rows.filter(has_text=red_sid).locator("button").click()
            # The click reaches the row too, which opens the socket's page (as
            # it does for a user): back to the list.
            await page.goto(f"{admin_server.url}/admin-ui/#/sockets/")
            await expect(rows).to_have_count(1)
            await expect(rows.filter(has_text=red_sid)).to_have_count(0)

    assert outside == [], "the page loaded something from outside loopback"
    assert errors == []
