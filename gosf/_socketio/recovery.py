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
the processes of a cluster. ``MemoryStore`` (``recovery_store.py``) keeps its log and sessions
in this process; given a ``fetch``, it asks the other processes of the
cluster for a session it does not hold (``gosf._socketio.handover`` has that
side, and why offsets are the same in every process).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from .._options import Recovery
from ..protocol.engineio import Packet as EnginePacket
from ..protocol.parser import JSON_PARSER, Parser
from ..protocol.session import CloseReason

__all__ = (
    "PID_LENGTH",
    "RECOVERABLE",
    "SWEEP_INTERVAL",
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


async def sweep_every(stores: Callable[[], Iterable[SessionStore]], interval: float) -> None:
    """Sweep every store each ``interval`` seconds, forever (a task of the server's)."""
    while True:
        await anyio.sleep(interval)
        for store in stores():
            store.sweep()
