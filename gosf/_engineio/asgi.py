"""The ASGI entry point: routing, request validation, lifespan.

One :class:`EngineASGI` serves the Engine.IO path (``/socket.io/`` by
default). Other paths go to ``other_app`` when given, else get a 404. The ASGI
lifespan opens the task group every session lives in.

Checks come in this order, each before the next is looked at: the ``Host``
(when valid host names are set, on every path: ``421``), then on the
Engine.IO path the ``Origin`` (``403``, with no CORS headers: a refused
origin learns nothing), then the query and the session. A refused HTTP
request is answered once its body is read (up to ``max_payload``), so the
connection stays usable and the client sees the answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio

from .._backend import current_backend
from .._errors import ServerNotRunning
from .._logs import WarnOnce
from . import hypercorn_guard as _hypercorn_guard
from .http import (
    ASGIApp,
    EngineError,
    Headers,
    HostNames,
    Receive,
    RequestBody,
    Scope,
    Send,
    cors_headers,
    header,
    origin_allowed,
    query_params,
    send_response,
    websocket_connected,
)
from .polling import handle_polling
from .server import EngineServer, RelayRefused, RequestForwarder, session_for_upgrade
from .websocket import open_websocket_session, serve_upgrade

__all__ = ("EngineASGI", "serve_lifespan")

log = logging.getLogger("gosf.engineio")


class EngineASGI:
    """The ASGI application of an :class:`EngineServer`."""

    def __init__(self, engine: EngineServer, other_app: ASGIApp | None = None) -> None:
        """
        Raises:
            ValueError: the certificate naming the valid host names cannot be read.
        """
        self.engine = engine
        self.other_app = other_app
        self._path = engine.options.path
        self._hosts = HostNames.from_options(engine.options)
        self._warn_origin = WarnOnce(
            log,
            "refused a request from origin %r: allow it with enableCORS (gosf.App) "
            "or cors_allowed_origins (SocketIOServer), now %r",
        )
        self._warn_host = WarnOnce(
            log,
            "refused a request for host %r: not one of the valid host names %r "
            "(valid_hostnames, or the certificate's with rejectInvalidHostnames)",
        )

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
        ASGI call then holds one suspended coroutine frame less for as long
        as the client stays (a fast path: see "Fast paths" in
        docs/performance.md).
        """
        kind = scope["type"]
        if kind == "lifespan":
            return self._lifespan(scope, receive, send)
        if self._hosts is not None and not self._hosts.allowed(header(scope, b"host")):
            return self._wrong_host(scope, receive, send)
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
        if not self.engine.running:
            raise ServerNotRunning(ServerNotRunning.__doc__)
        b64 = bool(query.get("b64"))  # as the reference server: any non-empty value
        return protocol, query.get("sid"), b64

    def _origin_refused(self, scope: Scope) -> EngineError | None:
        """The error for a request whose ``Origin`` is not allowed, logged; else ``None``."""
        options = self.engine.options
        if origin_allowed(options, scope):
            return None
        self._warn_origin(str(header(scope, b"origin")), options.cors_allowed_origins)
        return EngineError(EngineError.FORBIDDEN, detail="origin not allowed")

    async def _wrong_host(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._hosts is not None
        self._warn_host(str(header(scope, b"host")), self._hosts.patterns)
        error = EngineError(EngineError.FORBIDDEN, status=421, detail="invalid hostname")
        if scope["type"] == "http":
            await self._refuse(RequestBody(receive), send, error)
        elif scope["type"] == "websocket":
            await _refuse_websocket_request(scope, receive, send, error.status, error.body())

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        options = self.engine.options
        body = RequestBody(receive)
        refused = self._origin_refused(scope)
        if refused is not None:
            await self._refuse(body, send, refused)
            return
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, send)
            return
        try:
            protocol, sid, b64 = self._validate(scope, "polling")
            await handle_polling(
                self.engine, scope, body, send, protocol=protocol, sid=sid, b64=b64
            )
        except EngineError as exc:
            await self._refuse(body, send, exc, cors_headers(options, scope))
        except ServerNotRunning as exc:
            await self._refuse(body, send, exc)

    async def _refuse(
        self,
        body: RequestBody,
        send: Send,
        error: EngineError | ServerNotRunning,
        headers: Headers | None = None,
    ) -> None:
        """Answer a refused HTTP request once its body is read.

        A body larger than ``max_payload`` (or slower than ``ping_timeout``)
        is not read to its end: the answer then says ``Connection: close``,
        and the server closes the connection after it.
        """
        options = self.engine.options
        headers = list(headers or ())
        if not await body.discard(options.max_payload, options.ping_timeout):
            if body.left:
                # Nobody to answer; and an answer sent while the server closes
                # the connection trips hypercorn's trio worker
                # (BusyResourceError: its close and the send race).
                return
            headers.append((b"connection", b"close"))
        if isinstance(error, EngineError):
            content, status, kind = error.body(), error.status, b"application/json"
        else:
            content, status, kind = str(error).encode(), 503, b"text/plain; charset=UTF-8"
        await send_response(send, status, content, content_type=kind, headers=headers)

    async def _preflight(self, scope: Scope, send: Send) -> None:
        options = self.engine.options
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
        client holds no suspended frame of it (a fast path, as :meth:`route`).
        """
        engine = self.engine
        refused = self._origin_refused(scope)
        if refused is not None:
            return _refuse_websocket_request(scope, receive, send, refused.status, refused.body())
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
        await forwarder.relay_websocket(scope, receive, send, owner=owner, sid=sid, b64=b64)
    except RelayRefused as refused:
        await _refuse_websocket(scope, send, refused.status, refused.body)


async def _nothing() -> None:
    """An ASGI call of a kind this app does not serve."""


async def serve_lifespan(
    receive: Receive, send: Send, running: Callable[[], AbstractAsyncContextManager[Any]]
) -> None:
    """Serve the ASGI lifespan protocol: ``running()`` is entered for the app's lifetime."""
    message = await receive()
    if message["type"] != "lifespan.startup":
        return
    if current_backend() == "trio":
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
