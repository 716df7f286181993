"""The ASGI entry point: routing, request validation, lifespan.

One :class:`EngineASGI` serves the Engine.IO path (``/socket.io/`` by
default). Other paths go to ``other_app`` when given, else get a 404. The ASGI
lifespan opens the task group every session lives in.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio

from . import _hypercorn_guard
from ._engine import EngineServer, RequestForwarder, ServerNotRunning
from ._http import (
    ASGIApp,
    EngineError,
    Receive,
    Scope,
    Send,
    cors_headers,
    header,
    origin_allowed,
    query_params,
    send_error,
    send_response,
    websocket_connected,
)
from ._polling import handle_polling
from ._relay import RelayRefused, session_for_upgrade
from ._websocket import open_websocket_session, serve_upgrade

__all__ = ("EngineASGI", "serve_lifespan")

log = logging.getLogger("gosf.engineio")


class EngineASGI:
    """The ASGI application of an :class:`EngineServer`."""

    def __init__(self, engine: EngineServer, other_app: ASGIApp | None = None) -> None:
        self.engine = engine
        self.other_app = other_app
        self._path = engine.options.path

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Open the server's task group for the duration of the block."""
        async with anyio.create_task_group() as tg:
            await tg.start(self.engine.serve)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.route(scope, receive, send)

    def route(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """What serves this ASGI call, to be awaited.

        A plain method (the routing awaits nothing): a websocket client's
        ASGI call then holds one suspended coroutine frame less (~0.35 KB).
        """
        kind = scope["type"]
        if kind == "lifespan":
            return self._lifespan(scope, receive, send)
        path: str = scope.get("path", "")
        if path.rstrip("/") != self._path:
            if self.other_app is not None:
                return self.other_app(scope, receive, send)
            if kind == "http":
                return send_response(send, 404, b"Not Found")
            return send({"type": "websocket.close", "code": 1008})
        if kind == "http":
            return self._http(scope, receive, send)
        if kind == "websocket":
            return self._websocket(scope, receive, send)
        return _nothing()

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_lifespan(receive, send, self.running)

    def _validate(self, scope: Scope, transport_of_request: str) -> tuple[int, str | None, bool]:
        """Check the query of an Engine.IO request: (protocol, sid, b64).

        Raises:
            EngineError: the request is refused.
        """
        options = self.engine.options
        query = query_params(scope)
        eio = query.get("EIO")
        if eio == "4":
            protocol = 4
        elif eio == "3" and options.allow_eio3:
            protocol = 3
        else:
            raise EngineError(EngineError.UNSUPPORTED_PROTOCOL_VERSION)
        transport = query.get("transport")
        if transport not in options.transports:
            raise EngineError(EngineError.TRANSPORT_UNKNOWN)
        if transport != transport_of_request:
            raise EngineError(
                EngineError.BAD_REQUEST, detail="transport does not match the request"
            )
        if "j" in query:
            raise EngineError(EngineError.BAD_REQUEST, detail="JSONP polling is not supported")
        if not origin_allowed(options, scope):
            raise EngineError(EngineError.FORBIDDEN, detail="origin not allowed")
        if not self.engine.running:
            raise ServerNotRunning(ServerNotRunning.__doc__)
        b64 = bool(query.get("b64"))  # as the reference server: any non-empty value
        return protocol, query.get("sid"), b64

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        options = self.engine.options
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, send)
            return
        try:
            protocol, sid, b64 = self._validate(scope, "polling")
            await handle_polling(
                self.engine, scope, receive, send, protocol=protocol, sid=sid, b64=b64
            )
        except EngineError as exc:
            headers = cors_headers(options, scope) if exc.code != EngineError.FORBIDDEN else []
            await send_error(send, exc, headers)
        except ServerNotRunning as exc:
            await send_response(send, 503, str(exc).encode())

    async def _preflight(self, scope: Scope, send: Send) -> None:
        options = self.engine.options
        if not origin_allowed(options, scope):
            await send_error(send, EngineError(EngineError.FORBIDDEN, detail="origin not allowed"))
            return
        headers = [
            *cors_headers(options, scope),
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-max-age", b"86400"),
        ]
        requested = header(scope, b"access-control-request-headers")
        if requested:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
        await send_response(send, 204, b"", headers=headers)

    def _websocket(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """What serves a websocket request, to be awaited.

        A plain method (deciding awaits nothing): the ASGI call of a websocket
        client holds no suspended frame of it.
        """
        engine = self.engine
        try:
            protocol, sid, b64 = self._validate(scope, "websocket")
            if sid is None:
                return open_websocket_session(
                    engine, scope, receive, send, protocol=protocol, b64=b64
                )
            remote = engine.remote_owner(sid)
            if remote is not None:
                # The upgrade of a session another process holds (no sticky
                # sessions): this process relays the websocket to it.
                return _relay_websocket(scope, receive, send, remote, sid, b64)
            session = session_for_upgrade(engine, sid)
        except EngineError as exc:
            return _refuse_websocket_request(scope, receive, send, exc.status, exc.body())
        except ServerNotRunning as exc:
            return _refuse_websocket_request(scope, receive, send, 503, str(exc).encode())
        return serve_upgrade(
            session, receive, send, b64=b64, max_payload=engine.options.max_payload, connect=True
        )


async def _relay_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    remote: tuple[str, RequestForwarder],
    sid: str,
    b64: bool,
) -> None:
    if not await websocket_connected(receive):
        return
    owner, forwarder = remote
    try:
        await forwarder.relay_websocket(receive, send, owner=owner, sid=sid, b64=b64)
    except RelayRefused as refused:
        await _refuse_websocket(scope, send, refused.status, refused.body)


async def _nothing() -> None:
    """An ASGI call of a kind this app does not serve."""


def _in_trio_run() -> bool:
    """Whether this thread runs trio.

    Asked of trio itself: anyio has no public way to name the running
    backend, and sniffio (which anyio used to bring along) may be absent. A
    trio run has imported trio, so it is not imported here.
    """
    trio = sys.modules.get("trio")
    return trio is not None and bool(trio.lowlevel.in_trio_run())


async def serve_lifespan(
    receive: Receive, send: Send, running: Callable[[], AbstractAsyncContextManager[Any]]
) -> None:
    """Serve the ASGI lifespan protocol: ``running()`` is entered for the app's lifetime."""
    message = await receive()
    if message["type"] != "lifespan.startup":
        return
    if _in_trio_run():
        _hypercorn_guard.install()
    started = False
    try:
        async with running():
            await send({"type": "lifespan.startup.complete"})
            started = True
            while (await receive())["type"] != "lifespan.shutdown":
                pass
    except Exception as exc:
        phase = "shutdown" if started else "startup"
        log.exception("gosf failed during %s", phase)
        await send({"type": f"lifespan.{phase}.failed", "message": repr(exc)})
        return
    await send({"type": "lifespan.shutdown.complete"})


async def _refuse_websocket_request(
    scope: Scope, receive: Receive, send: Send, status: int, body: bytes
) -> None:
    if await websocket_connected(receive):
        await _refuse_websocket(scope, send, status, body)


async def _refuse_websocket(scope: Scope, send: Send, status: int, body: bytes) -> None:
    """Answer a websocket handshake with an HTTP error when the server can, else close."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})
