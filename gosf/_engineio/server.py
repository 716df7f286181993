"""The Engine.IO server on anyio: the sessions of one process and their heartbeats.

How it fits together:

* :class:`EngineServer` keeps the sessions of one process and the task group
  polling sessions live in (opened by the ASGI lifespan, or by ``async with
  server``). Its own task calls every session's deadlines (heartbeat,
  upgrade, linger: the machine's, see ``gosf/protocol/session.py``) from one
  schedule, a heap of due times: no sleeping task per client.
* An :class:`~gosf._engineio.session.EngineSession` is one client
  (``session.py``): the driver of the sans-IO session machine, whose
  decisions and life are carried out in ``driver.py``; what writes to its
  websocket is in ``wswriter.py``.
* Transports (the websocket and polling glue in this package) feed sessions
  what the client sends and take what is queued for it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import secrets
import weakref
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .._errors import ServerNotRunning
from .._options import ServerOptions
from ..protocol.session import CloseReason, SessionConfig
from .event import ANYIO_PRIMITIVES, Primitives, Wakeup, choose_primitives
from .http import EngineError, Receive, Scope, Send
from .session import SHUTDOWN_WAIT, EngineHandler, EngineSession

__all__ = (
    "LINGER",
    "MAX_PACKETS_PER_POLL",
    "UPGRADE_GRACE",
    "UPGRADE_TIMEOUT",
    "EngineServer",
    "RelayRefused",
    "RequestForwarder",
    "owner_of",
    "session_for_upgrade",
    "session_config",
)

log = logging.getLogger("gosf.engineio")

LINGER = 5.0
"""Longest time a gracefully closed session waits for its client to take the
last packets (a polling client fetches them with one more GET); no longer
than pingTimeout."""

UPGRADE_TIMEOUT = 10.0
"""Seconds a client has to finish the upgrade after opening the websocket."""

UPGRADE_GRACE = 0.1
"""Longest wait, in seconds, of a GET that arrives once the client was told
``3probe``, for the upgrade to finish or be given up.

A stock client sends no GET then (it pauses polling to upgrade) unless the
NOOP that released its last one overtook the ``3probe``; a GET sent after its
``5`` may get here first, over its own connection. The reference server
answers the first kind with a NOOP at its next check for a fast upgrade (as
often as this) and refuses the second: it has read the ``5`` by then. Waiting
this long does both. A POST is not held back: a stock client in the middle of
an upgrade waits for its POST before it sends the ``5``."""

MAX_PACKETS_PER_POLL = 16
"""Most packets one GET response carries; the rest wait for the next GET.

python-engineio's client (python-socketio's) refuses a response of more and
drops the connection (``Payload.max_decode_packets``); socket.io-client takes
any number, and one more round trip per 16 packets costs it little."""


def session_config(options: ServerOptions) -> SessionConfig:
    """The session machine's timing and bounds for a server's ``options``."""
    return SessionConfig(
        ping_interval=options.ping_interval,
        ping_timeout=options.ping_timeout,
        upgrade_timeout=UPGRADE_TIMEOUT,
        upgrade_grace=UPGRADE_GRACE,
        max_buffer=options.max_outbound_buffer,
        max_poll_packets=MAX_PACKETS_PER_POLL,
        write_timeout=options.stall_timeout,
        linger=min(options.ping_timeout, LINGER),
        hold=options.upgrade_handover,
    )


def owner_of(sid: str) -> str | None:
    """The node id of the process that made the session ``sid`` (``None``: not one of ours).

    A sid is ``<node id>.<random>``: a request for a session another
    process holds can be forwarded to it without asking the cluster.
    """
    node, dot, rest = sid.rpartition(".")
    return node if dot and node and rest else None


class RequestForwarder(Protocol):
    """Has the process holding a session answer a request for it (see ``_forward``)."""

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, *, owner: str, sid: str
    ) -> None: ...

    async def relay_websocket(
        self, scope: Scope, receive: Receive, send: Send, *, owner: str, sid: str, b64: bool
    ) -> None: ...


class RelayRefused(Exception):
    """The owner refused a relayed upgrade: answer the websocket handshake with this."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"refused with status {status}")
        self.status = status
        self.body = body


def session_for_upgrade(engine: EngineServer, sid: str) -> EngineSession:
    """The live session ``sid`` of this process, for a websocket asking to upgrade it.

    One that a websocket carries already (or is taking over) is returned all
    the same: ``serve_upgrade`` accepts that websocket and closes it.

    Raises:
        EngineError: no such session here, or it has closed.
    """
    session = engine.sessions.get(sid)
    if session is None or session.closed:
        raise EngineError(EngineError.UNKNOWN_SID)
    return session


class EngineServer:
    """The Engine.IO sessions of one process and the task group they run in."""

    def __init__(
        self, options: ServerOptions, handler: EngineHandler, *, node_id: str | None = None
    ) -> None:
        self.options = options
        self.config = session_config(options)
        """The rules' timing and bounds, the same for every session."""
        self.handler = handler
        self.node_id = node_id if node_id is not None else secrets.token_hex(6)
        """This process's id in the cluster: the first part of every sid it makes."""
        self.primitives: Primitives[Any] = ANYIO_PRIMITIVES
        """The running backend's events and wake-ups: chosen once, when
        :meth:`serve` starts, for every session, socket and writer of this server."""
        self.forwarder: RequestForwarder | None = None
        """Forwards polling requests for other processes' sessions (none: refused)."""
        self.holds_new_sessions = False
        """New long-polling sessions begin held, to be handed over to the
        process their websocket reaches (``upgrade_handover``; set by the
        Socket.IO server when its broker joins other processes)."""
        self.sessions: dict[str, EngineSession] = {}
        self.stopping = False
        self.accepting = True
        self.deadline = math.inf
        """When a graceful shutdown (:meth:`close_all`) wants every session ended."""
        self.lingering: set[anyio.CancelScope] = set()
        """The waits of closed polling sessions for their last GET (cut short by
        :meth:`close_all`)."""
        self._tg: TaskGroup | None = None
        # Every session's next heartbeat check, soonest first: one loop for
        # all sessions instead of a sleeping task each. Entries hold weak
        # references, so a closed session is not kept alive by its entry.
        self._beats: list[tuple[float, int, weakref.ref[EngineSession]]] = []
        self._beat_count = itertools.count()
        self._beats_changed: Wakeup | None = None

    @property
    def running(self) -> bool:
        return self._tg is not None

    def remote_owner(self, sid: str) -> tuple[str, RequestForwarder] | None:
        """The process holding ``sid`` and the forwarder reaching it, when
        ``sid`` is not a session of this process but another one's."""
        if sid in self.sessions or self.forwarder is None:
            return None
        owner = owner_of(sid)
        if owner is None or owner == self.node_id:
            return None
        return owner, self.forwarder

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own every session until cancelled; sessions are closed on the way out."""
        self.primitives = choose_primitives()
        self.stopping = False
        self.accepting = True
        self.deadline = math.inf
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                task_status.started()
                await self._run_heartbeats()
            finally:
                self._tg = None
                self.stopping = True
                sessions = list(self.sessions.values())
                for session in sessions:
                    session.close(CloseReason.SERVER_SHUTTING_DOWN)
                # Sessions born on a websocket end in their ASGI calls, not in
                # this task group: wait for them too (their disconnect
                # handlers are bounded by the layer above), until a graceful
                # shutdown's deadline if there was one.
                with anyio.CancelScope(shield=True) as waiting:
                    waiting.deadline = min(anyio.current_time() + SHUTDOWN_WAIT, self.deadline)
                    for session in sessions:
                        await session.wait_finished()

    def schedule_beat(self, session: EngineSession, due: float) -> None:
        """Have :meth:`EngineSession.beat` called at ``due`` (anyio's clock).

        Only the session's latest entry counts (others are stale): a session
        schedules itself when its machine's deadline comes sooner than what
        was scheduled, and after each beat.
        """
        beats = self._beats
        session.beat_due = due
        entry = (due, next(self._beat_count), weakref.ref(session))
        heapq.heappush(beats, entry)
        if beats[0] is entry:  # sooner than what the loop sleeps for
            changed, self._beats_changed = self._beats_changed, None
            if changed is not None:
                self.primitives.wake(changed)

    async def _run_heartbeats(self) -> None:
        """Call every session's deadlines when due, until cancelled."""
        beats = self._beats
        while True:
            now = anyio.current_time()
            while beats and beats[0][0] <= now:
                due, _, ref = heapq.heappop(beats)
                session = ref()
                if session is None or due != session.beat_due:
                    continue  # gone, or a stale entry (an earlier check was scheduled)
                session.beat_due = math.inf
                session.beat(now)  # which schedules the next one
            primitives = self.primitives
            changed = self._beats_changed = primitives.wakeup()
            with anyio.move_on_after(beats[0][0] - now if beats else math.inf):
                await primitives.wait(changed)
            self._beats_changed = None

    async def close_all(self, reason: CloseReason, *, deadline: float) -> None:
        """Close every session gracefully and wait for them to end, until
        ``deadline`` (anyio's clock).

        It is the shutdown's: polling sessions waiting for their client's
        last GET stop waiting then, and so does the server's own wait for its
        sessions when it stops (:meth:`serve`).
        """
        self.deadline = min(self.deadline, deadline)
        for linger in self.lingering:
            linger.deadline = min(linger.deadline, deadline)
        sessions = list(self.sessions.values())
        for session in sessions:
            session.close(reason)
        with anyio.CancelScope(deadline=deadline):
            for session in sessions:
                await session.wait_finished()

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``func()`` in a task of the server's task group (a session's
        tasks are held in one: see ``SessionDriver.start_soon``).

        Raises:
            RuntimeError: the server is not running (or is stopping).
        """
        tg = self._tg
        if tg is None:
            raise RuntimeError("server is not running")
        tg.start_soon(func)

    def forget(self, sid: str) -> None:
        """The session ``sid`` has ended: requests for it are now refused."""
        self.sessions.pop(sid, None)

    def new_session(
        self,
        *,
        protocol: int,
        transport: str,
        b64: bool,
        scope: Mapping[str, Any],
        sid: str | None = None,
    ) -> EngineSession:
        """Create and register a session; the caller runs it (:meth:`EngineSession.host`).

        ``sid``: a session another process made and handed over (it keeps its
        sid); by default a new one.

        Raises:
            ServerNotRunning: the server's task group is not open.
            ValueError: this process has a session ``sid`` already.
        """
        if self._tg is None or not self.accepting:
            raise ServerNotRunning(ServerNotRunning.__doc__)
        if sid is None:
            sid = f"{self.node_id}.{secrets.token_urlsafe(15)}"
        elif sid in self.sessions:
            raise ValueError(f"session {sid} is here already")
        held = (
            self.holds_new_sessions
            and transport == "polling"
            and protocol >= 4
            and self.config.hold > 0
        )
        session = EngineSession(
            self, sid, protocol=protocol, transport=transport, b64=b64, scope=scope, held=held
        )
        self.sessions[sid] = session
        return session

    async def open_session(
        self, *, protocol: int, transport: str, b64: bool, scope: Mapping[str, Any]
    ) -> EngineSession:
        """Create a session and start its task in the server's task group.

        Raises:
            ServerNotRunning: the server's task group is not open.
        """
        session = self.new_session(protocol=protocol, transport=transport, b64=b64, scope=scope)
        assert self._tg is not None
        await self._tg.start(session.run)
        await self.start_session(session)
        return session

    async def start_session(self, session: EngineSession) -> None:
        """What every new session gets once its host runs: its heartbeat
        schedule, and the layer above's ``on_open`` (a held one's: when its
        hold ends, see :meth:`EngineSession.open_held`)."""
        self.schedule_beat(session, session.machine.deadline)
        if not session.machine.held:
            await self.handler.on_open(session)
