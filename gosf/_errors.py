"""Public exceptions of gosf.

::

    GosfError
    ├── ConnectionRefused   raised by a connect handler to refuse a client
    └── Disconnected        the client went away while the server waited on it

Protocol errors live in :mod:`gosf.protocol.errors`; an ack that does not come
in time raises the built-in :class:`TimeoutError` (as :func:`anyio.fail_after`).
"""

from __future__ import annotations

from typing import Any

__all__ = ("ConnectionRefused", "Disconnected", "GosfError")


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
        self.data = data


class Disconnected(GosfError):
    """The client disconnected before answering (e.g. during :meth:`Socket.call`)."""
