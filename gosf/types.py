"""The ASGI types gosf's apps and servers are written against.

An ASGI application is ``async def app(scope, receive, send)``: ``scope``
describes the connection, ``receive()`` returns the next event from the
server, ``send(event)`` sends one. gosf's :class:`gosf.App` and
:class:`gosf.SocketIOServer` are such applications, and ``other_app`` takes
one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ("ASGIApp", "ASGIMessage", "Receive", "Scope", "Send")

Scope = MutableMapping[str, Any]
"""The connection's description (``type``, ``path``, ``headers``, ...)."""
ASGIMessage = MutableMapping[str, Any]
"""One event between the server and the app (``{"type": "websocket.send", ...}``)."""
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
