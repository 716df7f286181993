"""The broadcast benchmark's bare ASGI app (the floor its instruction counts
compare gosf with) does the broadcast's work: driven in process through
plain ASGI calls, a ``blast`` reaches every other client once, as the frame
gosf sends, and is acked. Under asyncio and trio."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest

from benchmarks.broadcast_servers import bare_app

pytestmark = pytest.mark.anyio


class Client:
    """One websocket ASGI call of the app: what it sent, and a way to talk to it."""

    def __init__(self) -> None:
        self.to_app, self.app_in = anyio.create_memory_object_stream[dict[str, Any]](16)
        self.sent: list[str] = []
        self.got_frame = anyio.Event()

    async def receive(self) -> dict[str, Any]:
        return await self.app_in.receive()

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "websocket.send":
            self.sent.append(message["text"])
            self.got_frame.set()
            self.got_frame = anyio.Event()

    async def say(self, text: str) -> None:
        await self.to_app.send({"type": "websocket.receive", "text": text})

    async def wait_for(self, count: int) -> None:
        while len(self.sent) < count:
            await self.got_frame.wait()


async def test_a_blast_reaches_every_other_client_once() -> None:
    app = bare_app()
    clients = [Client() for _ in range(3)]

    async def serve(client: Client) -> None:
        await app({"type": "websocket"}, client.receive, client.send)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for client in clients:
                await client.to_app.send({"type": "websocket.connect"})
                tg.start_soon(serve, client)
                await client.say("40")
                await client.wait_for(2)  # the OPEN packet, the CONNECT answer
                assert client.sent[0].startswith("0{") and client.sent[1].startswith("40{")
            sender, *receivers = clients
            await sender.say('427["blast",3]')
            await sender.wait_for(3)
            for receiver in receivers:
                await receiver.wait_for(3)
            for client in clients:
                await client.to_app.send({"type": "websocket.disconnect", "code": 1000})
    assert sender.sent[2:] == ["437[3]"]
    for receiver in receivers:
        assert receiver.sent[2:] == ['42["news",3,{"text":"hello"}]']
