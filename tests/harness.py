"""In-process servers and a raw websocket client, for tests under asyncio and trio.

``serve_app`` runs hypercorn inside the test's own event loop (its asyncio or
trio flavour, whichever the test runs on) on a free loopback port.
``RawWebSocket`` speaks bare websocket frames through wsproto over an anyio
TCP stream, so tests can send exactly the bytes they want.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import sniffio
from anyio.abc import SocketStream
from hypercorn.config import Config
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from tests.conftest import free_port

__all__ = ("Closed", "RawWebSocket", "eventually", "serve_app")


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Wait until ``predicate()`` holds, for state the test cannot get an event from.

    Raises:
        TimeoutError: it did not hold within ``timeout`` seconds.
    """
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - observing state owned by the server
            await anyio.sleep(0.01)


@asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with hypercorn on the running backend; yields ``host:port``."""
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 0.5
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        if sniffio.current_async_library() == "trio":
            from hypercorn.trio import serve as trio_serve

            tg.start_soon(partial(trio_serve, app, config, shutdown_trigger=stop.wait))
        else:
            from hypercorn.asyncio import serve as asyncio_serve

            async def run_asyncio() -> None:
                await asyncio_serve(app, config, shutdown_trigger=stop.wait)

            tg.start_soon(run_asyncio)
        with anyio.fail_after(10):
            while True:
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", port)
                except OSError:
                    await anyio.sleep(0.02)
                else:
                    await stream.aclose()
                    break
        try:
            yield f"127.0.0.1:{port}"
        finally:
            stop.set()


@dataclass(frozen=True)
class Closed:
    code: int | None


class RawWebSocket:
    """A bare websocket client for protocol tests."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._events: list[Any] = []
        self.status: int | None = None
        self.body = b""

    @classmethod
    @asynccontextmanager
    async def connect(cls, host: str, target: str) -> AsyncIterator[RawWebSocket]:
        address, port = host.rsplit(":", 1)
        stream = await anyio.connect_tcp(address, int(port))
        ws = cls(stream)
        try:
            await stream.send(ws._ws.send(Request(host=host, target=target)))
            event = await ws._next_event()
            if isinstance(event, RejectConnection):
                ws.status = event.status_code
                while event.has_body:
                    data = await ws._next_event()
                    if not isinstance(data, RejectData):
                        break
                    ws.body += data.data
                    if data.body_finished:
                        break
            elif isinstance(event, AcceptConnection):
                ws.status = 101
            yield ws
        finally:
            await stream.aclose()

    async def _next_event(self) -> Any:
        while not self._events:
            try:
                data = await self._stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                self._ws.receive_data(None)
            else:
                self._ws.receive_data(data)
            self._events.extend(self._ws.events())
            if not self._events and self._ws.state.name == "CLOSED":
                return CloseConnection(code=1006)
        return self._events.pop(0)

    async def send(self, data: str | bytes) -> None:
        message = TextMessage(data) if isinstance(data, str) else BytesMessage(data)
        await self._stream.send(self._ws.send(message))

    async def send_raw(self, data: bytes) -> None:
        await self._stream.send(data)

    async def receive(self) -> str | bytes | Closed:
        """The next message, or :class:`Closed` with the close code."""
        text: list[str] = []
        binary: list[bytes] = []
        while True:
            event = await self._next_event()
            if isinstance(event, TextMessage):
                text.append(event.data)
                if event.message_finished:
                    return "".join(text)
            elif isinstance(event, BytesMessage):
                binary.append(bytes(event.data))
                if event.message_finished:
                    return b"".join(binary)
            elif isinstance(event, CloseConnection):
                try:
                    await self._stream.send(self._ws.send(event.response()))
                except Exception:
                    pass
                return Closed(event.code)
            elif isinstance(event, Ping):
                await self._stream.send(self._ws.send(event.response()))
