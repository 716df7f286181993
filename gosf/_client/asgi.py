"""A websocket to an ASGI app in memory: no socket, no server, same protocol.

:func:`asgi_connector` gives :class:`gosf.SocketIOClient` (and so
``gosf.testing`` and microservices in tests) a websocket whose other end is
``app(scope, receive, send)`` called directly. The app runs in a task group
owned by the ``async with`` block; messages travel through bounded memory
object streams, so a client that stops reading pushes back on the app as a
slow network would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._errors import ConnectionClosed, HandshakeError
from ..types import ASGIApp, ASGIMessage

__all__ = ("ASGIWebSocket", "asgi_connector")

BUFFER = 64
"""ASGI messages in flight each way before the sender waits."""

CLOSE_TIMEOUT = 5.0


class ASGIWebSocket:
    """The client end of an in-memory websocket to an ASGI app."""

    def __init__(
        self,
        to_app: MemoryObjectSendStream[ASGIMessage],
        from_app: MemoryObjectReceiveStream[ASGIMessage],
    ) -> None:
        self._to_app = to_app
        self._from_app = from_app
        self._closed: ConnectionClosed | None = None

    async def send(self, message: str | bytes) -> None:
        """Send a text or binary message to the app.

        Raises:
            ConnectionClosed: the app closed the websocket.
        """
        if self._closed is not None:
            raise self._closed
        key = "text" if isinstance(message, str) else "bytes"
        try:
            await self._to_app.send({"type": "websocket.receive", key: message})
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._closed = ConnectionClosed(1006, "app gone")
            raise self._closed from None

    async def receive(self) -> str | bytes:
        """The app's next message.

        Raises:
            ConnectionClosed: the app closed the websocket (or returned).
        """
        if self._closed is not None:
            raise self._closed
        try:
            message = await self._from_app.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            message = {"type": "websocket.close", "code": 1006}
        if message["type"] == "websocket.send":
            text = message.get("text")
            return text if text is not None else bytes(message.get("bytes") or b"")
        self._closed = ConnectionClosed(int(message.get("code", 1000)), message.get("reason") or "")
        raise self._closed

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Tell the app the client went away."""
        if self._closed is None:
            self._closed = ConnectionClosed(code, reason)
        try:
            self._to_app.send_nowait({"type": "websocket.disconnect", "code": code})
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass


def _scope(url: str, headers: Iterable[tuple[str, str]]) -> dict[str, Any]:
    parts = urlsplit(url)
    host = parts.netloc or "testserver"
    all_headers = [(b"host", host.encode())]
    all_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "scheme": "wss" if parts.scheme in ("wss", "https") else "ws",
        "http_version": "1.1",
        "path": unquote(parts.path) or "/",
        "raw_path": (parts.path or "/").encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": all_headers,
        "client": ("127.0.0.1", 50000),
        "server": (parts.hostname or "testserver", parts.port or 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
        "state": {},
    }


def asgi_connector(app: ASGIApp) -> Any:
    """A connector for :meth:`gosf.SocketIOClient.connect` that talks to ``app`` in memory.

    The app must already be running (its lifespan: ``async with app.run()``
    for a :class:`gosf.App`, or ``gosf.testing.serve``).
    """

    @asynccontextmanager
    async def connect(url: str, headers: Iterable[tuple[str, str]]) -> AsyncIterator[ASGIWebSocket]:
        to_app, app_receive = anyio.create_memory_object_stream[ASGIMessage](BUFFER)
        app_send, from_app = anyio.create_memory_object_stream[ASGIMessage](BUFFER)
        scope = _scope(url, headers)

        async def run_app() -> None:
            async with app_send, app_receive:
                await app(scope, app_receive.receive, app_send.send)

        refused: HandshakeError | None = None  # raised once the app's call is over
        async with anyio.create_task_group() as tg, to_app, from_app:
            tg.start_soon(run_app)
            await to_app.send({"type": "websocket.connect"})
            first = await from_app.receive()
            if first["type"] == "websocket.accept":
                ws = ASGIWebSocket(to_app, from_app)
                try:
                    yield ws
                finally:
                    await ws.aclose()
                    with anyio.move_on_after(CLOSE_TIMEOUT) as scope_:
                        async for _ in from_app:  # let the app finish its side
                            pass
                    if scope_.cancelled_caught:
                        tg.cancel_scope.cancel()
            elif first["type"] == "websocket.http.response.start":
                body = b""
                async for message in from_app:
                    body += message.get("body", b"")
                    if not message.get("more_body"):
                        break
                refused = HandshakeError(int(first["status"]), body)
            else:
                refused = HandshakeError(403, b"")
        if refused is not None:
            raise refused  # as itself, not in the task group's ExceptionGroup

    return connect
