"""One Engine.IO session on anyio: what the transports report to and the layer above calls.

The rules are the sans-IO machine's (:class:`gosf.protocol.session.Session`);
:class:`EngineSession` is its face to the rest of gosf:

* The transports (``_websocket``, ``_polling``) report what happened
  (:meth:`~EngineSession.receive`, :meth:`~EngineSession.get_request`,
  :meth:`~EngineSession.probe`...). Each asks the machine, then
  :meth:`~gosf._engineio.driver.SessionDriver._after` carries out what it
  decided, in one place (``driver.py``, with the session's life).
* The layer above (Socket.IO) queues packets (:meth:`~EngineSession.send`,
  :meth:`~EngineSession.send_nowait`) and waits for them to be written
  (:meth:`~EngineSession.flush`). The machine holds the outbound queue: it
  outlives a transport, which is what makes the polling → websocket upgrade
  lossless. A websocket writes it through a
  :class:`~gosf._engineio.wswriter.WebSocketWriter`; a polling GET takes it.
* The server's heartbeat schedule calls :meth:`~EngineSession.beat` when the
  machine's deadline is due.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import anyio

from ..protocol.engineio import Packet
from ..protocol.errors import RemoteProtocolError
from ..protocol.session import CloseReason, PollVerdict, Transport, WebSocketVerdict
from .driver import SHUTDOWN_WAIT, DriverHost, SessionDriver, U
from .wswriter import WebSocketWriter

__all__ = (
    "SHUTDOWN_WAIT",
    "CloseReason",
    "EngineHandler",
    "EngineSession",
    "SessionHost",
    "current_session",
)

current_session: ContextVar[EngineSession | None] = ContextVar("gosf_session", default=None)
"""The session whose handler the current task runs (set by the session's handler workers).

Its tasks write their own packets (:meth:`EngineSession.send`) instead of
handing them to a writer task."""


class EngineHandler(Protocol[U]):
    """What the layer above Engine.IO (Socket.IO) implements."""

    async def on_open(self, session: EngineSession[U]) -> None: ...

    async def on_message(self, session: EngineSession[U], data: str | bytes) -> None: ...

    async def on_close(self, session: EngineSession[U], reason: CloseReason) -> None: ...

    def on_beat(self, session: EngineSession[U]) -> None:
        """A heartbeat of a live session (every pingInterval or so): a moment to
        let go of what only a busy client needs (tasks waiting for work)."""

    def on_upgrade(self, session: EngineSession[U]) -> None:
        """The session moved from long-polling to a websocket (for logs and observers)."""


class SessionHost(DriverHost, Protocol):
    """What a session needs of the server that keeps it (``EngineServer``):
    what its driver needs, and the layer above and the heartbeat schedule."""

    handler: EngineHandler[Any]

    def schedule_beat(self, session: EngineSession, due: float) -> None: ...

    async def start_session(self, session: EngineSession) -> None: ...


class EngineSession(SessionDriver[U]):
    """One Engine.IO client, whatever its transport: what the transports
    report to and the layer above calls (see the module's docstring)."""

    _server: SessionHost  # what the driver keeps, seen as the whole server

    @property
    def server(self) -> SessionHost:
        """The server this session belongs to."""
        return self._server

    @property
    def handler(self) -> EngineHandler[Any]:
        """The layer above, which gets this session's messages."""
        return self._server.handler

    def _schedule(self, due: float) -> None:
        self._server.schedule_beat(self, due)

    def _tell_beat(self) -> None:
        self._server.handler.on_beat(self)

    async def _tell_closed(self, reason: CloseReason) -> None:
        await self._server.handler.on_close(self, reason)

    # -- heartbeat ----------------------------------------------------------------------

    def beat(self, now: float) -> None:
        """The server's schedule found this session's deadline due (see
        :attr:`Session.deadline`): the machine acts on it (a ping, a timeout,
        the end of a linger or an upgrade's wait).

        Each beat of a live session also ends the tasks that wait for work
        (the writer, the layer above's idle handler workers: see
        :meth:`EngineHandler.on_beat`): a client that went quiet holds none.
        """
        machine = self.machine
        machine.tick(now)
        if not self.closed:
            self._server.handler.on_beat(self)
            writer = self.writer
            if writer is not None:
                # A writer still waiting since the last traffic writes what
                # the beat queued (a ping) and ends; with none, one is
                # started for it alone.
                writer.retire()
                if machine.queued:
                    writer.kick(linger=False)
        self._after()

    # -- inbound ----------------------------------------------------------------------

    async def receive(self, packet: Packet) -> None:
        """Handle one packet from the client on the carrying transport.

        Raises:
            RemoteProtocolError: the packet is not allowed here; the caller
                closes the transport (the session is already closed).
        """
        try:
            data = self.machine.receive(packet, anyio.current_time())
        except RemoteProtocolError:
            self._after()
            raise
        if data is None:
            self._after()
        elif self._backlog is None:
            await self._server.handler.on_message(self, data)
        elif len(self._backlog) < self.max_buffer:
            self._backlog.append(data)  # behind the kept ones (see open_held())
        else:
            self.bad_input(CloseReason.PROTOCOL_ERROR)

    async def open_held(self) -> None:
        """End a held opening here (the machine's rules: held opening), once
        its hold has ended or a websocket of this process takes it over: the
        layer above is told of the session, then handed the messages kept
        back, and those that came meanwhile, in order. Nothing if it is not
        held (any more)."""
        machine = self.machine
        if not machine.held:
            return
        backlog = self._backlog = machine.release()
        try:
            handler = self._server.handler
            await handler.on_open(self)
            while backlog:
                await handler.on_message(self, backlog.pop(0))
        finally:
            self._backlog = None

    def hand_over(self) -> tuple[list[str | bytes], list[Packet]] | None:
        """Give this held session up to the process that will carry it on
        (see :meth:`Session.hand_over`): the messages kept back and the
        packets queued, or ``None`` when it stays. Given, it ends here
        without the layer above, which never saw it, being told."""
        taken = self.machine.hand_over()
        self._after()
        return taken

    def bad_input(self, reason: CloseReason = CloseReason.PARSE_ERROR) -> None:
        """The carrying transport got something that does not decode (or is too large)."""
        self.machine.bad_input(reason)
        self._after()

    def transport_closed(self, *, failed: bool = False) -> None:
        """The websocket carrying the session went away (``failed``: writing to it failed)."""
        self.machine.transport_closed(Transport.WEBSOCKET, failed=failed)
        self._after()

    def hold_reading(self, held: bool) -> None:
        """The layer above stops (``True``) or resumes reading this client's input
        (backpressure): see :meth:`Session.hold_reading`."""
        self.machine.hold_reading(held, anyio.current_time())

    # -- long-polling --------------------------------------------------------------------

    def get_request(self) -> PollVerdict:
        """A long-polling GET arrived (see :meth:`Session.get_request`)."""
        verdict = self.machine.get_request(anyio.current_time())
        self._after()
        return verdict

    def poll_answer(self) -> list[Packet] | PollVerdict | None:
        """What the pending GET answers now (see :meth:`Session.poll_answer`);
        packets taken must be reported with :meth:`poll_written`."""
        return self.machine.poll_answer(anyio.current_time())

    def poll_written(self) -> None:
        """The GET's response (what :meth:`poll_answer` took) has been sent,
        or sending it failed."""
        self.machine.written()
        self._after()

    def get_abandoned(self) -> None:
        """The pending GET's client left before it was answered."""
        self.machine.get_abandoned()

    @contextmanager
    def posting(self) -> Any:
        """A long-polling POST, for the duration of the block: yields its verdict."""
        verdict = self.machine.post_request()
        self._after()
        try:
            yield verdict
        finally:
            if verdict is PollVerdict.SERVE:
                self.machine.post_done()

    # -- the upgrade -------------------------------------------------------------------

    def websocket_request(self) -> WebSocketVerdict:
        """A websocket arrived for this session (see :meth:`Session.websocket_request`)."""
        verdict = self.machine.websocket_request(anyio.current_time())
        self._after()
        return verdict

    @contextmanager
    def upgrade_scope(self) -> Any:
        """The upgrading websocket's reading, for the block: cancelled when
        the machine gives the upgrade up (its deadline, the session's end)."""
        with anyio.CancelScope() as scope:
            self._upgrade_scope = scope
            try:
                yield scope
            finally:
                self._upgrade_scope = None
                self.machine.upgrade_socket_closed()  # nothing if the upgrade is done
                self._after()

    def probe(self, packet: Packet) -> Packet | None:
        """A packet on the upgrading websocket (see :meth:`Session.probe`).

        Raises:
            RemoteProtocolError: not the probe dance; the upgrade is given up.
        """
        upgrading = self.machine.transport is Transport.POLLING
        try:
            return self.machine.probe(packet, anyio.current_time())
        finally:
            if self.machine.transport is Transport.WEBSOCKET:
                self._upgrade_scope = None  # upgraded: nothing to cancel any more
                if upgrading:
                    self._server.handler.on_upgrade(self)
            self._after()

    def probe_answered(self) -> None:
        """The probe's pong is written: the pending GET can be released."""
        self.machine.probe_answered()
        self._after()

    # -- outbound -----------------------------------------------------------------------

    def attach_websocket(self, writer: WebSocketWriter) -> None:
        """The websocket ``writer`` writes to carries the session from now on."""
        self.writer = writer
        writer.kick()

    def detach_websocket(self, writer: WebSocketWriter) -> None:
        """The websocket ``writer`` wrote to is done."""
        if self.writer is writer:
            self.writer = None

    @property
    def writable(self) -> bool:
        """Whether the client can take a packet now, behind nothing (the rule
        for volatile packets: :attr:`gosf.protocol.session.Session.writable`)."""
        return self.machine.writable

    def send_nowait(
        self, packets: list[Packet], *, linger: bool = True, in_message: bool = False
    ) -> bool:
        """Queue ``packets`` without waiting.

        A full queue means the client does not read: it is disconnected as a
        slow consumer and ``False`` is returned, as it is for a closed session.
        ``linger`` false: a writer started for these packets ends once they
        are written (see :meth:`WebSocketWriter.kick`). ``in_message``: the
        caller handles the message the websocket's reader gave it and returns
        to the reader without waiting (the CONNECT answer): when the reader
        is indeed in that message, it writes them itself, and no writer task
        is started.
        """
        if not self.machine.send(packets):
            self._after()
            return False
        writer = self.writer
        if writer is not None and not (in_message and writer.in_message):
            writer.kick(linger=linger)
        self.wake()
        return True

    async def send(self, packets: list[Packet]) -> bool:
        """Queue ``packets``, waiting for room; ``False`` if the session closed.

        Over a websocket, when nobody is writing and the caller is one of this
        session's own tasks (its handlers), the caller writes them (and whatever
        else is queued) itself: no hand-over to another task. Other callers
        queue, and the session's writer sends; a task serving another client
        never waits on this client's network.
        """
        machine = self.machine
        if machine.queued and not await self._room_for(len(packets)):
            return False
        if not machine.send(packets):
            self._after()  # closed, or the queue overflowed: a slow client
            return False
        writer = self.writer
        if writer is not None and not writer.writing and current_session.get() is self:
            await writer.write_queued()  # the hot path: this client's own task writes
        else:
            if writer is not None:
                writer.kick()
            self.wake()
        return True

    async def _room_for(self, count: int) -> bool:
        """Wait until ``count`` more packets fit behind those queued; ``False``
        if the session closed meanwhile.

        Raises:
            ValueError: ``count`` packets can never fit the queue.
        """
        machine = self.machine
        max_buffer = machine.config.max_buffer
        if count > max_buffer:
            raise ValueError(f"{count} packets can never fit a queue of {max_buffer}")
        while machine.queued + count > max_buffer:
            if self.closed:
                return False
            await self.wait_changed()
        return True

    async def flush(self) -> None:
        """Wait until the transport has written everything queued before this call.

        Returns at once if the session is closed (or closes meanwhile).
        """
        machine = self.machine
        mark = machine.sent
        while machine.settled < mark and not self.closed:
            await self.wait_changed()
