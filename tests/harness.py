"""In-process servers, a raw websocket client and waits on state, for tests under asyncio and trio.

``serve_app`` runs hypercorn inside the test's own event loop (its asyncio or
trio flavour, whichever the test runs on) on a loopback socket it listens on
from the start. ``RawWebSocket`` speaks bare websocket frames through wsproto
over an anyio TCP stream, so tests can send exactly the bytes they want.

Tests never sleep-poll. They wait on events; where the state they wait for
belongs to the server and has no event of its own, ``watch_attribute`` makes
every assignment of that attribute notify a :class:`Watch` the test waits on.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import pytest
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

__all__ = (
    "Closed",
    "RawWebSocket",
    "Watch",
    "listening_socket",
    "serve_app",
    "sessions_end",
    "started_app",
    "watch_attribute",
)

WAIT = 5.0
"""How long a :class:`Watch` waits by default, seconds."""


class Watch:
    """Changes of some state, signalled by whoever makes them, for tests to wait on.

    Whatever changes the state calls :meth:`notify`; a test waits with
    :meth:`until`, which checks its condition again at each change (never
    on a timer).
    """

    def __init__(self) -> None:
        # Made when a test waits (so a Watch can be made outside an event loop).
        self._changed: anyio.Event | None = None

    def notify(self) -> None:
        """The state changed: wake every waiter to look again."""
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:  # noqa: ASYNC109
        """Wait until ``condition()`` holds, looking again at each :meth:`notify`.

        Raises:
            TimeoutError: it did not hold within ``timeout`` seconds.
        """
        with anyio.fail_after(timeout):
            while not condition():
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()


def watch_attribute(
    monkeypatch: pytest.MonkeyPatch, cls: type, name: str, watch: Watch | None = None
) -> Watch:
    """Make every assignment of ``name`` on instances of ``cls`` notify ``watch``.

    For state a server keeps in a plain attribute and offers no event for
    (a flag set when a task starts or ends): the class gets a property in its
    place, for the test's duration, which stores the value where it was stored
    (the instance's dict or its slot) and notifies. A class default still
    reads as before until an instance assigns its own value.
    """
    watch = watch if watch is not None else Watch()
    # A class default may itself be None: tell it from no default at all.
    has_default = name in cls.__dict__
    original: Any = cls.__dict__.get(name)
    if has_default and hasattr(original, "__set__"):  # a slot
        slot = original

        def get(obj: Any) -> Any:
            return slot.__get__(obj, cls)

        def set_(obj: Any, value: Any) -> None:
            slot.__set__(obj, value)
            watch.notify()

    else:

        def get(obj: Any) -> Any:
            try:
                return vars(obj)[name]
            except KeyError:
                if not has_default:
                    raise AttributeError(name) from None
                return original

        def set_(obj: Any, value: Any) -> None:
            vars(obj)[name] = value
            watch.notify()

    monkeypatch.setattr(cls, name, property(get, set_), raising=False)
    return watch


def listening_socket() -> socket.socket:
    """A TCP socket listening on a free loopback port: connections to it wait
    in the kernel's backlog until a server accepts them, so nothing has to
    poll for the server to come up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(100)
    except BaseException:
        sock.close()
        raise
    return sock


def started_app(app: Any) -> tuple[Any, anyio.Event]:
    """``app`` wrapped to tell when the server has run its lifespan startup;
    the event is set then (or when the app turns the lifespan down)."""
    started = anyio.Event()

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_and_tell(message: Any) -> None:
            await send(message)
            if message["type"].startswith("lifespan.startup."):
                started.set()

        try:
            await app(scope, receive, send_and_tell)
        finally:
            started.set()  # no lifespan support: the server goes on without

    return wrapped, started


class HeartbeatChecks:
    """Counts the server's heartbeat checks (``EngineSession.beat``) for the
    test's duration, so that a test can wait for several to pass."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from gosf._transport._session import EngineSession

        self.count = 0
        self._watch = Watch()
        beat = EngineSession.beat

        def counting_beat(session: EngineSession, now: float) -> float | None:
            self.count += 1
            self._watch.notify()
            return beat(session, now)

        monkeypatch.setattr(EngineSession, "beat", counting_beat)

    async def pass_(self, checks: int, timeout: float = WAIT) -> None:  # noqa: ASYNC109
        """Wait until ``checks`` more heartbeat checks have run."""
        target = self.count + checks
        await self._watch.until(lambda: self.count >= target, timeout)


@asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with hypercorn on the running backend; yields ``host:port``
    once the app's lifespan startup has run."""
    sock = listening_socket()
    host = f"127.0.0.1:{sock.getsockname()[1]}"
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) it from now on
    config.accesslog = None
    config.graceful_timeout = 0.5
    wrapped, started = started_app(app)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        if sniffio.current_async_library() == "trio":
            from hypercorn.trio import serve as trio_serve

            tg.start_soon(partial(trio_serve, wrapped, config, shutdown_trigger=stop.wait))
        else:
            from hypercorn.asyncio import serve as asyncio_serve

            async def run_asyncio() -> None:
                await asyncio_serve(wrapped, config, shutdown_trigger=stop.wait)

            tg.start_soon(run_asyncio)
        with anyio.fail_after(10):
            await started.wait()
        try:
            yield host
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


async def sessions_end(engine: Any, timeout: float = WAIT) -> None:  # noqa: ASYNC109
    """Wait until every session ``engine`` (an ``EngineServer``) holds has ended.

    Raises:
        TimeoutError: one was still running after ``timeout`` seconds.
    """
    with anyio.fail_after(timeout):
        for session in list(engine.sessions.values()):
            await session.wait_finished()
    assert not engine.sessions
