"""The AsyncAPI docs page of the chat example in a real headless Chromium: it
renders every operation from the document it embeds, asks for nothing but
itself (it works offline), and logs no script error.

Needs Debian's ``chromium`` at /usr/bin/chromium (``scripts/install-test-deps``
installs it); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Served
from tests.e2e.asyncapi_page import visit
from tests.e2e.browser import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(
        "chromium is not installed: run ./scripts/test as root or apt-get install chromium",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Playwright's async API runs on asyncio only


async def test_the_docs_page_renders_offline(chat_server: Served, tmp_path: Path) -> None:
    from examples.chat.app import app

    seen = await visit(chat_server, tmp_path, tmp_path / "profile")
    assert seen.errors == []
    assert seen.requests == [chat_server.url + "/asyncapi"]  # nothing else: no CDN, no fetch
    assert seen.rendered == len(app.asyncapi()["operations"]) == 8
    assert seen.screenshot is not None and seen.screenshot.stat().st_size > 10_000
