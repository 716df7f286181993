"""Aborting a websocket's TCP connection from inside its ASGI call.

ASGI has no way to say "drop this connection now". What the servers do when
the app's websocket call ends (returns, raises or sends ``websocket.close``)
while the client reads nothing:

* hypercorn's trio worker writes under a shield (``TCPServer.protocol_send``):
  a write blocked by a client that reads nothing cannot be cancelled, and
  every later write (the close frame, the one it sends when the call returns)
  waits behind it on the connection's send lock. The connection, its task and
  the app's call stay until the peer goes.
* hypercorn's asyncio worker and uvicorn buffer what they cannot write and
  close with ``transport.close()``, which keeps the socket open until that
  buffer is written: for as long as the peer keeps its window shut.

So gosf finds the connection behind the ASGI ``send`` callable when it has to
(only then: an idle client costs nothing for it) and aborts it: the socket is
closed at once with ``SO_LINGER`` zero, so the kernel resets the connection
instead of keeping unsent data for the peer. A blocked write then ends (trio:
``ClosedResourceError``, asyncio: ``ConnectionResetError``, which the servers
take as the client's going). Only HTTP/1.1 connections are aborted: over
HTTP/2 the websocket shares its connection with other requests.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ("find_abort",)

log = logging.getLogger("gosf.engineio")

_LINGER_RESET = struct.pack("ii", 1, 0)
"""``SO_LINGER`` on with a zero timeout: closing the socket resets the connection."""

_MULTIPLEXED = frozenset({"hypercorn.protocol.h2", "hypercorn.protocol.h3"})
"""hypercorn's protocols that carry a websocket among other requests (an
upgraded session's scope is its first polling request's, so the websocket's
HTTP version is checked on the way too)."""

_MOST_HOPS = 4
"""How far :func:`find_abort` follows ``send`` callables (hypercorn: the
websocket stream, the HTTP/1.1 protocol, the TCP server)."""


def find_abort(send: Any, scope: Mapping[str, Any]) -> Callable[[], None] | None:
    """What aborts the TCP connection the ASGI ``send`` callable writes to,
    or ``None`` when it cannot be found (another ASGI server, a middleware's
    ``send``, an HTTP/2 connection)."""
    if scope.get("http_version", "1.1") not in ("1.0", "1.1"):
        return None
    owner = getattr(send, "__self__", None)
    for _ in range(_MOST_HOPS):
        if owner is None:
            return None
        module = type(owner).__module__
        if module in _MULTIPLEXED:
            return None  # the connection carries other requests too
        if module.startswith("uvicorn.protocols.websockets."):
            return _asyncio_abort(owner.transport)
        if module == "hypercorn.asyncio.tcp_server":
            return _asyncio_abort(owner.writer.transport)
        if module == "hypercorn.trio.tcp_server":
            stream = owner.stream
            stream = getattr(stream, "transport_stream", stream)  # under TLS
            return _trio_abort(stream.socket)
        # hypercorn: a stream's send is its protocol's, whose send is the server's.
        owner = getattr(getattr(owner, "send", None), "__self__", None)
    return None


def _reset_on_close(sock: Any) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:  # already closed, or not a TCP socket
        log.debug("could not set SO_LINGER", exc_info=True)


def _asyncio_abort(transport: Any) -> Callable[[], None]:
    def abort() -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _reset_on_close(sock)
        transport.abort()

    return abort


def _trio_abort(sock: Any) -> Callable[[], None]:
    def abort() -> None:
        _reset_on_close(sock)
        sock.close()  # wakes a task blocked writing to it

    return abort
