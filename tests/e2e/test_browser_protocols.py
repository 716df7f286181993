"""The stock socket.io clients in a real Chromium: v4 (Engine.IO 4) and v2 (Engine.IO 3,
the client GOSF's docs use), over polling, websocket and the upgrade, with binary.

In a browser the v2 client polls with XHR2 and binary support, so this is
where Engine.IO 3's binary payload format (not the base64 one node clients
use) meets gosf.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from playwright.async_api import async_playwright

from tests.apps.browser_app import CLIENTS
from tests.conftest import Served, serving
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS

if not CHROMIUM.exists() or not all(path.is_file() for path in CLIENTS.values()):
    pytest.skip(
        "chromium or tests/js/node_modules missing: run ./scripts/test (as root for chromium)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio only


@pytest.fixture(scope="module")
def page_server() -> Iterator[Served]:
    with serving("hypercorn-trio", "tests.apps.browser_app:asgi") as server:
        yield server


async def test_stock_clients_in_a_browser(page_server: Served, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    with anyio.fail_after(90):
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
            )
            try:
                page = await context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                for client in ("v4", "v2"):
                    for transports in ("polling", "websocket", "polling,websocket"):
                        url = f"{page_server.url}/page.html?client={client}&transports={transports}"
                        await page.goto(url)
                        await page.wait_for_function("window.result !== null")
                        seen[f"{client} {transports}"] = await page.evaluate("window.result")
            finally:
                await context.close()
    for key, result in seen.items():
        client, transports = key.split()
        assert "error" not in result, (key, result)
        assert result["text"] == "héllo ✓", key
        assert result["blob"] == [0, 1, 2, 127, 128, 255], key
        assert result["transport"] == ("polling" if transports == "polling" else "websocket"), key
    # the v2 client polled with XHR2: Engine.IO 3's binary payloads, not base64
    assert seen["v2 polling"]["binary"] is True
    assert len(seen) == 6
