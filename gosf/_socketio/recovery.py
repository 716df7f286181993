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
the processes of a cluster. :class:`MemoryStore` keeps its log and sessions
in this process; given a ``fetch``, it asks the other processes of the
cluster for a session it does not hold (``gosf._socketio.handover`` has that
side, and why offsets are the same in every process).
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
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
    "Handed",
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


@dataclass(frozen=True, slots=True)
class Handed:
    """What the process that held a session handed over with it: what the
    session missed there after the client's offset, and the newest broadcast
    of each origin its log had then (see ``gosf._socketio.handover``)."""

    missed: list[list[EnginePacket]]
    latest: dict[str, int]
    fresh_after: float = 0.0
    """Of an origin missing from ``latest``, the broadcasts logged here since
    then (this store's clock) are new to the session: older ones were sent
    before the other process started, newer ones may not have reached it."""


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
    handed: Handed | None = None
    """Set when another process held the session and handed it over."""


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
        *,
        offset: str | None = None,
        shared: bool = False,
    ) -> list[EnginePacket]:
        """Log an encoded event sent to ``rooms`` (all: ``None``) but ``skip``
        and the members of ``skip_rooms``; returns it with its offset, ready
        to queue. ``offset``: the one another process gave the broadcast;
        ``shared``: a broadcast, which the other processes log too."""
        ...

    def position(self) -> str:
        """The offset of the last event logged (see :attr:`ParkedSession.since`)."""
        ...

    async def park(self, session: ParkedSession) -> None:
        """Keep ``session`` for ``max_disconnection_duration`` seconds."""
        ...

    async def take(self, pid: str, offset: str | None = None) -> ParkedSession | None:
        """The session parked under ``pid``, no longer parked; ``None`` if there
        is none (or it expired). ``offset``: the client's, for a store that
        fetches the session from elsewhere with what it missed there."""
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
    pos: int  # this log's own count, every event
    offset: str
    origin: str  # the process (its store) that gave the offset, and its number there
    seq: int
    shared: bool  # a broadcast, which every process of a cluster logs; not one socket's event
    at: float
    rooms: tuple[str, ...] | None
    skip: str | None
    skip_rooms: tuple[str, ...]
    packets: list[EnginePacket]
    size: int


Fetch = Callable[[str, str | None], Awaitable[ParkedSession | None]]
"""Asks the other processes for the session of a pid, given the client's offset."""

MAX_ORIGINS = 1024
"""Origins (processes' stores) whose newest broadcast a store remembers."""


class MemoryStore:
    """A :class:`SessionStore` in this process's memory (see the module for its bounds).

    An offset is its origin, the store that first logged the event (a random
    prefix), then the event's number there in hex: an offset another store
    wrote (another process, an earlier run) is never taken for one of its
    own. A broadcast from another process that carries its origin's offset
    is logged under that offset, so that every process of a cluster knows an
    event by the same offset.
    """

    def __init__(
        self,
        options: Recovery,
        parser: Parser = JSON_PARSER,
        clock: Callable[[], float] = time.monotonic,
        fetch: Fetch | None = None,
    ) -> None:
        self._options = options
        self._parser = parser
        self._clock = clock
        self.fetch = fetch
        """Asks the other processes of a cluster for a session not parked here."""
        # The bounds, read on every event logged.
        self._max_age = options.max_disconnection_duration
        self._max_packets = options.max_packets
        self._max_bytes = options.max_bytes
        self.origin = secrets.token_hex(3)
        """The prefix of the offsets this store gives."""
        self._log: deque[_Entry] = deque()
        self._index: dict[str, int] = {}  # offset -> position, for what the log holds
        # The last event dropped from the log: a client that got it misses nothing dropped.
        self._dropped = ("", -1)
        self._next = 0  # the number of the next event of this origin
        self._pos = 0  # the position of the next event logged
        self._bytes = 0
        # The newest broadcast logged of each origin, least recently updated first.
        self._latest: dict[str, int] = {}
        self._progress: anyio.Event | None = None
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
        *,
        offset: str | None = None,
        shared: bool = False,
    ) -> list[EnginePacket]:
        """Log an event (see :class:`SessionStore`); ``offset``: the one its
        origin gave it, for a broadcast of another process; ``shared``: a
        broadcast, which the other processes log too."""
        origin, seq = _split(offset) if offset is not None else (None, 0)
        if origin is None or offset is None:
            origin, seq = self.origin, self._next
            self._next = seq + 1
            offset = f"{origin}-{seq:x}"
        parts = with_offset(parts, offset, self._parser)
        if len(parts) == 1:  # no attachments, the usual case
            packets = [message(parts[0])]
            size = len(parts[0])
        else:
            packets = [message(part) for part in parts]
            size = sum(map(len, parts))
        now = self._clock()
        pos = self._pos
        self._pos = pos + 1
        log = self._log
        log.append(
            _Entry(pos, offset, origin, seq, shared, now, rooms, skip, skip_rooms, packets, size)
        )
        self._index[offset] = pos
        self._bytes += size
        if shared:
            self._saw(origin, seq)
        if (
            len(log) > self._max_packets
            or self._bytes > self._max_bytes
            or log[0].at < now - self._max_age
        ):
            self._trim(now)
        return packets

    def _saw(self, origin: str, seq: int) -> None:
        latest = self._latest
        latest.pop(origin, None)
        latest[origin] = seq
        if len(latest) > MAX_ORIGINS:
            del latest[next(iter(latest))]
        if self._progress is not None:
            self._progress.set()
            self._progress = None

    def latest(self) -> dict[str, int]:
        """The number of the newest broadcast logged of each origin (a copy)."""
        return dict(self._latest)

    def progress(self) -> anyio.Event:
        """An event set when the next broadcast is logged."""
        if self._progress is None:
            self._progress = anyio.Event()
        return self._progress

    def position(self) -> str:
        if self._log:
            return self._log[-1].offset
        # Nothing left to name it by: the position itself (never an offset).
        return "" if self._pos == 0 else f"@{self._pos - 1}"

    def _position_of(self, offset: str) -> int | None:
        """Where ``offset`` is in this log (``None``: not there, or not any more)."""
        if offset == "":
            return -1
        if offset.startswith("@"):  # a position with nothing left in the log to name it
            try:
                return int(offset[1:])
            except ValueError:
                return None
        dropped, at = self._dropped
        return at if offset == dropped else self._index.get(offset)

    def _trim(self, now: float) -> None:
        log = self._log
        index = self._index
        oldest = now - self._max_age
        while log and (
            len(log) > self._max_packets or self._bytes > self._max_bytes or log[0].at < oldest
        ):
            entry = log.popleft()
            index.pop(entry.offset, None)
            self._dropped = (entry.offset, entry.pos)
            self._bytes -= entry.size

    async def replay(
        self, session: ParkedSession, offset: str | None
    ) -> list[list[EnginePacket]] | None:
        return self.replay_now(session, offset)

    def replay_now(
        self, session: ParkedSession, offset: str | None
    ) -> list[list[EnginePacket]] | None:
        """:meth:`replay`, which never waits here."""
        if session.handed is not None:
            return self._replay_handed(session, session.handed)
        since = self._position_of(session.since)
        if offset is None:
            start = since
        elif _given(offset):
            start = self._position_of(offset)
        else:
            # A bare position ("" or "@n") is no offset the log gave a client:
            # read as one, it would replay what the client has.
            start = None
        if since is None or start is None or start >= self._pos:
            return None
        # An offset older than the socket's connection was given to an earlier
        # one and replayed then (the client keeps its last offset).
        start = max(start, since)
        log = self._log
        first = log[0].pos if log else self._pos
        if start + 1 < first:
            return None  # dropped from the log: some of it may have been for this session
        rooms = session.rooms
        return [
            entry.packets
            for entry in islice(log, start + 1 - first, None)
            if _reaches(entry, rooms, session.sid)
        ]

    def _replay_handed(self, session: ParkedSession, handed: Handed) -> list[list[EnginePacket]]:
        """What the other process handed over, then the broadcasts logged here
        that it had not logged then (newer, by their origin's numbers)."""
        latest = handed.latest
        rooms = session.rooms
        missed = list(handed.missed)
        missed.extend(
            entry.packets
            for entry in self._log
            if entry.shared
            and (
                entry.seq > latest[entry.origin]
                if entry.origin in latest
                else entry.at >= handed.fresh_after
            )
            and _reaches(entry, rooms, session.sid)
        )
        return missed

    def now(self) -> float:
        """This store's clock."""
        return self._clock()

    # -- parked sessions -------------------------------------------------------------------

    async def park(self, session: ParkedSession) -> None:
        session.parked_at = self._clock()
        sessions = self._sessions
        sessions.pop(session.pid, None)
        sessions[session.pid] = session
        while len(sessions) > self._options.max_sessions:
            del sessions[next(iter(sessions))]

    async def take(self, pid: str, offset: str | None = None) -> ParkedSession | None:
        session = self.take_now(pid)
        if session is None and self.fetch is not None:
            return await self.fetch(pid, offset)
        return session

    def take_now(self, pid: str) -> ParkedSession | None:
        """The session parked here under ``pid``, no longer parked (never waits)."""
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


def _split(offset: str) -> tuple[str | None, int]:
    """The origin and number of an offset (``None``: not one gosf wrote)."""
    origin, _, number = offset.rpartition("-")
    try:
        return (origin or None), int(number, 16)
    except ValueError:
        return None, 0


def _given(offset: str) -> bool:
    """Whether ``offset`` may be one a client was given (not a bare position)."""
    return offset != "" and not offset.startswith("@")


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
