"""The log and the parked sessions of connection state recovery, in this
process's memory: :class:`MemoryStore`, the :class:`SessionStore` every
namespace with recovery on has (``recovery.py`` has the rules it keeps, and
their bounds; ``handover.py`` the asking of other processes).
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import islice

import anyio

from .._options import Recovery
from ..protocol.engineio import Packet as EnginePacket
from ..protocol.engineio import message
from ..protocol.parser import JSON_PARSER, Parser
from .recovery import Handed, ParkedSession, with_offset

__all__ = ("MAX_ORIGINS", "Fetch", "MemoryStore")


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
