"""The sans-IO core: Engine.IO and Socket.IO codecs, and the Engine.IO session's
state machine (:mod:`.session`), none of which touches a socket or a clock.

Nothing in this package imports anyio, trio, asyncio or socket (a test in
``tests/test_layout.py`` enforces it), so it can be driven by any I/O layer and
tested without an event loop.
"""

from __future__ import annotations

from . import engineio, parser, session, socketio, socketio_msgpack
from .errors import LocalProtocolError, PayloadTooLarge, ProtocolError, RemoteProtocolError

__all__ = (
    "LocalProtocolError",
    "PayloadTooLarge",
    "ProtocolError",
    "RemoteProtocolError",
    "engineio",
    "parser",
    "session",
    "socketio",
    "socketio_msgpack",
)
