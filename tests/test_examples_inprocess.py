"""The GOSF echo and chat examples, driven by gosf.testing: no socket, both backends."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import examples.chat.app as chat_app_module
import gosf
import gosf.testing
from examples.chat.app import MAX_TEXT
from examples.chat.app import app as chat_app
from examples.echo import app as echo_app

pytestmark = pytest.mark.anyio


async def test_echo_example(anyio_backend: str) -> None:
    async with gosf.testing.connect(echo_app) as client:
        reply = await client.request("echo", {"text": "Hello world."})
        assert reply is not None and reply.to_wire() == {"success": True, "text": "Hello world."}
        assert await client.next_event("echo") == reply


async def test_chat_example(anyio_backend: str) -> None:
    async with gosf.testing.serve(chat_app) as server:
        async with server.client() as ada, server.client() as bob:
            joined = await ada.request("chat.join", {"body": {"name": "ada", "room": "lobby"}})
            assert joined is not None and joined.success
            await bob.request("chat.join", {"body": {"name": "bob", "room": "lobby"}})
            announced = await ada.next_event("chat.joined")
            assert announced.body == {"name": "bob", "room": "lobby"}

            said = await ada.request("chat.say", {"body": {"text": "hi bob"}})
            assert said is not None and said.body["text"] == "hi bob"
            heard = await bob.next_event("chat.message")
            assert heard.body == {"from": "ada", "room": "lobby", "text": "hi bob"}
            assert ada.events("chat.message") == []  # a client broadcast skips the sender

            empty = await ada.request("chat.say", {"body": {"text": ""}})
            assert empty == gosf.Message.failure("TEXT_REQUIRED")


CHAT_JS = Path(chat_app_module.__file__).parent / "static" / "chat.js"


def explained_codes() -> set[str]:
    """The failure codes the chat page turns into sentences (its ``ERRORS`` table)."""
    table = re.search(r"const ERRORS = \{\n(.*?)\n  \};", CHAT_JS.read_text(), re.S)
    assert table is not None, "chat.js has no ERRORS table"
    return set(re.findall(r"^\s+([A-Z_]+): ", table.group(1), re.M))


async def test_the_chat_page_explains_every_failure_the_chat_answers(anyio_backend: str) -> None:
    """A user reads a sentence, never a bare code: every failure the chat's endpoints
    (and gosf's request cycle) can answer has its explanation in chat.js."""
    bad_requests: list[tuple[str, Any]] = [
        ("chat.say", {"body": {"text": "hi"}}),  # before joining
        ("chat.whisper", {"body": {"to": "bob", "text": "hi"}}),
        ("chat.leave", {}),
        ("chat.join", {"body": {"room": "lobby"}}),
        ("chat.join", {"body": {"name": "two words", "room": "lobby"}}),
        ("chat.join", {"body": {"name": "ada"}}),
        ("chat.join", {"body": {"name": "ada", "room": "../etc"}}),
        ("chat.nothing", {}),  # no such endpoint
        ("chat.say", {"text": 42}),  # not a GOSF message
    ]
    joined_requests: list[tuple[str, Any]] = [
        ("chat.say", {"body": {"text": " "}}),
        ("chat.say", {"body": {"text": "x" * (MAX_TEXT + 1)}}),
        ("chat.whisper", {"body": {"text": "hi"}}),
        ("chat.whisper", {"body": {"to": "a b", "text": "hi"}}),
        ("chat.whisper", {"body": {"to": "nobody", "text": "hi"}}),
    ]
    codes: set[str] = set()
    async with gosf.testing.serve(chat_app) as server, server.client() as ada:
        for endpoint, payload in bad_requests:
            reply = await ada.request(endpoint, payload)
            assert reply is not None and not reply.success, (endpoint, payload)
            codes.add(str(reply.text))
        await ada.request("chat.join", {"body": {"name": "ada", "room": "lobby"}})
        for endpoint, payload in joined_requests:
            reply = await ada.request(endpoint, payload)
            assert reply is not None and not reply.success, (endpoint, payload)
            codes.add(str(reply.text))
    assert len(codes) == len(bad_requests) + len(joined_requests) - 2  # NOT_JOINED thrice
    assert codes - explained_codes() == set()
