"""Connection state recovery across a cluster: a session parked in one
process, taken back in another, without sticky sessions.

Every process keeps its own log (``gosf._socketio.recovery``), and every
process logs every broadcast of the cluster, under the offset its origin
gave it (``Broadcast.offset``): an event has one offset everywhere. Events
sent to one socket only are logged only where that socket is.

A handover, when a client comes back to process B with the pid of a session
parked in process A:

1. B does not hold the pid: it asks every process (a
   :class:`~gosf.brokers.TakeSession` query through the broker), for at most
   :data:`HANDOVER_TIMEOUT` seconds; no answer in time, a fresh session.
2. A takes the session (it is no longer parked there) and answers with its
   sid, rooms and state, what it missed after the client's offset, from A's
   log, in the order A sent it, and ``latest``: the number of the newest
   broadcast of each origin that A had logged.
3. B waits, for the rest of that time at most, until its own log has
   caught up with ``latest`` for each origin it has heard from (each
   origin's broadcasts arrive in the order they were sent, on any broker):
   a broadcast A had logged but B not yet would otherwise reach the
   restored socket twice, in the replay and live. Not caught up in time, a
   fresh session.
4. B's replay is A's, then each broadcast of B's log newer, by its origin's
   number, than A's ``latest``: those A had not seen (of an origin A never
   heard from, those B logged in the last :data:`HANDOVER_TIMEOUT` seconds
   before it asked). The socket is back in
   its rooms with no wait after that (``Connection.connect``), so every
   later broadcast reaches it live, and none twice.

A state that JSON cannot carry is not handed over (logged): the client gets
a fresh session. What is lost, and when, is in docs/deployment.md.
"""

from __future__ import annotations

import logging

import anyio
import orjson

from ..brokers import Broker, HandedSession, TakeSession
from ..protocol.engineio import message
from .recovery import Handed, ParkedSession, SessionStore
from .recovery_store import MemoryStore

__all__ = ("HANDOVER_TIMEOUT", "Handover", "hand_over")

log = logging.getLogger("gosf")

HANDOVER_TIMEOUT = 3.0
"""Seconds a process waits for another to hand over a session and for its
own log to catch up, at most; then the client gets a fresh session."""


class Handover:
    """Fetches sessions of ``namespace`` parked in other processes, for ``store``
    (its ``fetch``)."""

    __slots__ = ("broker", "namespace", "store", "timeout")

    def __init__(
        self,
        broker: Broker,
        namespace: str,
        store: MemoryStore,
        timeout: float = HANDOVER_TIMEOUT,
    ) -> None:
        self.broker = broker
        self.namespace = namespace
        self.store = store
        self.timeout = timeout

    async def __call__(self, pid: str, offset: str | None) -> ParkedSession | None:
        """The session ``pid`` from the process that holds it, ready to replay
        here; ``None`` when none does, or not within :attr:`timeout` seconds."""
        # A broadcast of an origin the other process never heard from, logged
        # here within the time a handover may take, may not have reached it.
        fresh_after = self.store.now() - self.timeout
        with anyio.move_on_after(self.timeout) as scope:
            answers = await self.broker.query(
                TakeSession(self.namespace, pid, offset), self.timeout
            )
            handed = next((answer for answer in answers if answer.found), None)
            if handed is None or handed.latest is None:
                return None
            if not await self._catch_up(handed.latest, scope.deadline):
                log.warning("recovery: this process's log is behind; a fresh session")
                return None
            missed = [[message(part) for part in parts] for parts in handed.missed]
            return ParkedSession(
                pid,
                handed.sid,
                frozenset(handed.rooms),
                dict(handed.state or {}),
                "",
                handed=Handed(missed, dict(handed.latest), fresh_after),
            )
        log.warning("recovery: no session handed over within %s s", self.timeout)
        return None

    async def _catch_up(self, latest: dict[str, int], deadline: float) -> bool:
        """Wait until this store has logged, of each origin it has heard from,
        the broadcasts the other process had (an origin never heard from here
        may have sent them all before this process started); whether it has."""
        store = self.store
        while True:
            mine = store.latest()
            if all(mine.get(origin, n) >= n for origin, n in latest.items()):
                return True
            progress = store.progress()
            with anyio.move_on_after(deadline - anyio.current_time()):
                await progress.wait()
                continue
            return False


def hand_over(store: SessionStore | None, query: TakeSession) -> HandedSession:
    """Answer ``query`` for this process (``store``: the namespace's): its
    session, if parked here, taken."""
    if not isinstance(store, MemoryStore):
        return HandedSession(False)
    session = store.take_now(query.pid)
    if session is None:
        return HandedSession(False)
    missed = store.replay_now(session, query.offset)
    if missed is None:
        return HandedSession(False)
    try:
        state = orjson.loads(orjson.dumps(session.state))
    except TypeError:
        log.warning("recovery: a session's state is not JSON: not handed over")
        return HandedSession(False)
    return HandedSession(
        True,
        session.sid,
        tuple(session.rooms),
        state,
        tuple(tuple(packet.data for packet in packets) for packets in missed),
        store.latest(),
    )
