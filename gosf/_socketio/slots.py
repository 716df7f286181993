"""Handler slots: who may run a handler, how many at once, and the queue past them.

Each client has ``max_concurrent_handlers`` handler slots (a counter on its
:class:`~gosf._socketio.connection.Connection`). An EVENT the server reads takes a free
slot and its handler starts in a worker of its socket (``gosf._socketio.workers``);
the slot is freed when the handler ends.

Backpressure, the rule: an EVENT that finds every slot taken waits in the
connection's queue (at most ``MAX_QUEUED_EVENTS``, in the order read), and the
reader goes on reading, so the client's PONGs, CLOSE and ACKs are still read.
A slot that frees goes to the queue's first event. Only when the queue is full
too does the reader wait (for room in it), so a client's events cost at most
``max_concurrent_handlers + MAX_QUEUED_EVENTS`` messages of ``max_payload``
bytes; while it waits, the session's heartbeat is told (``hold_reading``) not
to blame the client for the PONGs left unread. Queued events of a namespace
the client leaves, or of a session that closes, are dropped: their handlers
would have been cancelled.

:class:`HandlerSlots` is the server's (one for all its clients): it also
counts the handlers running, for a graceful shutdown to wait on.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Protocol

import anyio

from .._engineio.session import EngineSession
from ..protocol.errors import LocalProtocolError
from ..protocol.socketio import Packet
from .connection import Connection
from .namespace import EventHandler
from .observers import Observers
from .socket import Socket

__all__ = ("MAX_QUEUED_EVENTS", "HandlerSlots", "Unencodable")

log = logging.getLogger("gosf")

MAX_QUEUED_EVENTS = 16
"""Events one client may have waiting for a handler slot before the server
stops reading it (see the module's docstring)."""


class Unencodable(Protocol):
    """Logs an answer that JSON cannot carry (``SocketIOServer.log_unencodable``)."""

    def __call__(
        self, what: str, event: str, sid: str, error: LocalProtocolError, instead: str
    ) -> None: ...


class HandlerSlots:
    """Starts the handlers of EVENTs in their clients' slots, queues the rest
    (see the module), and counts the handlers running."""

    __slots__ = ("_idle", "inflight", "observer", "unencodable")

    def __init__(self, unencodable: Unencodable) -> None:
        self.unencodable = unencodable
        self.observer: Observers | None = None
        """The server's observers, ``None`` while it has none (set by the server)."""
        self.inflight = 0
        """Handlers running (their slots taken), in every client."""
        self._idle: anyio.Event | None = None

    def start(self, conn: Connection, socket: Socket, packet: Packet) -> bool:
        """Start the handler of an EVENT in a handler slot the caller took (and
        counted in :attr:`inflight`).

        Returns whether one started; if not (no handler), the slot is still the caller's.
        """
        event, *args = packet.data
        ns = socket.namespace
        handler = ns.handlers.get(event)
        if handler is None and ns.catch_all is None:
            log.debug("no handler for %r in %s", event, ns.name)
            return False
        socket.workers.start(self._run, conn, socket, handler, event, args, packet.id)
        return True

    async def queue(
        self, session: EngineSession, conn: Connection, socket: Socket, packet: Packet
    ) -> None:
        """Queue an EVENT that found every handler slot taken; when the queue is
        full, first wait for room in it (the client is not read meanwhile)."""
        queue = conn.queue
        if queue is None:
            queue = conn.queue = deque()
        if len(queue) >= MAX_QUEUED_EVENTS:
            # Not reading the client means not reading its PONGs either: the
            # heartbeat is told so, and does not count that time against it.
            session.hold_reading(True)
            try:
                while len(queue) >= MAX_QUEUED_EVENTS:
                    if conn.queue_room is None:
                        conn.queue_room = session.server.primitives.event()
                    await conn.queue_room.wait()
            finally:
                session.hold_reading(False)
            if socket.workers.closed or session.closed:
                return  # disconnected meanwhile: its handler would be cancelled
            if conn.free_slots:  # the queue ran empty meanwhile: no one to overtake
                conn.free_slots -= 1
                self.inflight += 1
                if not self.start(conn, socket, packet):
                    self.done(conn)
                return
        queue.append((socket, packet))

    @staticmethod
    def drop_queued(conn: Connection, socket: Socket) -> None:
        """Drop the queued events of a socket that closed (their handlers would be cancelled)."""
        queue = conn.queue
        if queue and any(queued is socket for queued, _ in queue):
            kept = [entry for entry in queue if entry[0] is not socket]
            queue.clear()
            queue.extend(kept)
            room = conn.queue_room
            if room is not None:
                conn.queue_room = None
                room.set()

    async def _run(
        self,
        conn: Connection,
        socket: Socket,
        handler: EventHandler | None,
        event: str,
        args: list[Any],
        ack_id: int | None,
    ) -> None:
        """Run an EVENT's handler (``None``: the namespace's catch-all, which
        answers itself), log what it raises, free its slot, tell the observers
        how long it took. One coroutine, the ack included (a fast path: see
        "Fast paths" in docs/performance.md)."""
        observer = self.observer
        started = time.perf_counter() if observer is not None else 0.0
        failed = False
        try:
            if handler is None:
                catch_all = socket.namespace.catch_all
                assert catch_all is not None  # checked by start
                await catch_all(socket, event, args, ack_id)
            else:
                result = await handler(socket, *args)
                if ack_id is not None:
                    try:
                        if result is None:
                            ack = socket.ack(ack_id)
                        elif isinstance(result, tuple):
                            ack = socket.ack(ack_id, *result)
                        else:
                            ack = socket.ack(ack_id, result)
                    except LocalProtocolError as exc:
                        # JSON cannot carry the result: the client gets an empty
                        # ack rather than waiting for one that never comes.
                        self.unencodable("ack", event, socket.sid, exc, "an empty ack")
                        ack = socket.ack(ack_id)
                    await ack
        except Exception:
            failed = True
            log.exception("handler for %r failed (socket %s)", event, socket.sid)
        finally:
            self.done(conn)
        if observer is not None:  # not when cancelled: the exception goes on from finally
            observer.finished(socket, event, time.perf_counter() - started, failed)

    def done(self, conn: Connection) -> None:
        """A handler slot is free: the first queued event takes it, else it is counted free."""
        queue = conn.queue
        while queue:
            socket, packet = queue.popleft()
            room = conn.queue_room
            if room is not None:
                conn.queue_room = None
                room.set()
            if socket.workers.closed or socket.session.closed:
                continue  # its handler would be cancelled at once
            try:
                if self.start(conn, socket, packet):
                    return  # the slot (and its count in inflight) is the event's now
            except RuntimeError:  # the session is ending: no task group to start in
                continue
        conn.free_slots += 1
        self.inflight -= 1
        if not self.inflight and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def wait_idle(self) -> None:
        """Wait until no event handler is running."""
        while self.inflight:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()
