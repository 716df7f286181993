"""The GOSF echo and chat examples, driven by gosf.testing: no socket, both backends."""

from __future__ import annotations

import pytest

import gosf
import gosf.testing
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
