"""A client's Socket.IO connection, one per Engine.IO session, and how it joins namespaces.

The server keeps a :class:`Connection` on each session (``EngineSession.upper``):
the packet decoder, the client's sockets by namespace, the handler slots and
the queue of events waiting for one (the server's docstring has that rule).

Joining a namespace, the rule: a CONNECT runs the namespace's connect handlers
in the reader (the next packet is read once they are done), then answers
CONNECT with the socket's sid, or CONNECT_ERROR when a handler refused (or
failed, or the namespace does not exist). A client that has joined no
namespace ``connect_timeout`` seconds after the session opened is closed.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

import anyio

from .._engineio.event import Event
from .._engineio.session import EngineSession
from .._errors import ConnectionRefused
from ..protocol.errors import RemoteProtocolError
from ..protocol.session import CloseReason
from ..protocol.socketio import Decoder, Packet, PacketType, encode
from .adapter import to_engine
from .namespace import Namespace
from .observer import Observers
from .socket import Socket

__all__ = ("ENGINE_QUERY", "Connection", "auth_of")

log = logging.getLogger("gosf")

ENGINE_QUERY = ("EIO", "transport", "sid", "t", "b64", "j")
"""Query parameters of Engine.IO itself, not part of a socket.io 2.x client's auth query."""


class Connection:
    __slots__ = (
        "connected",
        "decoder",
        "free_slots",
        "queue",
        "queue_room",
        "received_size",
        "sockets",
    )

    def __init__(
        self, protocol: int, max_handlers: int, max_payload: int, connected: Event
    ) -> None:
        """``connected``: an unset event of the server's kind (see ``_engineio/event.py``)."""
        # One packet's attachments together are bounded as one message is.
        self.decoder = Decoder(protocol, max_attachment_bytes=max_payload)
        self.sockets: dict[str, Socket] = {}
        # Handler slots: a counter (cheaper than a semaphore on the hot path).
        self.free_slots = max_handlers
        # Events waiting for a slot, in order (made when first needed; never
        # holds any while a slot is free), and an event while the reader
        # waits for room in it.
        self.queue: deque[tuple[Socket, Packet]] | None = None
        self.queue_room: Event | None = None
        # Set, then dropped, once a namespace is connected (the deadline's wait ends).
        self.connected: Event | None = connected
        # Bytes of the packet being decoded so far (its text and attachments), for observers.
        self.received_size = 0

    async def connect(
        self,
        session: EngineSession,
        ns: Namespace | None,
        name: str,
        auth: dict[str, Any],
        observer: Observers | None,
    ) -> None:
        """Join the namespace ``name`` (``ns``, ``None`` when there is none).

        Raises:
            RemoteProtocolError: the client has joined it already (revision 5).
        """
        protocol = 5 if session.protocol >= 4 else 4
        if name in self.sockets:
            if protocol == 4:
                return  # socket.io 2.x clients may confirm the implicit "/" connect
            raise RemoteProtocolError(f"namespace {name!r} is already connected")
        if ns is None:
            refusal = ConnectionRefused("Invalid namespace")
            refuse(session, None, protocol, name, refusal, observer)
            return
        socket = Socket(ns, session, auth, self.sockets)
        try:
            for handler in ns.connect_handlers:
                await handler(socket, auth)
        except ConnectionRefused as exc:
            socket.leave_all()  # the rooms its connect handlers joined
            refuse(session, socket, protocol, name, exc, observer)
            return
        except Exception:
            log.exception("connect handler of namespace %s failed", name)
            socket.leave_all()
            refusal = ConnectionRefused("Internal server error")
            refuse(session, socket, protocol, name, refusal, observer)
            return
        if session.closed:
            socket.leave_all()
            return
        self.sockets[name] = socket
        if self.connected is not None:
            self.connected.set()
            self.connected = None
        ns.adapter.attach(socket)  # in its own room from now on
        packet = Packet(PacketType.CONNECT, name, {"sid": socket.sid} if protocol == 5 else None)
        parts = encode(packet, protocol)
        session.send_nowait(to_engine(parts))
        if observer is not None:
            observer.sent(socket, packet, parts)
        socket._connected()
        log.debug(
            "socket %s joined %s (session %s, %s)", socket.sid, name, session.sid, session.transport
        )
        if observer is not None:
            observer.connected(socket)

    def socket_for(self, packet: Packet) -> Socket:
        """The socket ``packet`` is for.

        Raises:
            RemoteProtocolError: the client has not joined the packet's namespace.
        """
        socket = self.sockets.get(packet.namespace)
        if socket is None:
            raise RemoteProtocolError(f"namespace {packet.namespace!r} is not connected")
        return socket

    def report_received(
        self, observer: Observers, packet: Packet | None, data: str | bytes
    ) -> None:
        """Report a packet received, once its last part (of several, with
        attachments) is: its size counts them all."""
        if isinstance(data, str) and not data.isascii():  # size_of's rule, inlined
            size = self.received_size + len(data.encode())
        else:
            size = self.received_size + len(data)
        if packet is None:
            self.received_size = size
            return
        self.received_size = 0
        observer.received(self.sockets.get(packet.namespace), packet, size)

    async def connect_deadline(self, session: EngineSession, timeout: float) -> None:  # noqa: ASYNC109
        """Close the session unless it joins a namespace within ``timeout`` seconds."""
        connected = self.connected
        if connected is None:
            return
        with anyio.move_on_after(timeout):
            await connected.wait()
            return  # the task ends as soon as a namespace is connected
        session.close(CloseReason.CONNECT_TIMEOUT)


def refuse(
    session: EngineSession,
    socket: Socket | None,
    protocol: int,
    name: str,
    exc: ConnectionRefused,
    observer: Observers | None,
) -> None:
    """Answer a CONNECT with CONNECT_ERROR (``socket``: the one refused, if it was made)."""
    if protocol == 5:
        data: Any = {"message": exc.message}
        if exc.data is not None:
            data["data"] = exc.data
    else:
        data = exc.message if exc.data is None else exc.data
    packet = Packet(PacketType.CONNECT_ERROR, name, data)
    log.debug("session %s: connection to %s refused: %s", session.sid, name, exc.message)
    parts = encode(packet, protocol)
    session.send_nowait(to_engine(parts))
    if observer is not None:
        observer.sent(socket, packet, parts)


def auth_of(packet: Packet) -> dict[str, Any]:
    """The auth of a CONNECT: its object, or (revision 4) its query string's parameters."""
    data = packet.data
    if not isinstance(data, dict):
        return {}
    if "query" in data and isinstance(data["query"], str) and len(data) == 1:
        return dict(parse_qsl(data["query"], keep_blank_values=True))
    return data
