"""Clients that stop reading, on a real loopback TCP connection.

A raw websocket client with a small receive buffer never reads what the
server sends (its TCP connection stays open, its kernel acknowledges
nothing more): the server's writes block. These tests pin what gosf does
then: the session ends on its own schedule (the disconnect handlers run, the
client leaves every table) and the TCP connection is closed without waiting
for the peer, under hypercorn's asyncio and trio workers (and uvicorn).
"""

from __future__ import annotations

import os
import select
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import orjson
import pytest
import sniffio
from anyio.abc import SocketStream
from wsproto.events import AcceptConnection, Request

import gosf
from gosf._engineio.abort import find_abort
from gosf._engineio.server import LINGER
from gosf._engineio.session import EngineSession
from gosf._engineio.wswriter import WebSocketWriter
from tests.harness import (
    RawWebSocket,
    Watch,
    listening_socket,
    serve_app,
    sessions_end,
    started_app,
    watch_attribute,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform != "linux", reason="reads the kernel's TCP state (TCP_INFO)"),
]

WS = "/socket.io/?EIO=4&transport=websocket"
BIG = "x" * 200_000
"""A payload much larger than the stalled client's receive buffer."""


_TCP_CLOSE = 7
"""``tcpi_state`` of a connection that is gone (reset, here)."""


def writing_now(session: EngineSession) -> bool:
    """Whether a write to the session's websocket is in flight."""
    return session.writer is not None and session.writer.writing


def reset(sock: socket.socket) -> bool:
    """Whether the server has dropped the connection: a client that reads
    nothing cannot see an end of stream (it sits behind unread data), but its
    kernel sees the reset."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == _TCP_CLOSE


async def hung_up(sock: socket.socket, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    """Wait until the kernel reports ``sock`` hung up or in error (a reset does
    both; unread data, which keeps it readable, does not count), then check
    that it was reset.

    Raises:
        TimeoutError: it had not hung up after ``timeout`` seconds.
    """
    poller = select.poll()
    poller.register(sock, 0)  # hang-ups and errors are always reported

    def wait() -> bool:
        return bool(poller.poll(timeout * 1000))

    if not await anyio.to_thread.run_sync(wait):
        raise TimeoutError(f"the connection was not dropped within {timeout} s")
    assert reset(sock)


@asynccontextmanager
async def stalled_client(host: str) -> AsyncIterator[tuple[RawWebSocket, socket.socket]]:
    """A websocket client whose kernel buffers next to nothing and which reads
    only when the test asks it to; connected to the default namespace."""
    address, port = host.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Set before connecting, so the window it announces is small from the start.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        sock.connect((address, int(port)))
    except BlockingIOError:
        pass  # loopback: the handshake completes as soon as the loop runs
    with anyio.fail_after(5):
        await anyio.wait_writable(sock)
    stream = await SocketStream.from_socket(sock)
    ws = RawWebSocket(stream)
    try:
        with anyio.fail_after(5):
            await stream.send(ws._ws.send(Request(host=host, target=WS)))
            assert isinstance(await ws._next_event(), AcceptConnection)
            opened = await ws.receive()
            assert isinstance(opened, str) and opened.startswith("0{")
            await ws.send("40")
            connected = await ws.receive()
            assert isinstance(connected, str) and connected.startswith("40")
        # A second descriptor of the same socket, to read its state after the
        # stream has closed its own.
        with socket.socket(fileno=os.dup(sock.fileno())) as watched:
            yield ws, watched
    finally:
        await stream.aclose()


@asynccontextmanager
async def serve_uvicorn(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn (asyncio only) in the running loop; yields ``host:port``."""
    import uvicorn

    # Listening from the start (see tests/harness.py): nothing polls for the
    # server to come up; the lifespan's startup says it is up.
    sock = listening_socket()
    wrapped, started = started_app(app)
    config = uvicorn.Config(wrapped, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(server.serve, sockets=[sock]))
            with anyio.fail_after(10):
                await started.wait()
            try:
                yield f"127.0.0.1:{sock.getsockname()[1]}"
            finally:
                server.should_exit = True


def serve_with(server_kind: str, app: Any) -> AbstractAsyncContextManager[str]:
    if server_kind == "uvicorn":
        if sniffio.current_async_library() != "asyncio":
            pytest.skip("uvicorn runs on asyncio only")
        return serve_uvicorn(app)
    return serve_app(app)


def slow_client_server(**options: Any) -> tuple[gosf.SocketIOServer, list[str], anyio.Event]:
    server = gosf.SocketIOServer(**options)
    reasons: list[str] = []
    gone = anyio.Event()

    @server.on_connect
    async def join(socket: gosf.Socket, auth: Any) -> None:
        socket.join("everyone")

    @server.on_disconnect
    async def left(socket: gosf.Socket, reason: str) -> None:
        reasons.append(reason)
        gone.set()

    return server, reasons, gone


@pytest.mark.parametrize("server_kind", ["hypercorn", "uvicorn"])
async def test_a_slow_client_cut_off_by_broadcasts_leaves_at_once(
    anyio_backend: str, server_kind: str
) -> None:
    # Broadcasts fill the queue of a client whose TCP connection accepts
    # nothing more: gosf disconnects it as a slow client. Its session must end
    # then (disconnect handlers, tables), not when its peer lets a write
    # through, and the server must drop the TCP connection (no ASGI server
    # does it by itself).
    server, reasons, gone = slow_client_server(max_outbound_buffer=4)
    async with serve_with(server_kind, server.asgi) as host, stalled_client(host) as (_, sock):
        with anyio.fail_after(10):
            while not gone.is_set():  # bounded by the buffer: a few dozen rounds
                await server.emit("news", BIG, to="everyone")
                await anyio.lowlevel.checkpoint()  # the writer runs
            await gone.wait()
        assert reasons == ["slow client"]
        assert server.namespace("/").members() == []
        await sessions_end(server.engine)
        await hung_up(sock)


async def test_a_client_that_answers_pings_but_never_reads_is_cut_off(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Everything fits the queue (no broadcast finds it full) and the client
    # answers every ping without reading: only the write-progress deadline
    # can tell that it takes nothing.
    writing = watch_attribute(monkeypatch, WebSocketWriter, "writing")
    server, reasons, gone = slow_client_server(
        ping_interval=0.3, ping_timeout=1.0, write_timeout=0.5
    )
    async with serve_app(server.asgi) as host, stalled_client(host) as (ws, sock):
        (member,) = server.namespace("/").members()
        # The session's writer task is to be the one stuck: were the reader
        # (still writing the CONNECT answer) to take the broadcasts over, the
        # pongs would go unread and the ping timeout would close the session.
        await writing.until(lambda: not writing_now(member.session))
        for _ in range(40):
            await server.emit("news", BIG, to="everyone")
        await writing.until(lambda: writing_now(member.session))
        with anyio.fail_after(10):
            while not gone.is_set():  # pongs, blind: bounded by the fail_after
                try:
                    await ws.send("3")
                except anyio.BrokenResourceError:
                    break  # reset: the server cut it off (its handlers may still run)
                with anyio.move_on_after(0.05):
                    await gone.wait()
            await gone.wait()
        assert reasons == ["slow client"]
        assert server.namespace("/").members() == []
        await sessions_end(server.engine)
        await hung_up(sock)


async def test_a_graceful_disconnect_of_a_client_that_reads_nothing_is_bounded(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server disconnects a client while a write to it is blocked: its
    # last packets get ping_timeout to go out, then the connection is
    # aborted and the session ends.
    writing = watch_attribute(monkeypatch, WebSocketWriter, "writing")
    server, reasons, gone = slow_client_server(ping_interval=30.0, ping_timeout=0.5)
    async with serve_app(server.asgi) as host, stalled_client(host) as (_, sock):
        for _ in range(40):
            await server.emit("news", BIG, to="everyone")
        (member,) = server.namespace("/").members()
        await writing.until(lambda: writing_now(member.session))  # the writer is stuck
        member.disconnect()
        with anyio.fail_after(10):
            await gone.wait()
        assert len(reasons) == 1
        await sessions_end(server.engine)
        await hung_up(sock)


class WatchedSet(set[anyio.CancelScope]):
    """The engine's set of lingering sessions, telling a :class:`Watch` when one joins."""

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self._watch = watch

    def add(self, scope: anyio.CancelScope) -> None:
        super().add(scope)
        self._watch.notify()


def test_write_timeout_defaults_to_the_heartbeat() -> None:
    assert gosf.Config().server_options().stall_timeout == 25.0 + 20.0
    options = gosf.Config(write_timeout=3, ping_interval=1).server_options()
    assert (options.write_timeout, options.stall_timeout) == (3.0, 3.0)


async def test_a_polling_client_that_answers_pings_but_never_polls_is_cut_off(
    anyio_backend: str,
) -> None:
    # The long-polling twin: pongs come by POST, the queue is never fetched.
    server, reasons, gone = slow_client_server(
        ping_interval=0.3, ping_timeout=1.0, write_timeout=0.5
    )
    async with serve_app(server.asgi) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=5) as http:
            opened = await http.get("/socket.io/?EIO=4&transport=polling")
            sid = orjson.loads(opened.content[1:])["sid"]
            url = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
            assert (await http.post(url, content=b"40")).text == "ok"
            await server.emit("news", "hello", to="everyone")
            with anyio.fail_after(10):
                while not gone.is_set():  # pongs, blind: bounded by the fail_after
                    await http.post(url, content=b"3")
                    with anyio.move_on_after(0.05):
                        await gone.wait()
    assert reasons == ["slow client"]


async def test_a_graceful_shutdown_keeps_to_its_grace_despite_abandoned_polling_sessions(
    anyio_backend: str,
) -> None:
    # A polling client that stopped polling never fetches the CLOSE of a
    # disconnect or of the shutdown: its session would wait LINGER for that
    # last GET. The whole
    # shutdown, down to the server's last wait for its sessions, keeps to
    # the grace instead. (The bound asserted is the behaviour under test:
    # well under LINGER, whatever the machine.)
    server = gosf.SocketIOServer(ping_interval=30.0, ping_timeout=30.0)
    assert LINGER >= 5.0
    lingering = Watch()
    server.engine.lingering = WatchedSet(lingering)
    async with serve_app(server.asgi) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=5) as http:
            for _ in range(3):
                opened = await http.get("/socket.io/?EIO=4&transport=polling")
                sid = orjson.loads(opened.content[1:])["sid"]
                url = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
                assert (await http.post(url, content=b"40")).text == "ok"
        sessions = list(server.engine.sessions.values())
        # One is already waiting for its last GET when the shutdown begins.
        server.namespace("/").members()[0].disconnect()
        await lingering.until(lambda: bool(server.engine.lingering))
        with anyio.fail_after(LINGER / 2):
            await server.shutdown(0.2)
            for session in sessions:
                await session.wait_finished()


def test_no_abort_is_found_where_the_connection_is_not_the_websocket_s_own() -> None:
    async def middleware_send(message: Any) -> None:
        pass

    assert find_abort(middleware_send, {"http_version": "1.1"}) is None
    # Over HTTP/2 the connection carries other requests: never aborted.
    assert find_abort(middleware_send, {"http_version": "2"}) is None
