"""Connection state recovery: the log of what was sent, and the sessions parked
after an unexpected disconnect (socket.io's ``connectionStateRecovery``).

How it works (socket.io-adapter's ``SessionAwareAdapter`` is the model):

* With recovery on, every event sent without an ack, and not volatile, gets
  an **offset** as its last argument. The namespace's adapter records it in
  the store's log, encoded once with its offset, beside the rooms it went to
  and the sid and rooms it left out; a socket.io 4.6+ client remembers the last offset it received.
* A Socket.IO 5 socket gets a private session id, the ``pid``, sent with its
  CONNECT reply (``{"sid", "pid"}``). When its session ends unexpectedly
  (:data:`RECOVERABLE`: the transport went away, the heartbeat failed, the
  server shut down) the socket is **parked**: its sid, pid, rooms and state.
  A deliberate disconnect (a Socket.IO DISCONNECT, either way) parks nothing.
* A CONNECT whose auth carries that ``pid`` (and the client's last offset)
  takes the session back: same sid, rooms and state, and every logged packet
  after the offset that the session's rooms would have received, in order,
  queued right after the CONNECT reply and before anything new. A client
  that received nothing sends no offset: the replay then starts where the
  socket connected (:attr:`ParkedSession.since`).
* A client back before the server noticed the drop takes the session
  over: the old connection is closed as a lost transport, and its session
  parked and taken (``gosf._socketio.connection``).
* Anything the log cannot vouch for (an offset it has dropped or never
  wrote, a session older than ``max_disconnection_duration``), or a replay
  larger than the client's outbound queue, gives a fresh session; the
  client sees ``recovered`` false and knows it may have missed events.

Bounds, per namespace: the log holds at most ``max_packets`` events, at most
``max_bytes`` of their encodings, none older than
``max_disconnection_duration``; at most ``max_sessions`` sessions are parked,
none longer than that. The server's task group runs :meth:`MemoryStore.sweep`
now and then to free what has expired; expiry itself is checked on use.

The store sits behind :class:`SessionStore`, the seam for a store shared by
the processes of a cluster (Redis): this module's :class:`MemoryStore`
recovers sessions within one process only.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

import anyio

from .._config import Recovery
from ..protocol.engineio import Packet as EnginePacket
from ..protocol.engineio import message
from ..protocol.parser import JSON_PARSER, Parser
from ..protocol.session import CloseReason

__all__ = (
    "PID_LENGTH",
    "RECOVERABLE",
    "SWEEP_INTERVAL",
    "MemoryStore",
    "ParkedSession",
    "SessionStore",
    "new_pid",
    "sweep_every",
    "with_offset",
)

RECOVERABLE = frozenset(
    {
        CloseReason.TRANSPORT_CLOSE,
        CloseReason.TRANSPORT_ERROR,
        # An Engine.IO CLOSE with no Socket.IO DISCONNECT before it:
        # socket.io-client's engine.close() over long-polling, which the
        # reference server counts as a transport close.
        CloseReason.CLIENT_CLOSE,
        CloseReason.PING_TIMEOUT,
        CloseReason.SERVER_SHUTTING_DOWN,
    }
)
"""The session endings after which a socket is parked: the reference server's
list, in gosf's words (``SERVER_DISCONNECT``, its "forced close", comes after
the application's DISCONNECT, which already parked nothing)."""


SWEEP_INTERVAL = 60.0
"""Seconds between sweeps of the expired sessions and events, at most."""


PID_LENGTH = 20
"""Characters of a pid (15 random bytes, URL-safe base64)."""


def new_pid() -> str:
    """A private session id: never shown to other clients, unlike the sid."""
    return secrets.token_urlsafe(15)


def with_offset(
    parts: list[str | bytes], offset: str, parser: Parser = JSON_PARSER
) -> list[str | bytes]:
    """An encoded EVENT (without ack id) with ``offset`` as its last argument.

    A JSON text packet ends with the event's JSON array: the offset goes in
    before its closing bracket, so the event is not encoded again (offsets
    are made of characters JSON takes as they are). A msgpack one is decoded
    and encoded again, with the offset.
    """
    text = parts[0]
    if isinstance(text, str):
        assert text.endswith("]"), "an encoded EVENT ends with its array"
        tagged = f'{text[:-1]},"{offset}"]'
        return [tagged] if len(parts) == 1 else [tagged, *parts[1:]]
    decoder = parser.decoder(5, max_attachment_bytes=None)
    packet = None
    for part in parts:
        packet = decoder.feed(part)
    assert packet is not None and packet.id is None, "a whole EVENT without ack id"
    event, *args = packet.data
    return parser.encode_event(packet.namespace, event, (*args, offset))


@dataclass(slots=True)
class ParkedSession:
    """A socket kept after an unexpected disconnect, to be taken back by its pid."""

    pid: str
    sid: str
    rooms: frozenset[str]
    state: dict[str, Any]
    """The socket's state itself (the same dict), as handlers left it."""
    since: str
    """The log's position when the socket (re)connected: what the replay
    starts from when the client sends no offset."""
    parked_at: float = field(default=0.0)


class SessionStore(Protocol):
    """Where the log and the parked sessions of one namespace live.

    :meth:`record` is on the broadcast path and never waits; the others may
    (a store shared by a cluster asks its database). A store that does wait
    in :meth:`replay` must itself make sure that what is recorded meanwhile
    reaches the restored socket: the in-memory store never waits, so nothing
    is recorded between the replay and the socket's return to its rooms.
    """

    @property
    def options(self) -> Recovery: ...

    def record(
        self,
        parts: list[str | bytes],
        rooms: tuple[str, ...] | None,
        skip: str | None,
        skip_rooms: tuple[str, ...] = (),
    ) -> list[EnginePacket]:
        """Log an encoded event sent to ``rooms`` (all: ``None``) but ``skip``
        and the members of ``skip_rooms``; returns it with its offset, ready
        to queue."""
        ...

    def position(self) -> str:
        """The offset of the last event logged (see :attr:`ParkedSession.since`)."""
        ...

    async def park(self, session: ParkedSession) -> None:
        """Keep ``session`` for ``max_disconnection_duration`` seconds."""
        ...

    async def take(self, pid: str) -> ParkedSession | None:
        """The session parked under ``pid``, no longer parked; ``None`` if there
        is none (or it expired)."""
        ...

    async def replay(
        self, session: ParkedSession, offset: str | None
    ) -> list[list[EnginePacket]] | None:
        """What ``session`` missed after ``offset`` (its ``since`` when ``None``
        or older), in order; ``None`` when the log cannot say (it dropped
        part of it, or never wrote that offset)."""
        ...

    def sweep(self) -> None:
        """Forget the sessions and events that have expired."""
        ...


@dataclass(slots=True)
class _Entry:
    seq: int
    at: float
    rooms: tuple[str, ...] | None
    skip: str | None
    skip_rooms: tuple[str, ...]
    packets: list[EnginePacket]
    size: int


class MemoryStore:
    """A :class:`SessionStore` in this process's memory (see the module for its bounds).

    Offsets are this store's own: a random prefix, then the event's sequence
    number in hex, so that an offset another store (another process, an
    earlier run) wrote is never taken for one of its own.
    """

    def __init__(
        self,
        options: Recovery,
        parser: Parser = JSON_PARSER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = options
        self._parser = parser
        self._clock = clock
        # The bounds, read on every event logged.
        self._max_age = options.max_disconnection_duration
        self._max_packets = options.max_packets
        self._max_bytes = options.max_bytes
        self._prefix = secrets.token_hex(3) + "-"
        self._log: deque[_Entry] = deque()
        self._next = 0  # the sequence number of the next event
        self._bytes = 0
        self._sessions: dict[str, ParkedSession] = {}  # by pid, oldest first

    @property
    def options(self) -> Recovery:
        return self._options

    def statistics(self) -> dict[str, int]:
        """What the store holds now: events, their bytes, parked sessions."""
        return {"packets": len(self._log), "bytes": self._bytes, "sessions": len(self._sessions)}

    # -- the log ------------------------------------------------------------------------

    def record(
        self,
        parts: list[str | bytes],
        rooms: tuple[str, ...] | None,
        skip: str | None,
        skip_rooms: tuple[str, ...] = (),
    ) -> list[EnginePacket]:
        seq = self._next
        self._next = seq + 1
        parts = with_offset(parts, f"{self._prefix}{seq:x}", self._parser)
        if len(parts) == 1:  # no attachments, the usual case
            packets = [message(parts[0])]
            size = len(parts[0])
        else:
            packets = [message(part) for part in parts]
            size = sum(map(len, parts))
        now = self._clock()
        log = self._log
        log.append(_Entry(seq, now, rooms, skip, skip_rooms, packets, size))
        self._bytes += size
        if (
            len(log) > self._max_packets
            or self._bytes > self._max_bytes
            or log[0].at < now - self._max_age
        ):
            self._trim(now)
        return packets

    def position(self) -> str:
        return f"{self._prefix}{self._next - 1:x}"

    def _trim(self, now: float) -> None:
        log = self._log
        oldest = now - self._max_age
        while log and (
            len(log) > self._max_packets or self._bytes > self._max_bytes or log[0].at < oldest
        ):
            self._bytes -= log.popleft().size

    def _seq(self, offset: str) -> int | None:
        if not offset.startswith(self._prefix):
            return None
        try:
            return int(offset[len(self._prefix) :], 16)
        except ValueError:
            return None

    async def replay(
        self, session: ParkedSession, offset: str | None
    ) -> list[list[EnginePacket]] | None:
        since = self._seq(session.since)
        start = since if offset is None else self._seq(offset)
        if since is None or start is None or start >= self._next:
            return None
        # An offset older than the socket's connection was given to an earlier
        # one and replayed then (the client keeps its last offset).
        start = max(start, since)
        log = self._log
        first = log[0].seq if log else self._next
        if start + 1 < first:
            return None  # dropped from the log: some of it may have been for this session
        rooms = session.rooms
        return [
            entry.packets
            for entry in islice(log, start + 1 - first, None)
            if _reaches(entry, rooms, session.sid)
        ]

    # -- parked sessions -------------------------------------------------------------------

    async def park(self, session: ParkedSession) -> None:
        session.parked_at = self._clock()
        sessions = self._sessions
        sessions.pop(session.pid, None)
        sessions[session.pid] = session
        while len(sessions) > self._options.max_sessions:
            del sessions[next(iter(sessions))]

    async def take(self, pid: str) -> ParkedSession | None:
        session = self._sessions.pop(pid, None)
        if session is None or self._expired(session, self._clock()):
            return None
        return session

    def _expired(self, session: ParkedSession, now: float) -> bool:
        return now - session.parked_at > self._max_age

    def sweep(self) -> None:
        now = self._clock()
        sessions = self._sessions
        while sessions:
            pid, oldest = next(iter(sessions.items()))
            if not self._expired(oldest, now):
                break
            del sessions[pid]
        self._trim(now)


def _reaches(entry: _Entry, rooms: frozenset[str], sid: str) -> bool:
    """Whether a socket in ``rooms`` got ``entry`` (the adapter's delivery rule)."""
    if entry.skip == sid or any(room in rooms for room in entry.skip_rooms):
        return False
    return entry.rooms is None or any(room in rooms for room in entry.rooms)


async def sweep_every(stores: Callable[[], Iterable[SessionStore]], interval: float) -> None:
    """Sweep every store each ``interval`` seconds, forever (a task of the server's)."""
    while True:
        await anyio.sleep(interval)
        for store in stores():
            store.sweep()
