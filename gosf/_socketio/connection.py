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
from ..protocol.engineio import Packet as EnginePacket
from ..protocol.errors import RemoteProtocolError
from ..protocol.parser import JSON_PARSER, PacketDecoder, Parser
from ..protocol.session import CloseReason
from ..protocol.socketio import Packet, PacketType
from .adapter import to_engine
from .namespace import Namespace
from .observers import Observers
from .recovery import PID_LENGTH, ParkedSession, SessionStore, new_pid
from .socket import Socket

__all__ = ("ENGINE_QUERY", "Connection", "auth_of")

log = logging.getLogger("gosf")

TAKE_OVER_WAIT = 5.0
"""Seconds a reconnecting client waits for its old session, not yet seen to
have dropped, to be closed and parked (its handlers end first)."""

ENGINE_QUERY = ("EIO", "transport", "sid", "t", "b64", "j")
"""Query parameters of Engine.IO itself, not part of a socket.io 2.x client's auth query."""


class Connection:
    __slots__ = (
        "connect_due",
        "decoder",
        "free_slots",
        "parser",
        "queue",
        "queue_room",
        "received_size",
        "sockets",
    )

    def __init__(
        self,
        protocol: int,
        max_handlers: int,
        max_payload: int,
        connect_due: float,
        parser: Parser = JSON_PARSER,
    ) -> None:
        """``connect_due``: when the session closes unless it has joined a
        namespace by then (anyio's clock; see :meth:`check_connect_due`);
        ``parser``: the server's codec."""
        self.parser = parser
        # One packet's attachments together are bounded as one message is.
        self.decoder: PacketDecoder = parser.decoder(protocol, max_attachment_bytes=max_payload)
        self.sockets: dict[str, Socket] = {}
        # Handler slots: a counter (cheaper than a semaphore on the hot path).
        self.free_slots = max_handlers
        # Events waiting for a slot, in order (made when first needed; never
        # holds any while a slot is free), and an event while the reader
        # waits for room in it.
        self.queue: deque[tuple[Socket, Packet]] | None = None
        self.queue_room: Event | None = None
        # Dropped once a namespace is connected.
        self.connect_due: float | None = connect_due
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
            refuse(session, None, protocol, name, refusal, observer, self.parser)
            return
        socket = Socket(ns, session, auth, self.sockets)
        store = ns.adapter.recovery if protocol == 5 else None
        parked: ParkedSession | None = None
        missed: list[list[EnginePacket]] | None = None
        if store is not None:
            parked, missed = await _take_back(store, ns, session, auth)
            if parked is None:
                socket.pid = new_pid()
            else:
                socket.sid, socket.pid, socket.state = parked.sid, parked.pid, parked.state
                socket.recovered = True
        skip = parked is not None and store is not None and store.options.skip_connect_handlers
        try:
            if skip:
                for recover in ns.recover_handlers:
                    await recover(socket)
            else:
                for handler in ns.connect_handlers:
                    await handler(socket, auth)
        except ConnectionRefused as exc:
            socket.leave_all()  # the rooms its connect handlers joined
            refuse(session, socket, protocol, name, exc, observer, self.parser)
            return
        except Exception:
            log.exception("connect handler of namespace %s failed", name)
            socket.leave_all()
            refusal = ConnectionRefused("Internal server error")
            refuse(session, socket, protocol, name, refusal, observer, self.parser)
            return
        if session.closed:
            socket.leave_all()
            return
        self.sockets[name] = socket
        self.connect_due = None
        if parked is not None and store is not None:
            # Read again: the handlers may have waited, and what was logged
            # meanwhile is missed too, but for what they sent this socket
            # themselves (it goes out as they sent it).
            missed = await store.replay(parked, _offset(auth))
            if missed is not None:
                missed = [packets for packets in missed if not socket._sent_early(packets)]
        if missed is not None and not _fits(missed, session.max_buffer):
            missed = None
        if socket.recovered and missed is None:
            # Rare: the log dropped what the socket missed while the handlers
            # ran. It keeps its identity; ``recovered`` false tells the client
            # it may have missed events.
            socket.recovered = False
        ns.adapter.attach(socket)  # in its own room from now on
        if parked is not None:
            _rejoin(ns, socket, parked.rooms)
        if protocol == 5:
            reply: dict[str, Any] = {"sid": socket.sid}
            if socket.pid is not None:
                reply["pid"] = socket.pid
        packet = Packet(PacketType.CONNECT, name, reply if protocol == 5 else None)
        parts = self.parser.encode(packet, protocol)
        # Here and below: the reader that gave us the CONNECT writes these
        # when this returns (no await from here on), not a writer task.
        session.send_nowait(to_engine(parts), in_message=True)
        if observer is not None:
            observer.sent(socket, packet, parts)
        if store is not None:
            # Nothing since the replay was read has been logged (no await between).
            socket._since = store.position()
            if missed:
                session.send_nowait([p for packets in missed for p in packets], in_message=True)
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

    def check_connect_due(self, session: EngineSession) -> None:
        """Close the session if it has joined no namespace by its connect
        deadline; else have it beat again by then (``EngineSession.beat_by``).

        Called when the session opens and at each of its heartbeats: the
        deadline takes no task, so a connect starts none.
        """
        due = self.connect_due
        if due is None:
            return
        if anyio.current_time() >= due:
            session.close(CloseReason.CONNECT_TIMEOUT)
        else:
            session.beat_by(due)


def refuse(
    session: EngineSession,
    socket: Socket | None,
    protocol: int,
    name: str,
    exc: ConnectionRefused,
    observer: Observers | None,
    parser: Parser = JSON_PARSER,
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
    parts = parser.encode(packet, protocol)
    session.send_nowait(to_engine(parts))
    if observer is not None:
        observer.sent(socket, packet, parts)


async def _take_back(
    store: SessionStore, ns: Namespace, session: EngineSession, auth: dict[str, Any]
) -> tuple[ParkedSession | None, list[list[EnginePacket]] | None]:
    """The session a CONNECT's ``pid`` names and what it missed, or ``(None, None)``
    for a fresh session: none parked, an offset that is no string, or more
    missed than the client may have queued."""
    pid = auth.get("pid")
    offset = auth.get("offset")
    if not isinstance(pid, str) or not isinstance(offset, str | None):
        # A malformed offset is no "nothing received": the log cannot vouch
        # for it, and a replay from the connection could repeat events.
        return None, None
    parked = await store.take(pid, _offset(auth))
    if parked is None:
        parked = await _take_over(store, ns, session, pid)
    if parked is None or parked.sid in ns.adapter.sockets:
        return None, None
    missed = await store.replay(parked, _offset(auth))
    if missed is None or not _fits(missed, session.max_buffer):
        return None, None
    return parked, missed


async def _take_over(
    store: SessionStore, ns: Namespace, session: EngineSession, pid: str
) -> ParkedSession | None:
    """The session ``pid`` while its socket still looks connected: the client
    is back before the server noticed it had dropped (its heartbeat had not
    failed yet). Only that client knows the pid, so its word is taken: the
    old session is closed as a lost transport, and parked, within
    ``TAKE_OVER_WAIT`` seconds, or the client gets a fresh session."""
    if len(pid) != PID_LENGTH:
        return None  # not one of ours: no search
    stale = next((s for s in ns.adapter.sockets.values() if s.pid == pid), None)
    if stale is None or stale.session is session:
        return None
    # Nothing is flushed to the old transport: its client is here, on this
    # one, and gets what it missed from the log. A graceful close would wait
    # for it to fetch its last packets (long-polling), which it never does.
    stale.session.close(CloseReason.TRANSPORT_CLOSE, discard=True)
    with anyio.move_on_after(TAKE_OVER_WAIT):
        await stale.session.wait_finished()
    return await store.take(pid)


def _fits(missed: list[list[EnginePacket]], max_buffer: int) -> bool:
    """Whether a replay fits the client's outbound queue, beside the CONNECT reply."""
    return sum(map(len, missed)) < max_buffer


def _offset(auth: dict[str, Any]) -> str | None:
    offset = auth.get("offset")
    return offset if isinstance(offset, str) else None


def _rejoin(ns: Namespace, socket: Socket, rooms: frozenset[str]) -> None:
    """Put a recovered socket back in the rooms it was in (its own: as it was)."""
    for room in rooms:
        socket.join(room)
    if socket.sid not in rooms:
        socket.leave(socket.sid)


def auth_of(packet: Packet) -> dict[str, Any]:
    """The auth of a CONNECT: its object, or (revision 4) its query string's parameters."""
    data = packet.data
    if not isinstance(data, dict):
        return {}
    if "query" in data and isinstance(data["query"], str) and len(data) == 1:
        return dict(parse_qsl(data["query"], keep_blank_values=True))
    return data
