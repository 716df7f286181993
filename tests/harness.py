"""In-process servers, raw clients and waits on state, for tests under asyncio and trio.

``serve_app`` runs hypercorn inside the test's own event loop (its asyncio or
trio flavour, whichever the test runs on) on a loopback socket it listens on
from the start. ``RawWebSocket`` speaks bare websocket frames through wsproto
over an anyio TCP stream, so tests can send exactly the bytes they want.
``WireClient`` is gosf's own client talking to an app in memory
(``gosf.testing``), with every packet the app sent it kept for tests to
assert on: no socket, no server.

Tests never sleep-poll. They wait on events; where the state they wait for
belongs to the server and has no event of its own, ``watch_attribute`` makes
every assignment of that attribute notify a :class:`Watch` the test waits on.
"""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
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

from gosf import App, SocketIOClient
from gosf.protocol.engineio import PacketType as EngineType
from gosf.protocol.engineio import decode_ws
from gosf.protocol.socketio import Decoder, Packet, PacketType
from gosf.testing import TestServer

__all__ = (
    "Closed",
    "RawWebSocket",
    "Watch",
    "WireClient",
    "listening_socket",
    "serve_app",
    "sessions_end",
    "started_app",
    "tapped",
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
        from gosf._engineio.session import EngineSession

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


class _TappedWebSocket:
    """An in-memory websocket that hands each message it receives to ``record`` first."""

    def __init__(self, ws: Any, record: Callable[[str | bytes], None]) -> None:
        self._ws = ws
        self._record = record

    async def send(self, message: str | bytes) -> None:
        await self._ws.send(message)

    async def receive(self) -> str | bytes:
        message: str | bytes = await self._ws.receive()
        self._record(message)
        return message

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.aclose(code, reason)


def tapped(connector: Any, record: Callable[[str | bytes], None]) -> Any:
    """``connector`` (an in-memory one, ``gosf.testing.asgi_connector``) with
    every message its websockets receive handed to ``record`` first: what a
    client got, frame by frame, where its API shows less (heartbeats, a late ack)."""

    @asynccontextmanager
    async def connect(url: str, headers: Iterable[tuple[str, str]]) -> AsyncIterator[Any]:
        opening: AbstractAsyncContextManager[Any] = connector(url, headers)
        async with opening as ws:
            yield _TappedWebSocket(ws, record)

    return connect


class WireClient:
    """gosf's own client (:attr:`sio`) to an app in memory, seen packet by packet.

    The client connects through ``server``'s in-memory connector
    (``gosf.testing``); every Socket.IO packet the app sends it is decoded
    here as well, so a test can assert on what went over the wire where the
    client's API would blur it: an ack's argument list (``[]`` is not
    ``[null]``, though :meth:`gosf.SocketIOClient.call` returns ``None`` for
    both), an event's arguments, a refusal's exact payload. Protocol 5, the
    default namespace, one :meth:`call` at a time.
    """

    def __init__(self, server: TestServer) -> None:
        self.sio = SocketIOClient()
        self._server = server
        self.packets: list[Packet] = []
        """Every Socket.IO packet received, in order."""
        self._events: dict[str, list[list[Any]]] = defaultdict(list)
        self._acks = 0
        self._last_ack: list[Any] = []
        self._arrived = Watch()
        self._decoder = Decoder(5)
        self._ws: _TappedWebSocket | None = None

    @asynccontextmanager
    async def connect(self, *, auth: dict[str, Any] | None = None) -> AsyncIterator[WireClient]:
        """Connect for the duration of the block (leaving it says goodbye, as a client does).

        Raises:
            gosf.ConnectionRefused: the app refused the connection (:attr:`refusal`
                holds the packet's payload).
        """
        app = self._server.app
        path = app.config.path + "socket.io" if isinstance(app, App) else "/socket.io"
        async with self.sio.connect(
            "http://testserver", auth=auth, path=path, connector=self._connector
        ):
            yield self

    @asynccontextmanager
    async def _connector(
        self, url: str, headers: Iterable[tuple[str, str]]
    ) -> AsyncIterator[_TappedWebSocket]:
        async with tapped(self._server.connector, self._record)(url, headers) as ws:
            self._ws = ws
            yield ws

    def _record(self, frame: str | bytes) -> None:
        engine = decode_ws(frame, 4)
        if engine.type is not EngineType.MESSAGE:
            return
        packet = self._decoder.feed(engine.data)
        if packet is None:  # a binary packet waiting for its attachments
            return
        self.packets.append(packet)
        if packet.type in (PacketType.EVENT, PacketType.BINARY_EVENT):
            name, *args = packet.data
            self._events[name].append(args)
        elif packet.type in (PacketType.ACK, PacketType.BINARY_ACK):
            self._acks += 1
            self._last_ack = packet.data
        self._arrived.notify()

    @property
    def sid(self) -> str:
        return self.sio.sid() or ""

    @property
    def refusal(self) -> Any:
        """The payload of the CONNECT_ERROR packet the app answered with, if any."""
        errors = [p.data for p in self.packets if p.type is PacketType.CONNECT_ERROR]
        return errors[-1] if errors else None

    @property
    def disconnect_reason(self) -> str | None:
        return self.sio.disconnect_reason

    async def emit(self, event: str, *args: Any) -> None:
        await self.sio.emit(event, *args)

    async def call(self, event: str, *args: Any, timeout: float = WAIT) -> list[Any]:  # noqa: ASYNC109
        """Emit with an ack and return the ack's arguments, as the packet carried them."""
        before = self._acks
        await self.sio.call(event, *args, timeout=timeout)
        assert self._acks == before + 1, "one call at a time"
        return self._last_ack

    async def next_event(self, name: str, timeout: float = WAIT) -> list[Any]:  # noqa: ASYNC109
        """The arguments of the next ``name`` event not taken yet (waiting for it if needed)."""
        await self._arrived.until(lambda: bool(self._events[name]), timeout)
        return self._events[name].pop(0)

    def events(self, name: str) -> list[list[Any]]:
        """The ``name`` events received and not taken yet."""
        return list(self._events[name])

    async def drop(self) -> None:
        """End the connection as a network failure would: no DISCONNECT packet,
        the websocket just goes away (the app's reason: ``transport close``)."""
        assert self._ws is not None, "not connected"
        await self._ws.aclose(1006)
        await self.sio.wait_disconnected()
