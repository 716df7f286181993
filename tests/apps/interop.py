"""The server every interop test talks to: one app exercising the protocol surface.

Served by ``tests/serve.py`` under hypercorn (asyncio or trio) or uvicorn.
"""

from __future__ import annotations

from typing import Any

import anyio

import gosf

server = gosf.SocketIOServer(ping_interval=1.0, ping_timeout=2.0, max_payload=100_000)
asgi = server.asgi


@server.on_connect
async def check_auth(socket: gosf.Socket, auth: dict[str, Any]) -> None:
    if auth.get("token") == "bad":
        raise gosf.ConnectionRefused("not authorized", {"reason": "bad token"})
    socket.state["auth"] = auth


@server.on("echo")
async def echo(socket: gosf.Socket, *args: Any) -> tuple[Any, ...]:
    """Acks with the arguments it got, unchanged (binary included)."""
    return args


@server.on("echo-event")
async def echo_event(socket: gosf.Socket, *args: Any) -> None:
    """Answers with an ``echo-event`` event carrying the same arguments."""
    await socket.emit("echo-event", *args)


@server.on("whoami")
async def whoami(socket: gosf.Socket) -> dict[str, Any]:
    return {
        "sid": socket.sid,
        "namespace": socket.namespace.name,
        "transport": socket.transport,
        "protocol": socket.protocol,
        "auth": dict(socket.state.get("auth", {})),
    }


@server.on("call-me")
async def call_me(socket: gosf.Socket, event: str, *args: Any) -> Any:
    """Server → client ack: asks the client ``event(*args)`` and acks with its answer."""
    return await socket.call(event, *args, timeout=5)


@server.on("join")
async def join(socket: gosf.Socket, room: str) -> list[str]:
    socket.join(room)
    return sorted(socket.rooms)


@server.on("to-room")
async def to_room(socket: gosf.Socket, room: str, *args: Any) -> int:
    return await server.emit("room-message", *args, to=room)


@server.on("sleep")
async def sleep(socket: gosf.Socket, seconds: float) -> str:
    await anyio.sleep(seconds)
    return "slept"


@server.on("disconnect-me")
async def disconnect_me(socket: gosf.Socket) -> None:
    socket.disconnect()


@server.on("echo", namespace="/custom")
async def custom_echo(socket: gosf.Socket, *args: Any) -> list[Any]:
    return ["custom", *args]
