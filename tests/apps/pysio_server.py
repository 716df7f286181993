"""A python-socketio ASGI server for gosf's client interop tests.

python-socketio's server needs asyncio, so the tests serve it with uvicorn:
``start_server("uvicorn", "tests.apps.pysio_server:app")``. Its handlers
mirror ``tests/js/servers/server.cjs``.
"""

from __future__ import annotations

from typing import Any

import anyio
import socketio

# Short heartbeats: a client that does not answer pings is dropped within 1.5 s.
# (python-engineio announces int(ping_interval) * 1000 ms: whole seconds only.)
sio = socketio.AsyncServer(async_mode="asgi", ping_interval=1, ping_timeout=0.5)
app = socketio.ASGIApp(sio)

disconnects: dict[str, str] = {}  # sid -> reason
reason_recorded: dict[str, anyio.Event] = {}  # sid -> set once its reason is in disconnects


def refuse_bad_token(auth: dict[str, Any] | None) -> None:
    if (auth or {}).get("token") == "bad":
        raise socketio.exceptions.ConnectionRefusedError("not authorized", {"reason": "bad token"})


async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
    refuse_bad_token(auth)
    await sio.save_session(sid, {"auth": auth or {}})


async def disconnect(sid: str, reason: str) -> None:
    disconnects[sid] = reason
    reason_recorded.setdefault(sid, anyio.Event()).set()


async def echo(sid: str, *args: Any) -> tuple[Any, ...]:
    return args


async def echo_event(sid: str, *args: Any) -> None:
    await sio.emit("echo-event", args, to=sid)


async def whoami(sid: str) -> dict[str, Any]:
    session = await sio.get_session(sid)
    return {"sid": sid, "namespace": "/", "auth": session["auth"]}


async def call_me(sid: str, event: str, *args: Any) -> Any:
    """Server → client ack: asks the client ``event(*args)`` and acks with its answer."""
    try:
        return await sio.call(event, args, to=sid, timeout=5)
    except socketio.exceptions.TimeoutError:
        return "no answer"


async def sleep(sid: str, seconds: float) -> str:
    await anyio.sleep(seconds)
    return "slept"


async def disconnect_me(sid: str, delay: float = 0) -> None:
    await anyio.sleep(delay)
    await sio.disconnect(sid)


async def disconnect_reason(sid: str, of_sid: str) -> str | None:
    return disconnects.get(of_sid)


async def wait_disconnect_reason(sid: str, of_sid: str, seconds: float) -> str | None:
    """``of_sid``'s disconnect reason once it has one, or None after ``seconds``."""
    with anyio.move_on_after(seconds):
        await reason_recorded.setdefault(of_sid, anyio.Event()).wait()
    return disconnects.get(of_sid)


async def custom_connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
    refuse_bad_token(auth)


async def custom_echo(sid: str, *args: Any) -> tuple[Any, ...]:
    return ("custom", *args)


for _event, _handler in {
    "connect": connect,
    "disconnect": disconnect,
    "echo": echo,
    "echo-event": echo_event,
    "whoami": whoami,
    "call-me": call_me,
    "sleep": sleep,
    "disconnect-me": disconnect_me,
    "disconnect-reason": disconnect_reason,
    "wait-disconnect-reason": wait_disconnect_reason,
}.items():
    sio.on(_event, _handler)
sio.on("connect", custom_connect, namespace="/custom")
sio.on("echo", custom_echo, namespace="/custom")
