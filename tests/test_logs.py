"""Logs a user can use: each connection's life at DEBUG (its sid, transport and
reason: opened, joined, upgraded, left, closed), and no stack trace at INFO or
above for anything a client sends, however bad. Over loopback (hypercorn), both
backends."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import anyio
import pytest

import gosf
import gosf.testing
from tests.harness import Closed, RawWebSocket, Watch, serve_app, sessions_end
from tests.test_engineio_server import Polling, echo_works, running, socketio_ws, upgraded

pytestmark = pytest.mark.anyio


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


async def test_a_connection_s_life_at_debug(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "gosf")
    async with running() as (server, host, http):
        client = Polling(http)
        await client.connect()
        with anyio.fail_after(10):
            async with upgraded(host, client) as ws:
                await echo_works(ws)
        await sessions_end(server.engine)
    sid = client.sid  # one sid for the session and its socket in "/" (protocol 5: not so)
    lines = [line for line in messages(caplog) if sid in line]
    assert f"session {sid} opened (polling)" in lines
    assert any(
        line.startswith("socket ") and f"joined / (session {sid}, polling)" in line
        for line in lines
    )
    assert f"session {sid} upgraded to websocket" in lines
    assert f"session {sid} closed (websocket): transport close" in lines
    left = [line for line in messages(caplog) if " left / (websocket): transport close" in line]
    assert len(left) == 1


async def test_a_refused_connection_and_a_namespace_left_at_debug(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "gosf")
    async with running() as (server, host, _):
        async with socketio_ws(host) as ws:
            await ws.send("40/nowhere,")
            with anyio.fail_after(5):
                assert str(await ws.receive()).startswith("44/nowhere,")
                await ws.send("41")
                await echo_works_gone(ws)
        await sessions_end(server.engine)
    lines = messages(caplog)
    assert any("connection to /nowhere refused: Invalid namespace" in line for line in lines)
    assert any(" left / (websocket): client namespace disconnect" in line for line in lines)


async def echo_works_gone(ws: RawWebSocket) -> None:
    """After ``41`` the namespace is gone: an event for it closes the session."""
    await ws.send('42["echo"]')
    while True:
        answer = await ws.receive()
        if isinstance(answer, Closed):
            return
        if answer == "2":
            await ws.send("3")


BAD_FRAMES: list[str | bytes] = [
    "x",  # not an Engine.IO packet type
    "4x",  # not a Socket.IO packet type
    '42["echo"',  # JSON cut short
    "42{}",  # an event that is not an array
    "42[]",  # an event with no name
    "4/unknown,2",  # a namespace it did not join
    "49",
    '451-["echo",{"_placeholder":true,"num":7}]',  # an attachment that never comes
    b"\xff\x00 binary garbage",
    '43999["no such ack"]',
]


@pytest.mark.parametrize("frame", BAD_FRAMES, ids=repr)
async def test_bad_input_logs_no_stack_trace(
    anyio_backend: str, caplog: pytest.LogCaptureFixture, frame: str | bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    app = gosf.App(metrics_endpoint="metrics")

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(request.message.text)

    async with serve_app(app) as host, socketio_ws(host) as ws:
        await ws.send(frame)
        await ws.send('42["echo",{"text":1}]')  # a bad GOSF message after it, if still open
        await ws.send('42["echo",[1,2]]')
        await ws.send('42["nope",{}]')
        with anyio.fail_after(5):
            while not isinstance(answer := await ws.receive(), Closed):
                if answer == "2":
                    await ws.send("3")
                elif str(answer).startswith("42"):  # answered: the session is still up
                    break
    traced = [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.levelno >= logging.INFO and record.exc_info
    ]
    assert traced == []


async def test_a_bad_polling_payload_logs_no_stack_trace(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running() as (server, _, http):
        client = Polling(http)
        await client.connect()
        await http.post(
            client.url, content=b"\x1e\x1e not a payload", headers={"content-type": "text/plain"}
        )
        await http.post(client.url, content=b"42[", headers={"content-type": "text/plain"})
        await http.get("/socket.io/?EIO=9&transport=polling")
        await http.get("/socket.io/?EIO=4&transport=carrier-pigeon")
        await http.get("/socket.io/?EIO=4&transport=polling&sid=nobody")
        await sessions_end(server.engine)
    traced: list[Any] = [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.levelno >= logging.INFO and record.exc_info
    ]
    assert traced == []


class _Notify(logging.Handler):
    """Tells a Watch of every record (the test waits for one without polling)."""

    def __init__(self, watch: Watch) -> None:
        super().__init__(logging.DEBUG)
        self.watch = watch

    def emit(self, record: logging.LogRecord) -> None:
        self.watch.notify()


async def test_a_request_hypercorn_fails_on_is_one_line_without_a_trace(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Trailing bytes after an upgrade request make hypercorn fail inside the
    # connection (its issue 225); gosf's guard keeps the server up under trio
    # and says so in one line: the client's doing needs no traceback above DEBUG.
    caplog.set_level(logging.DEBUG)
    logs = Watch()
    notify = _Notify(logs)
    logging.getLogger("gosf").addHandler(notify)
    try:
        async with running() as (_, host, http):
            address, port = host.split(":")
            with anyio.fail_after(10):
                stream = await anyio.connect_tcp(address, int(port))
                await stream.send(
                    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                    b"Host: " + host.encode() + b"\r\nConnection: Upgrade\r\n"
                    b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                    b"Sec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==\r\n\r\nx\r\n"
                )
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    await stream.receive()  # its 400
                await stream.aclose()
                if anyio_backend == "trio":
                    await logs.until(
                        lambda: any(r.name == "gosf.hypercorn" for r in caplog.records)
                    )
                await Polling(http).handshake()
    finally:
        logging.getLogger("gosf").removeHandler(notify)
    gosf_records = [r for r in caplog.records if r.name.startswith("gosf")]
    assert [r.getMessage() for r in gosf_records if r.levelno >= logging.INFO and r.exc_info] == []
    if anyio_backend == "trio":
        (warning,) = [
            r for r in gosf_records if r.name == "gosf.hypercorn" and r.levelno == logging.WARNING
        ]
        assert "Can't send data" in warning.getMessage()
        assert any(r.name == "gosf.hypercorn" and r.exc_info for r in gosf_records)  # at DEBUG
