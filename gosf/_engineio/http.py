"""Small ASGI helpers shared by the transports: query parsing, errors, the
checks of ``Origin`` (CORS) and ``Host`` (valid host names)."""

from __future__ import annotations

import fnmatch
import ssl
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import anyio
import orjson

from .._options import ServerOptions
from ..types import ASGIApp, ASGIMessage, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]

__all__ = (
    "ASGIApp",
    "ASGIMessage",
    "EngineError",
    "Headers",
    "HostNames",
    "Receive",
    "RequestBody",
    "Scope",
    "Send",
    "certificate_names",
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


class RequestBody:
    """An HTTP request's ``receive`` that notes when its body has been read.

    A refused request is answered only after its body is read (see
    :meth:`discard`): an ASGI server cannot keep a connection whose request
    body is unread, and one that closes it while the client is still sending
    gets the client a reset instead of the answer.
    """

    __slots__ = ("_receive", "left", "read", "size")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.read = False
        """The last chunk of the body has been received (or the client left)."""
        self.left = False
        """The client has gone (``http.disconnect``): there is nobody to answer."""
        self.size = 0
        """Bytes of the body received so far."""

    async def __call__(self) -> ASGIMessage:
        message = await self._receive()
        self.size += len(message.get("body", b""))
        if not message.get("more_body", False):  # the last chunk, or http.disconnect
            self.read = True
        if message["type"] == "http.disconnect":
            self.left = True
        return message

    async def discard(self, max_payload: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Read and drop what is left of the body: whether all of it came.

        The body is read up to ``max_payload`` bytes in all, for at most
        ``timeout`` seconds: a larger or slower body is left unread (the
        connection cannot be kept then), as is the body of a client that left.
        """
        with anyio.move_on_after(timeout):
            while not self.read and self.size <= max_payload:
                await self()
        return self.read and not self.left


def query_params(scope: Mapping[str, Any]) -> dict[str, str]:
    """The query string as a dict (last value wins), decoded leniently.

    A query with nothing escaped (no ``%``, no ``+``), as every Engine.IO
    client's own is, is split by hand: ``parse_qsl`` gives the same pairs
    with many more calls, on every handshake and connect (a fast path: see
    "Fast paths" in docs/performance.md).
    """
    raw: bytes = scope.get("query_string", b"")
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    query: dict[str, str] = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            query[name] = value
    return query


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), or ``None``."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def origin_allowed(options: ServerOptions, scope: Scope) -> bool:
    """Apply :attr:`ServerOptions.cors_allowed_origins` to the request's ``Origin``.

    A request without ``Origin`` (not from a browser) and a same-origin one
    (the ``Origin`` names the ``Host``: the app's own page) always pass; a
    cross-origin one passes when the setting allows it.
    """
    origin = header(scope, b"origin")
    if origin is None:
        return True
    allowed = options.cors_allowed_origins
    if allowed == "*":
        return True
    if allowed is not None and origin in allowed:
        return True
    host = header(scope, b"host")
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def certificate_names(certfile: str) -> list[str]:
    """The DNS names (and IP addresses) a PEM certificate is valid for.

    Raises:
        ValueError: the file cannot be read as a certificate.
    """
    try:
        decoded: dict[str, Any] = ssl._ssl._test_decode_cert(certfile)  # type: ignore[attr-defined]
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot read certificate {certfile!r}: {exc}") from exc
    names = [
        value for kind, value in decoded.get("subjectAltName", ()) if kind in ("DNS", "IP Address")
    ]
    if not names:
        for rdn in decoded.get("subject", ()):
            names.extend(value for key, value in rdn if key == "commonName")
    return names


class HostNames:
    """The host names a server answers (``rejectInvalidHostnames``).

    Names may hold wildcards as certificates do (``*.example.com``); case
    does not matter and the port of the ``Host`` header is ignored.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.patterns = [name.lower() for name in names]

    @classmethod
    def from_options(cls, options: ServerOptions) -> HostNames | None:
        """The names of :attr:`ServerOptions.valid_hostnames`, else of
        :attr:`ServerOptions.hostnames_certificate`; ``None`` when any host goes.

        Raises:
            ValueError: the certificate cannot be read.
        """
        if options.valid_hostnames is not None:
            return cls(options.valid_hostnames)
        if options.hostnames_certificate is not None:
            return cls(certificate_names(options.hostnames_certificate))
        return None

    def allowed(self, host: str | None) -> bool:
        """Whether a ``Host`` header names one of these (no header: no)."""
        if not host:
            return False
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)


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
