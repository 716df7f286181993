"""A server with connection state recovery on, for the npm client's recovery proof
(tests/interop/test_recovery_npm.py, tests/js/recovery.cjs).

Served by ``tests/serve.py`` under hypercorn (asyncio or trio) or uvicorn.
"""

from __future__ import annotations

from typing import Any

import gosf

LIMIT = 2.0
"""``max_disconnection_duration``, short so that the test can outwait it."""

server = gosf.SocketIOServer(
    ping_interval=1.0,
    ping_timeout=2.0,
    recovery=gosf.Recovery(max_disconnection_duration=LIMIT),
)
asgi = server.asgi


@server.on_connect
async def connected(socket: gosf.Socket, auth: dict[str, Any]) -> None:
    socket.state["connects"] = socket.state.get("connects", 0) + 1


@server.on("join")
async def join(socket: gosf.Socket, room: str) -> None:
    socket.join(room)


@server.on("remember")
async def remember(socket: gosf.Socket, value: Any) -> None:
    socket.state["value"] = value


@server.on("recall")
async def recall(socket: gosf.Socket) -> dict[str, Any]:
    return {
        "value": socket.state.get("value"),
        "connects": socket.state.get("connects"),
        "recovered": socket.recovered,
        "rooms": sorted(room for room in socket.rooms if room != socket.sid),
    }


@server.on("shout")
async def shout(socket: gosf.Socket, room: str, n: int) -> None:
    """Broadcast ``news`` ``n`` to ``room``; the ack says it was queued for all."""
    await server.emit("news", n, to=room)
