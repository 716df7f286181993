"""Fixtures of the chat example's end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Served, serving


@pytest.fixture(scope="module")
def chat_server() -> Iterator[Served]:
    """`hypercorn examples.chat.app:app --worker-class trio` on a free loopback port."""
    with serving("hypercorn-trio", "examples.chat.app:app") as server:
        yield server
