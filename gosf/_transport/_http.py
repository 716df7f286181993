"""Small ASGI helpers shared by the transports: query parsing, errors, CORS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import orjson

from .._config import ServerOptions

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

__all__ = (
    "ASGIApp",
    "EngineError",
    "Headers",
    "Receive",
    "Scope",
    "Send",
    "cors_headers",
    "header",
    "origin_allowed",
    "query_params",
    "send_response",
    "websocket_connected",
)


class EngineError(Exception):
    """A request the Engine.IO server refuses, with the reference server's error codes."""

    TRANSPORT_UNKNOWN = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    _MESSAGES: ClassVar[dict[int, str]] = {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
    }

    def __init__(self, code: int, *, status: int | None = None, detail: str | None = None) -> None:
        self.code = code
        self.status = status or (403 if code == self.FORBIDDEN else 400)
        self.message = self._MESSAGES[code]
        self.detail = detail
        super().__init__(f"{self.message}: {detail}" if detail else self.message)

    def body(self) -> bytes:
        payload: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            payload["detail"] = self.detail
        return orjson.dumps(payload)


async def websocket_connected(receive: Receive) -> bool:
    """Receive an ASGI websocket call's first message: whether it is
    ``websocket.connect`` (anything else: the client is already gone)."""
    kind: str = (await receive())["type"]
    return kind == "websocket.connect"


def query_params(scope: Mapping[str, Any]) -> dict[str, str]:
    """The query string as a dict (last value wins), decoded leniently."""
    raw: bytes = scope.get("query_string", b"")
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), or ``None``."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def origin_allowed(options: ServerOptions, scope: Scope) -> bool:
    """Apply :attr:`ServerOptions.cors_allowed_origins` to the request's ``Origin``."""
    origin = header(scope, b"origin")
    allowed = options.cors_allowed_origins
    if origin is None or allowed == "*":
        return True
    if allowed is not None:
        return origin in allowed
    host = header(scope, b"host")
    return host is not None and urlsplit(origin).netloc == host


def cors_headers(options: ServerOptions, scope: Scope) -> Headers:
    """CORS response headers for an allowed cross-origin polling request."""
    origin = header(scope, b"origin")
    if origin is None:
        return []
    headers: Headers = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"vary", b"Origin"),
    ]
    if options.cors_credentials:
        headers.append((b"access-control-allow-credentials", b"true"))
    return headers


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"text/plain; charset=UTF-8",
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send a complete HTTP response."""
    all_headers: Headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, error: EngineError, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send_response(
        send, error.status, error.body(), content_type=b"application/json", headers=headers
    )
