"""The driver of one Engine.IO session's sans-IO machine: its life and its transitions' I/O.

The rules (heartbeat, probe and upgrade, overlapping polls, the outbound
bound, closing and lingering) are the machine's
(:class:`gosf.protocol.session.Session`); a driver does what they call for
with tasks, cancel scopes and the transports. :class:`SessionDriver` holds
what every session has:

* :meth:`SessionDriver._after`, the one place where the machine's last
  decision is carried out: the session's end, an upgrade given up, the next
  deadline, waking whoever waits. :class:`~gosf._engineio.session.EngineSession`
  (what the transports and the layer above call) calls it after each machine
  call that may change the machine's state.
* The session's life (:meth:`SessionDriver.host`): the task that hosts it
  holds a cancel scope around its reading (closing the session cancels it),
  and nothing more while the session needs no task. Its tasks (what the layer
  above starts for the client: its handlers; the writer's task, a blocked
  write's cut-off) are started with
  :meth:`SessionDriver.start_soon`, in a task group opened on demand in a task
  of the server's task group (``tasks.py``); that task
  and its group end when the last of them does, and the next one opens them
  again. So an idle client holds no task group and no task of gosf's. The
  session owns them all the same: when it closes, its host cancels them,
  refuses new ones and waits for them (bounded), writes the last packets,
  then tells the layer above (``on_close``) under a shield. A task that
  raises (a bug: the layer above catches its handlers' errors) closes its
  session and is logged; it never reaches the server's task group. A session that
  began with long-polling is hosted by a task of its own in the server's task
  group (:meth:`SessionDriver.run`) until its websocket takes it over (its
  tasks go on where they are, in their own group); one that began on a
  websocket is hosted by that websocket's ASGI call, which also reads it.
* One event for every wait (a GET for packets, a sender for room, a flush,
  the polling task for its end): :meth:`SessionDriver.wait_changed`, replaced
  each time it fires, so an idle session holds none.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Generic, Protocol

import anyio
from anyio.abc import TaskStatus
from typing_extensions import TypeVar

from .._options import ServerOptions
from ..protocol.engineio import Packet, encode_open
from ..protocol.session import CloseReason, Session, SessionConfig, State, Transport
from .event import Event, Primitives
from .tasks import SessionTasks
from .wswriter import WebSocketWriter

__all__ = ("SHUTDOWN_WAIT", "DriverHost", "SessionDriver")

log = logging.getLogger("gosf.engineio")

SHUTDOWN_WAIT = 15.0
"""Longest time a stopping server waits for its sessions' last words (disconnect handlers)."""

_OPEN, _UPGRADING, _CLOSED = State.OPEN, State.UPGRADING, State.CLOSED


class DriverHost(Protocol):
    """What a session's driver needs of the server that keeps it (``EngineServer``)."""

    options: ServerOptions
    config: SessionConfig
    stopping: bool
    deadline: float
    lingering: set[anyio.CancelScope]
    primitives: Primitives[Any]
    """The backend's events and wake-ups, chosen when the server started."""

    def forget(self, sid: str) -> None:
        """The session ``sid`` has ended: it is no longer reachable."""

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``func()`` in a task of the server's task group.

        Raises:
            RuntimeError: the server is not running (or is stopping).
        """


U = TypeVar("U", default=Any)
"""What the layer above keeps on each session (Socket.IO: its ``Connection``)."""


class SessionDriver(abc.ABC, Generic[U]):
    """One session's machine, its waits and its life; see the module's docstring."""

    # A polling-born session taken over by its websocket (see host()): class
    # defaults, set only on sessions that upgrade (no room taken in the others).
    taken_over = False
    """The session began with long-polling and its websocket took it over
    (see :meth:`host`): the task hosting it changed."""
    _predecessor_done: Event | None = None  # set when the polling task has ended
    _upgrade_scope: anyio.CancelScope | None = None  # the upgrading websocket's reading
    _tasks_refused = False  # the session's host has ended its tasks: no new ones
    # A held session being opened (see open_held()): messages that came meanwhile.
    _backlog: list[str | bytes] | None = None

    def __init__(
        self,
        server: DriverHost,
        sid: str,
        *,
        protocol: int,
        transport: str,
        b64: bool,
        scope: Mapping[str, Any],
        held: bool = False,
    ) -> None:
        self.sid = sid
        self.machine = Session(
            sid,
            protocol=protocol,
            transport=Transport(transport),
            config=server.config,
            now=anyio.current_time(),
            held=held,
        )
        """The session's rules and state (sans-IO)."""
        self.b64 = b64
        self.scope = scope
        self.upper: U | None = None
        """The layer above's state for this session (Socket.IO's: the connection)."""
        self.writer: WebSocketWriter | None = None
        """Writes to the websocket carrying the session, while one does."""
        self._server = server
        # Made when first needed: an idle session holds as few events as it can.
        self._changed: Event | None = None
        self._finished: anyio.Event | None = None
        self._has_finished = False
        self._ended = False  # _on_end() has run
        self.beat_due = math.inf
        """When the server's schedule calls :meth:`beat` next (``EngineServer.schedule_beat``)."""
        # The session's tasks while it has some (see start_soon()).
        self._tasks: SessionTasks | None = None
        self.reading: anyio.CancelScope | None = None
        """The cancel scope of the task hosting the session (its reading, for
        a websocket), while it runs (see :meth:`host`)."""

    # -- what the layers around read ------------------------------------------------

    @property
    def protocol(self) -> int:
        return self.machine.protocol

    @property
    def transport(self) -> Transport:
        return self.machine.transport

    @property
    def closed(self) -> bool:
        """Closing or closed: nothing more is accepted from the client or the layer above."""
        state = self.machine.state
        return state is not _OPEN and state is not _UPGRADING

    @property
    def close_reason(self) -> CloseReason | None:
        return self.machine.close_reason

    @property
    def upgrading(self) -> bool:
        return self.machine.upgrading

    @property
    def max_buffer(self) -> int:
        """The most packets the outbound queue holds."""
        return self.machine.config.max_buffer

    def start_soon(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``func(*args)`` in a task of this session (for the layer above
        and the writer): cancelled when the session closes, which waits for it.

        The session's task group is opened on demand, in a task of the
        server's task group, and closed when its last task ends (see
        ``_engineio/tasks.py``).

        Raises:
            RuntimeError: the session is not running (any more), or the server is stopping.
        """
        if self._tasks_refused:
            raise RuntimeError("session is not running")
        tasks = self._tasks
        if tasks is None:
            server = self._server
            server.start_soon(self._hold_tasks)
            self._tasks = tasks = SessionTasks(server.primitives.event())
        tasks.start(func, args)

    async def _hold_tasks(self) -> None:
        """The task of the server's group that holds the session's task group
        while it has tasks (:meth:`SessionTasks.hold`): an idle session holds
        neither."""
        tasks = self._tasks
        assert tasks is not None
        try:
            await tasks.hold(self._server.primitives)
        except Exception:
            # A task that raises is a bug (the layer above catches its
            # handlers' errors): it ends this session, whose other tasks its
            # group has cancelled, never the server whose group holds this task.
            log.exception("session %s: a task failed; closing the session", self.sid)
            self.close(CloseReason.SERVER_DISCONNECT)
        finally:
            self._tasks = None  # no await since its last check: nothing is pending
            tasks.held.set()

    async def _end_tasks(self) -> None:
        """The session's end: cancel its tasks, refuse new ones, and wait for
        them (bounded by ``SHUTDOWN_WAIT``: a task may shield itself)."""
        self._tasks_refused = True
        tasks = self._tasks
        if tasks is not None:
            await tasks.end(SHUTDOWN_WAIT)

    def open_packet(self) -> Packet:
        options = self._server.options
        polling = self.transport is Transport.POLLING
        upgrades = ["websocket"] if polling and "websocket" in options.transports else []
        return encode_open(
            self.sid,
            upgrades,
            options.ping_interval_ms,
            options.ping_timeout_ms,
            options.max_payload,
            self.protocol,
        )

    # -- what EngineSession connects to the server and the layer above -----------------
    # (Declared here, defined there: the handler and the schedule take an
    # EngineSession, which this module cannot name without an import cycle.)

    @abc.abstractmethod
    def _schedule(self, due: float) -> None:
        """Have the server's heartbeat schedule call the session at ``due``."""

    @abc.abstractmethod
    def _tell_beat(self) -> None:
        """Tell the layer above of a heartbeat (``EngineHandler.on_beat``)."""

    @abc.abstractmethod
    async def _tell_closed(self, reason: CloseReason) -> None:
        """Tell the layer above that the session has closed (``EngineHandler.on_close``)."""

    @abc.abstractmethod
    async def open_held(self) -> None:
        """End the session's held opening here: the layer above is told of it."""

    # -- carrying out what the machine decided --------------------------------------

    def _after(self) -> None:
        """Do what the machine's last decision calls for: every transition's I/O.

        Called after each machine call that may change its state (the hot
        path's, a text MESSAGE and the packets that answer it, change none).
        """
        machine = self.machine
        state = machine.state
        if state is not _OPEN and state is not _UPGRADING:
            if not self._ended:
                self._ended = True
                self._on_end()
            writer = self.writer
            if state is _CLOSED and writer is not None and writer.writing:
                writer.abort()  # a last write nobody is owed any more
        upgrade = self._upgrade_scope
        if upgrade is not None and state is not _UPGRADING:
            upgrade.cancel()  # given up (timed out, or the session closed)
        self.wake()
        deadline = machine.deadline
        if deadline < self.beat_due:
            self._schedule(deadline)

    def _on_end(self) -> None:
        """The session closes (gracefully or not): stop reading, end its tasks."""
        if self.close_reason is CloseReason.SLOW_CLIENT:
            log.warning("session %s: disconnecting slow client", self.sid)
        writer = self.writer
        if writer is None:
            return
        writer.reader.cancel()  # nothing more is accepted
        if writer.writing and self.machine.state is not _CLOSED:
            # A graceful close found a write in flight, maybe to a client that
            # reads nothing: it gets ping_timeout, then the connection goes.
            try:
                self.start_soon(writer.cut_off, self._server.options.ping_timeout)
            except RuntimeError:  # the session's tasks have ended: the host bounds the write
                pass

    def beat_by(self, due: float) -> None:
        """Have the server's schedule call :meth:`beat` (and so the layer
        above's ``on_beat``) at ``due`` (anyio's clock) at the latest: a
        deadline of the layer above's, kept without a task of its own. A
        beat may come sooner (the machine's own deadlines); the layer above
        asks again then, until its deadline has passed."""
        if due < self.beat_due:
            self._schedule(due)

    def wake(self) -> None:
        """Wake whoever waits on :meth:`wait_changed`."""
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()

    async def wait_changed(self) -> None:
        """Wait until something happens to the session: packets queued or
        written, a state change, a deadline. Waiters check their condition again."""
        changed = self._changed
        if changed is None:
            changed = self._changed = self._server.primitives.event()
        await changed.wait()

    # -- life -------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The task of a session that began with long-polling: live until closed,
        or until its websocket takes the session over after an upgrade.

        The session's tasks run in a group of their own (see :meth:`start_soon`).
        """

        async def until_closed_or_taken_over() -> None:
            task_status.started()
            while not self.closed and not self.taken_over:
                if self.machine.release_due:  # its hold ended: it opens here
                    await self.open_held()
                    continue
                await self.wait_changed()

        await self.host(until_closed_or_taken_over)

    async def host(
        self,
        body: Callable[[], Awaitable[None]],
        *,
        after_flush: Callable[[], Awaitable[None]] | None = None,
        take_over: bool = False,
    ) -> None:
        """Run the session's life in the calling task: ``body`` under its cancel scope.

        A session that began with long-polling lives in a task of its own
        (:meth:`run`) until it upgrades; then its websocket's ASGI call takes
        it over (``take_over``) and the polling task ends. A session that
        began on a websocket lives in that websocket's ASGI call from the
        start. So an idle websocket client has no task of gosf's, whichever
        way it came, and the session's tasks, while it has some, run in their
        own group (:meth:`start_soon`), whichever task hosts it. ``body``
        (the websocket's reading, under :attr:`reading`) returns or is
        cancelled when the session closes; then its tasks are cancelled and
        waited for, the last queued packets written (a graceful close),
        ``after_flush`` called, and the layer above told (``on_close``)
        under a shield. None of it waits on the client's network for long: a
        last write still blocked after ``ping_timeout`` has its connection
        aborted (see :meth:`WebSocketWriter.abort`).
        """
        reading = self.begin_hosting(take_over=take_over)
        if reading is None:
            if after_flush is not None:
                await after_flush()
            return
        finished = False
        try:
            with reading:
                await body()
            finished = True
        finally:
            await self.end_hosting(reading, after_flush, take_over=take_over, finished=finished)

    # host() in two halves, for a websocket's reader that hosts its session in
    # its own frame (no suspended frame of host() per idle client: a fast
    # path, see "Fast paths" in docs/performance.md):
    #     reading = session.begin_hosting(); finished = False
    #     try: (with reading: read; finished = True)
    #     finally: await session.end_hosting(reading, ..., finished=finished)

    def begin_hosting(self, *, take_over: bool = False) -> anyio.CancelScope | None:
        """The start of :meth:`host`: the cancel scope to read under, or
        ``None`` when a take-over finds the session closed (or taken)."""
        if take_over and not self._take_over():
            return None
        reading = self.reading = anyio.CancelScope()
        return reading

    async def end_hosting(
        self,
        reading: anyio.CancelScope,
        after_flush: Callable[[], Awaitable[None]] | None,
        *,
        take_over: bool,
        finished: bool,
    ) -> None:
        """The end of :meth:`host`, once its body has returned (``finished``)
        or raised: the session's tasks end, its last packets are written,
        and it winds up; or, handed over to its websocket, nothing more here."""
        handed_over = self.taken_over and not take_over
        try:
            if finished and not handed_over:
                await self._end_tasks()  # the handlers (and the writer) end with the session
                writer = self.writer
                if writer is not None:
                    # A graceful close's last packets, bounded: a client that
                    # stopped reading must not hold the session's end forever.
                    await writer.within(self._server.options.ping_timeout, writer.flush)
        finally:
            if self.reading is reading:
                self.reading = None
            if self.taken_over and not take_over:
                # Handed over (also when cancelled meanwhile): the session's
                # host winds it up, once this is set.
                assert self._predecessor_done is not None
                self._predecessor_done.set()
            else:
                await self._end_tasks()  # cancelled from outside: not done yet
                await self._wind_up(after_flush)

    def _take_over(self) -> bool:
        """Begin moving the session's life into the calling task (see :meth:`host`);
        ``False`` if it has closed."""
        if self.closed or self.taken_over:
            return False
        self.taken_over = True
        self._predecessor_done = self._server.primitives.event()
        self.wake()  # the polling task's body returns
        return True

    async def _wind_up(self, after_flush: Callable[[], Awaitable[None]] | None) -> None:
        """The end of the session's life, once its tasks are done (see :meth:`host`)."""
        reason = self.close_reason
        if reason is None:  # cancelled from outside
            reason = CloseReason.SERVER_SHUTTING_DOWN
            self.close(reason)
        server = self._server
        with anyio.CancelScope(shield=True):
            if self._predecessor_done is not None:
                # The polling task, which ends once its body has seen the
                # take-over (bounded all the same).
                with anyio.move_on_after(SHUTDOWN_WAIT):
                    await self._predecessor_done.wait()
            try:
                if after_flush is not None:
                    writer = self.writer
                    if writer is not None:
                        await writer.within(server.options.ping_timeout, after_flush)
                    else:
                        with anyio.move_on_after(server.options.ping_timeout):
                            await after_flush()
                # The layer above closes its sockets and runs their
                # disconnect handlers now that their handlers have ended.
                await self._tell_closed(reason)
            except Exception:
                log.exception("error while closing session %s", self.sid)
            try:
                machine = self.machine
                if (
                    not server.stopping
                    and machine.state is State.CLOSING
                    and machine.transport is Transport.POLLING
                ):
                    # A polling client fetches its last packets (the DISCONNECT
                    # and CLOSE of a server-side disconnect) with one more GET:
                    # keep the session reachable until it has (the machine
                    # closes it then, or when its linger ends), and no later
                    # than a graceful shutdown's deadline (close_all).
                    with anyio.CancelScope() as linger:
                        linger.deadline = min(
                            anyio.current_time() + server.config.linger, server.deadline
                        )
                        server.lingering.add(linger)
                        try:
                            while machine.state is State.CLOSING:
                                await self.wait_changed()
                        finally:
                            server.lingering.discard(linger)
            finally:
                self.machine.close(reason, anyio.current_time(), graceful=False)
                self.wake()
                server.forget(self.sid)
                self._has_finished = True
                if self._finished is not None:
                    self._finished.set()

    async def wait_finished(self) -> None:
        """Wait until the session has ended and the layer above was told."""
        if self._has_finished:
            return
        if self._finished is None:
            self._finished = anyio.Event()
        await self._finished.wait()

    def close(self, reason: CloseReason, *, discard: bool = False) -> None:
        """Close the session (idempotent).

        With ``discard`` false, packets already queued are still delivered,
        followed by a CLOSE packet.
        """
        self.machine.close(reason, anyio.current_time(), graceful=not discard)
        self._after()
