"""Errors raised by the sans-IO protocol core.

The split follows h11/wsproto: :class:`RemoteProtocolError` means the peer sent
something the protocol does not allow (the connection that sent it should be
closed); :class:`LocalProtocolError` means this side asked the core to do
something the protocol does not allow (a bug in the caller).

::

    ProtocolError
    ├── LocalProtocolError
    └── RemoteProtocolError
        └── PayloadTooLarge
"""

from __future__ import annotations

__all__ = ("LocalProtocolError", "PayloadTooLarge", "ProtocolError", "RemoteProtocolError")


class ProtocolError(Exception):
    """Base class of every error raised by :mod:`gosf.protocol`."""


class LocalProtocolError(ProtocolError):
    """This side tried to send something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed or not allowed in the current state."""


class PayloadTooLarge(RemoteProtocolError):
    """The peer sent a payload larger than the configured ``maxPayload``."""
