"""Responses and acks that JSON cannot carry: the client is answered all the same.

A controller's response (or a low-level handler's return value) may hold what
the encoder refuses: a ``set``, a ``Decimal``, an integer past 64 bits, or
data nested deeper than the encoder goes (a client's own deep body, echoed).
The client must still get an answer, and the log one line, not a traceback
per request (a client can cause it at will).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest

import gosf
import gosf._socketio.server
from tests.harness import serve_app
from tests.sioclient import SioClient

pytestmark = pytest.mark.anyio

DEEP = 300
"""Levels of nesting in the client's body: past what the encoder accepts."""


def deep_body_json(levels: int) -> str:
    """A message whose body is ``levels`` objects deep, as raw JSON (the encoders refuse it)."""
    return '{"body":' + '{"a":' * levels + "1" + "}" * levels + "}"


class RawClient(SioClient):
    """The test client, plus events whose JSON arguments are given as raw text."""

    async def call_raw(self, event: str, args_json: str, timeout: float = 5.0) -> list[Any]:  # noqa: ASYNC109
        """Send ``42<id>["event",<args_json>]`` and return the ack's arguments."""
        ack_id = next(self._ids)
        await self.ws.send(f'42{ack_id}["{event}",{args_json}]')
        with anyio.fail_after(timeout):
            while ack_id not in self._acks:
                await self._arrived.wait()
        return self._acks.pop(ack_id)


def unencodable_app() -> gosf.App:
    app = gosf.App()
    bodies: dict[str, Any] = {
        "set": {"v": {1, 2}},
        "decimal": {"v": Decimal("1.5")},
        "bigint": {"v": 2**70},
    }
    for endpoint, body in bodies.items():

        async def controller(
            client: gosf.Client, request: gosf.Request, body: Any = body
        ) -> gosf.Message:
            return gosf.Message.success(body=body)

        app.listen(endpoint, controller)

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(body=request.message.body)

    return app


@asynccontextmanager
async def connected(app: Any) -> AsyncIterator[RawClient]:
    async with serve_app(app) as host, RawClient.connect(host) as client:
        assert isinstance(client, RawClient)  # connect() builds the class it is called on
        yield client


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info is not None]


async def test_unencodable_response_is_internal_error_as_ack_and_event(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gosf")
    failure = {"id": 5, "success": False, "text": "INTERNAL_ERROR"}
    async with connected(unencodable_app()) as client:
        for endpoint in ("set", "decimal", "bigint"):
            assert await client.call_raw(endpoint, '{"id": 5}') == [failure], endpoint
            assert await client.next_event(endpoint) == [failure], endpoint
        deep = deep_body_json(DEEP)
        assert await client.call_raw("echo", deep[:-1] + ',"id":5}') == [failure]
        assert await client.next_event("echo") == [failure]
        # The connection is fine: an ordinary echo still works.
        assert await client.call_raw("echo", '{"body": {"n": 1}}') == [
            {"success": True, "body": {"n": 1}}
        ]
    assert tracebacks(caplog) == []
    assert "cannot be encoded" in caplog.text


async def test_unencodable_responses_log_one_line_not_a_flood(
    anyio_backend: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One warning per hour: the whole test falls in one interval, however slow the machine.
    monkeypatch.setattr(gosf._socketio.server, "UNENCODABLE_LOG_INTERVAL", 3600.0)
    caplog.set_level(logging.DEBUG, logger="gosf")
    deep = deep_body_json(DEEP)
    async with connected(unencodable_app()) as client:
        for _ in range(20):
            assert (await client.call_raw("echo", deep))[0]["text"] == "INTERNAL_ERROR"
    assert tracebacks(caplog) == []
    loud = [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and "cannot be encoded" in record.getMessage()
    ]
    assert len(loud) == 1  # the others at DEBUG, counted in the next warning
    quiet = [
        record
        for record in caplog.records
        if record.levelno == logging.DEBUG and "cannot be encoded" in record.getMessage()
    ]
    assert len(quiet) == 19


async def test_low_level_handler_with_unencodable_result_gets_an_empty_ack(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gosf")
    server = gosf.SocketIOServer()

    @server.on("set")
    async def give_set(socket: gosf.Socket, data: Any) -> Any:
        return {1, 2}

    @server.on("decimal")
    async def give_decimal(socket: gosf.Socket, data: Any) -> Any:
        return Decimal("1.5")

    @server.on("pair")
    async def give_pair(socket: gosf.Socket, data: Any) -> Any:
        return (1, 2**70)

    @server.on("echo")
    async def echo(socket: gosf.Socket, data: Any) -> Any:
        return data

    async with connected(server) as client:
        for event in ("set", "decimal", "pair"):
            assert await client.call_raw(event, "{}") == [], event
        assert await client.call_raw("echo", deep_body_json(DEEP)) == []
        assert await client.call_raw("echo", '{"n": 1}') == [{"n": 1}]
    assert tracebacks(caplog) == []
    assert "cannot be encoded" in caplog.text
