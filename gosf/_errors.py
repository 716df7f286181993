"""Every public exception of gosf, in one place.

::

    GosfError
    ├── ConnectionRefused          raised by a connect handler to refuse a client
    ├── Disconnected               the client went away while the server waited on it
    ├── MicroserviceError          a microservice call failed
    │   ├── MicroserviceUnavailable    the service is not connected
    │   └── MicroserviceTimeout        no answer in time (also a TimeoutError)
    └── WebSocketError             the websocket client's errors
        ├── HandshakeError             the server refused the upgrade (HTTP status, body)
        └── ConnectionClosed           the websocket closed (its close code)
    MessageError (a ValueError)    a payload that is not a GOSF message
    ServerNotRunning (a RuntimeError)  a request reached a server that is not running

Protocol errors live in :mod:`gosf.protocol.errors`; an ack that does not come
in time raises the built-in :class:`TimeoutError` (as :func:`anyio.fail_after`).
"""

from __future__ import annotations

from typing import Any

__all__ = (
    "ConnectionClosed",
    "ConnectionRefused",
    "Disconnected",
    "GosfError",
    "HandshakeError",
    "MessageError",
    "MicroserviceError",
    "MicroserviceTimeout",
    "MicroserviceUnavailable",
    "ServerNotRunning",
    "WebSocketError",
)


class GosfError(Exception):
    """Base class of gosf's own exceptions."""


class ConnectionRefused(GosfError):
    """Raise from a connect handler to refuse the connection.

    The client receives a CONNECT_ERROR packet carrying ``message`` (and
    ``data`` when given, Socket.IO 5 only): socket.io clients report it as a
    ``connect_error`` event.
    """

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        """The refusal's message (``"Connection refused"`` unless given)."""
        self.data = data
        """Extra data for the client (Socket.IO 5), or ``None``."""


class Disconnected(GosfError):
    """The client disconnected before answering (e.g. during :meth:`Socket.call`)."""


class MicroserviceError(GosfError):
    """Base class of the errors of microservice calls."""


class MicroserviceUnavailable(MicroserviceError):
    """The service is not connected (or the connection dropped during the call)."""


class MicroserviceTimeout(MicroserviceError, TimeoutError):
    """The service did not answer in time."""


class WebSocketError(GosfError):
    """Base class of the websocket client's errors."""


class HandshakeError(WebSocketError):
    """The server answered the upgrade request with an HTTP response, not 101."""

    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__(f"websocket upgrade refused with HTTP {status_code}: {body[:200]!r}")
        self.status_code = status_code
        self.body = body


class ConnectionClosed(WebSocketError):
    """The websocket is closed; ``code`` is the close code (1006: closed without a close frame)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"websocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class MessageError(ValueError):
    """A payload that is not a GOSF message; ``reason`` says why, briefly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ServerNotRunning(RuntimeError):
    """A request arrived while the server is not running (or is shutting down).

    Run the app under an ASGI server with lifespan support (hypercorn and
    uvicorn have it on by default) or inside ``async with server:``.
    """
