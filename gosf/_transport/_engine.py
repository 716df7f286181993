"""Engine.IO sessions on anyio.

How it fits together:

* :class:`EngineServer` keeps the sessions of one process and the task group
  polling sessions live in (opened by the ASGI lifespan, or by ``async with
  server``). Its own task runs every session's heartbeat checks from one
  schedule (a heap of due times): no sleeping task per client.
* An :class:`EngineSession` is one client. Its life (:meth:`EngineSession.host`)
  is a task group holding whatever the layer above starts for the client
  (namespace sockets' handlers); closing the session cancels that group,
  writes the last packets, then tells the layer above (``on_close``) under a
  shield. A session that began with long-polling is hosted by a task of its
  own in the server's task group (the transport changes under it); one that
  began on a websocket is hosted by that websocket's ASGI call, which also
  reads it: an idle websocket client costs no task of gosf's.
* What other tasks queue for a websocket client is written by a writer task
  started on demand (:meth:`EngineSession._kick_writer`); handlers and the
  reader write their own packets.
* Transports (the websocket and polling glue in this package) feed the
  session inbound packets and drain its :class:`Outbox`. The outbox outlives
  a transport, which is what makes the polling → websocket upgrade lossless.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import secrets
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .._config import ServerOptions
from .._errors import ServerNotRunning
from ..protocol.engineio import Packet, PacketType, encode_open
from ..protocol.errors import RemoteProtocolError
from ..protocol.session import CloseReason
from ._event import Event, Wakeup, new_event, new_wakeup, wake, wakeup_wait
from ._http import Receive, Scope, Send
from ._outbox import Outbox, OutboxClosed

__all__ = (
    "CloseReason",
    "EngineHandler",
    "EngineServer",
    "EngineSession",
    "Flush",
    "OutItem",
    "RequestForwarder",
    "current_session",
    "owner_of",
    "release_flushes",
)

log = logging.getLogger("gosf.engineio")

current_session: ContextVar[EngineSession | None] = ContextVar("gosf_session", default=None)
"""The session whose handler the current task runs (set by the session's handler workers).

Its tasks write their own packets (:meth:`EngineSession.send`) instead of
handing them to a writer task."""

LINGER = 5.0
"""Longest time a closed polling session waits for its client to fetch the last packets."""

SHUTDOWN_WAIT = 15.0
"""Longest time a stopping server waits for its sessions' last words (disconnect handlers)."""

_PING = Packet(PacketType.PING)
_PONG = Packet(PacketType.PONG)
_CLOSE = Packet(PacketType.CLOSE)


class Flush:
    """A marker in the outbox: its event is set once everything before it was written."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: Event = new_event()


OutItem = Packet | Flush
"""What an outbox holds: packets to write, and flush markers."""


def release_flushes(items: list[OutItem]) -> list[Packet]:
    """Set the flush markers among ``items``; return the packets, in order."""
    packets: list[Packet] = []
    for item in items:
        if isinstance(item, Flush):
            item.done.set()
        else:
            packets.append(item)
    return packets


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
        self, receive: Receive, send: Send, *, owner: str, sid: str, b64: bool
    ) -> None: ...


class EngineHandler(Protocol):
    """What the layer above Engine.IO (Socket.IO) implements."""

    async def on_open(self, session: EngineSession) -> None: ...

    async def on_message(self, session: EngineSession, data: str | bytes) -> None: ...

    async def on_close(self, session: EngineSession, reason: CloseReason) -> None: ...

    def on_beat(self, session: EngineSession) -> None:
        """A heartbeat of a live session (every pingInterval or so): a moment to
        let go of what only a busy client needs (tasks waiting for work)."""


class EngineSession:
    """One Engine.IO client, whatever its transport."""

    # A polling-born session taken over by its websocket (see host()): class
    # defaults, set only on sessions that upgrade (no room taken in the others).
    taken_over = False
    """The session began with long-polling and its websocket took it over
    (see :meth:`host`): its task group changed."""
    _predecessor: anyio.CancelScope | None = None  # the polling task's, while its handlers finish
    _predecessor_done: Event | None = None  # set when they have
    upgrade_probed: Event | None = None
    """While the websocket taking the session over has been answered ``3probe``:
    set once the upgrade is done (``transport`` is then "websocket") or given
    up. Polling requests meanwhile wait for it briefly (see ``_polling``)."""
    # While the layer above holds the reading (backpressure, see
    # hold_reading), and when it last let go: class defaults, set only on
    # sessions that were held.
    _read_held = False
    _read_resumed = -math.inf

    def __init__(
        self,
        server: EngineServer,
        *,
        protocol: int,
        transport: str,
        b64: bool,
        scope: Mapping[str, Any],
    ) -> None:
        self.sid = f"{server.node_id}.{secrets.token_urlsafe(15)}"
        self.protocol = protocol
        self.transport = transport
        self.b64 = b64
        self.scope = scope
        self.upgrading = False
        self.outbox: Outbox[OutItem] = Outbox(server.options.max_outbound_buffer)
        self.close_reason: CloseReason | None = None
        self.upper: Any = None
        """The layer above's state for this session (Socket.IO's: the connection)."""
        self._server = server
        self._options = server.options
        # Made when first needed: an idle session holds as few events as it can.
        self._finished: anyio.Event | None = None
        self._has_finished = False
        # Heartbeat state, driven by the server's heartbeat loop (no task per
        # session): whether a ping waits for its pong (v4), when the client
        # was last heard (v4: its last pong, v3: its last ping), and when its
        # check is due (other entries of it in the server's schedule are stale).
        self._awaiting_pong = False
        self._last_heard = 0.0
        self._beat_due = math.inf
        self._tg: TaskGroup | None = None
        # Transport bookkeeping, kept here because transports come and go.
        self.polling_get_active = False
        self.polling_post_active = False
        self.transport_failed = False
        self._send_frame: Callable[[Packet], Awaitable[None]] | None = None
        self._abort: Callable[[], None] | None = None  # drops the websocket's connection
        self._reader: anyio.CancelScope | None = None  # the websocket's reading
        self._closed_wakeup: Wakeup | None = None  # a polling session's task waits for close
        self._writer_running = False  # a writer task is alive (see _kick_writer)
        self._writer_retire = False  # it should end once the queue is empty
        self._flushing = False
        self._flush_idle: Event | None = None
        # What the last heartbeat check saw of the outbox's progress, and
        # since when (see _stalled). One attribute, not two: past a few
        # more, the instance dict stops sharing its keys and grows ~5x.
        self._stall_mark = (0, 0.0)

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    @property
    def flushing(self) -> bool:
        """Someone is writing to the websocket (and will write all that is queued)."""
        return self._flushing

    @property
    def server(self) -> EngineServer:
        """The server this session belongs to."""
        return self._server

    @property
    def handler(self) -> EngineHandler:
        """The layer above, which gets this session's messages."""
        return self._server.handler

    @property
    def task_group(self) -> TaskGroup:
        """The task group owned by this session (for the layer above)."""
        if self._tg is None:
            raise RuntimeError("session is not running")
        return self._tg

    def open_packet(self) -> Packet:
        upgrades = (
            ["websocket"]
            if self.transport == "polling" and ("websocket" in self._options.transports)
            else []
        )
        return encode_open(
            self.sid,
            upgrades,
            self._options.ping_interval_ms,
            self._options.ping_timeout_ms,
            self._options.max_payload,
            self.protocol,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The task of a session that began with long-polling: live until closed,
        or until its websocket takes the session over after an upgrade.

        The upper layer's tasks run in its task group (see :meth:`host`).
        """

        async def until_closed_or_taken_over() -> None:
            task_status.started()
            while not self.closed and not self.taken_over:
                closed = self._closed_wakeup = new_wakeup()
                await wakeup_wait(closed)

        await self.host(until_closed_or_taken_over)

    async def host(
        self,
        body: Callable[[], Awaitable[None]],
        *,
        after_flush: Callable[[], Awaitable[None]] | None = None,
        take_over: bool = False,
    ) -> None:
        """Run the session's life in the calling task: ``body`` inside its task group.

        A session that began with long-polling lives in a task of its own
        (:meth:`run`) until it upgrades; then its websocket's ASGI call takes
        it over (``take_over``): handlers start in the new task group from
        then on, those already running finish in the polling task, which
        then ends. A session that began on a websocket lives in that
        websocket's ASGI call from the start. So an idle websocket client has
        no task of gosf's, whichever way it came. ``body`` (the websocket's
        reading) returns or is cancelled when the session closes; then the
        handlers are cancelled, the last queued packets written (a graceful
        close), ``after_flush`` called, and the layer above told
        (``on_close``) under a shield. None of it waits on the client's
        network for long: a write still blocked after ``ping_timeout`` (or
        in flight when the session closes with nothing more owed to the
        client) has its connection aborted (see :meth:`abort_transport`).
        """
        if take_over and not self._take_over():
            if after_flush is not None:
                await after_flush()
            return
        tg = anyio.create_task_group()
        try:
            async with tg:
                self._tg = tg
                await body()
                if self.taken_over and not take_over:
                    # The websocket hosts the session from now on: the
                    # handlers started here finish here (cancelled when the
                    # session closes), then this task ends.
                    self._predecessor = tg.cancel_scope
                    if self.closed:
                        tg.cancel_scope.cancel()
                else:
                    tg.cancel_scope.cancel()  # the handlers (and the writer) end with the session
            if not self.taken_over or take_over:
                if self._send_frame is not None:
                    # A graceful close's last packets, bounded: a client that
                    # stopped reading must not hold the session's end forever.
                    await self._within(self._options.ping_timeout, self.flush_outbox)
        finally:
            if self._tg is tg:
                self._tg = None
            if self.taken_over and not take_over:
                # Handed over (also when cancelled meanwhile): the session's
                # host winds it up, once this is set.
                self._predecessor = None
                assert self._predecessor_done is not None
                self._predecessor_done.set()
            else:
                await self._wind_up(after_flush)

    def _take_over(self) -> bool:
        """Begin moving the session's life into the calling task (see :meth:`host`);
        ``False`` if it has closed."""
        if self.closed or self.taken_over:
            return False
        self.taken_over = True
        self._predecessor_done = new_event()
        closed, self._closed_wakeup = self._closed_wakeup, None
        if closed is not None:
            wake(closed)
        self._server.handler.on_beat(self)  # idle handler workers end: the polling task ends sooner
        return True

    async def _wind_up(self, after_flush: Callable[[], Awaitable[None]] | None) -> None:
        """The end of the session's life, once its task group is done (see :meth:`host`)."""
        reason = self.close_reason
        if reason is None:  # cancelled from outside
            reason = CloseReason.SERVER_SHUTTING_DOWN
            self.close(reason)
        with anyio.CancelScope(shield=True):
            if self._predecessor_done is not None:
                # The handlers left in the polling task (cancelled by close();
                # bounded all the same: they may shield themselves).
                with anyio.move_on_after(SHUTDOWN_WAIT):
                    await self._predecessor_done.wait()
            try:
                if after_flush is not None:
                    await self._within(self._options.ping_timeout, after_flush)
                # The layer above closes its sockets and runs their
                # disconnect handlers now that their handlers have ended.
                await self._server.handler.on_close(self, reason)
            except Exception:
                log.exception("error while closing session %s", self.sid)
            try:
                lingering = not self._server.stopping and self.transport == "polling"
                if lingering and len(self.outbox):
                    # A polling client fetches its last packets (the DISCONNECT
                    # and CLOSE of a server-side disconnect) with one more GET:
                    # keep the session reachable until then, briefly, and no
                    # later than a graceful shutdown's deadline (close_all).
                    server = self._server
                    with anyio.CancelScope() as linger:
                        linger.deadline = min(
                            anyio.current_time() + min(self._options.ping_timeout, LINGER),
                            server.deadline,
                        )
                        server.lingering.add(linger)
                        try:
                            await self.outbox.wait_empty()
                        finally:
                            server.lingering.discard(linger)
            finally:
                self._server.sessions.pop(self.sid, None)
                self._has_finished = True
                if self._finished is not None:
                    self._finished.set()

    def _kick_writer(self, *, linger: bool = True) -> None:
        """Make sure someone writes what was queued, over an attached websocket.

        Handlers write their own packets (see :meth:`send`), and the
        websocket's reader what it queued; what other tasks queue
        (broadcasts, other clients' emits) is written by a writer task
        started here on demand. It stays while traffic comes (``linger``),
        waiting on the queue as a permanent writer would, until the next
        heartbeat finds it idle (:meth:`beat`); a writer started for a ping
        ends once it is written. So an idle client has no writer task.
        """
        if self._send_frame is None or self._flushing or self._writer_running:
            return
        tg = self._tg
        if tg is None or self.closed or not len(self.outbox):
            return
        self._writer_running = True
        self._writer_retire = not linger
        tg.start_soon(self._writer)

    async def _writer(self) -> None:
        outbox = self.outbox
        wrote = False
        try:
            while not self.closed and self._send_frame is not None:
                if len(outbox):
                    await self.flush_outbox()
                    wrote = True
                elif not wrote or self._writer_retire:
                    return  # no await between this check and the flag below
                else:
                    await outbox.wait()
        finally:
            self._writer_running = False
            self._writer_retire = False

    async def wait_finished(self) -> None:
        """Wait until the session has ended and the layer above was told."""
        if self._has_finished:
            return
        if self._finished is None:
            self._finished = anyio.Event()
        await self._finished.wait()

    # -- outbound -------------------------------------------------------------

    def send_nowait(self, packets: list[OutItem], *, linger: bool = True) -> bool:
        """Queue ``packets`` without waiting.

        A full queue means the client does not read: it is disconnected as a
        slow consumer and ``False`` is returned, as it is for a closed session.
        ``linger`` false: a writer started for these packets ends once they
        are written (see :meth:`_kick_writer`).
        """
        try:
            if self.outbox.put_many_nowait(packets):
                self._kick_writer(linger=linger)
                return True
        except OutboxClosed:
            return False
        log.warning("session %s: outbound buffer full, disconnecting slow client", self.sid)
        self.close(CloseReason.SLOW_CLIENT, discard=True)
        return False

    def send(self, packets: list[OutItem]) -> Coroutine[Any, Any, bool]:
        """Queue ``packets``, waiting for room; ``False`` if the session closed.

        Over a websocket, when nobody is writing and the caller is one of this
        session's own tasks (its handlers), the caller writes them (and whatever
        else is queued) itself: no hand-over to another task. Other callers
        queue, and the session's writer sends.

        A plain method returning the coroutine that does it: on the hot path
        that is one coroutine, not two.
        """
        outbox = self.outbox
        # Only this session's own tasks write directly: a task serving another
        # client must never wait on this client's network.
        if (
            self._send_frame is not None
            and not self._flushing
            and current_session.get() is self
            and not len(outbox)
            and not outbox.closed
        ):
            return self._write(packets)  # the hot path: nothing queued, nobody writing
        return self._queue(packets)

    async def _queue(self, packets: list[OutItem]) -> bool:
        try:
            await self.outbox.put_many(packets)
        except OutboxClosed:
            return False
        if self._send_frame is not None and not self._flushing and current_session.get() is self:
            await self.flush_outbox()
        else:
            self._kick_writer()
        return True

    def attach_websocket(
        self,
        send_frame: Callable[[Packet], Awaitable[None]],
        reader: anyio.CancelScope,
        abort: Callable[[], None] | None = None,
    ) -> None:
        """The websocket transport took over: frames go out through ``send_frame``.

        ``reader`` is the cancel scope of the task reading the websocket:
        closing the session cancels it (nothing more is accepted). ``abort``
        drops the websocket's connection at once (see :meth:`abort_transport`;
        without it, a write blocked by the client can only be cancelled).
        """
        self._send_frame = send_frame
        self._reader = reader
        self._abort = abort
        self._kick_writer()

    def detach_websocket(self, send_frame: Callable[[Packet], Awaitable[None]]) -> None:
        """The websocket whose frames went out through ``send_frame`` is done."""
        if self._send_frame == send_frame:
            self._send_frame = None
            self._reader = None
            self._abort = None

    def abort_transport(self) -> None:
        """Drop the websocket's connection at once, without a close frame.

        For a write to a client that reads nothing: cancelling it is not
        always possible (hypercorn's trio worker shields it), and a close
        frame would wait behind it. Aborting ends the write (it fails or
        returns) and frees the connection.
        """
        self._abort_with(self._abort)

    def _abort_with(self, abort: Callable[[], None] | None) -> None:
        if abort is None or self.transport_failed:
            return
        self.transport_failed = True  # nothing more goes through it, no close frame either
        log.info("session %s: aborting its connection", self.sid)
        abort()

    async def _within(self, seconds: float, write: Callable[[], Awaitable[None]]) -> None:
        """Run ``write`` (a closing session's last writes) for at most ``seconds``,
        then abort the connection if it is still writing."""
        abort = self._abort  # the websocket's close frame detaches it first
        if abort is None:  # polling (nothing to write), or nothing to abort with
            with anyio.move_on_after(seconds):
                await write()
            return
        async with anyio.create_task_group() as tg:

            async def abort_when_late() -> None:
                # For a write that cannot be cancelled: aborting ends it.
                await anyio.sleep(seconds)
                self._abort_with(abort)

            tg.start_soon(abort_when_late)
            with anyio.move_on_after(seconds) as late:
                await write()
            tg.cancel_scope.cancel()
        if late.cancelled_caught:
            # Cancelled, what it wrote may still sit in the server's buffer,
            # which the server would keep the connection open to deliver.
            self._abort_with(abort)

    async def _cut_off_write(self) -> None:
        """A graceful close found a write in flight: it gets ``ping_timeout``
        to end (the session's task group waits for it), then the connection
        is aborted."""
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + self._options.ping_timeout
            while self._flushing:
                if self._flush_idle is None:
                    self._flush_idle = new_event()
                await self._flush_idle.wait()
        if self._flushing:
            self.abort_transport()

    async def flush_outbox(self) -> None:
        """Write everything queued through the websocket, one writer at a time.

        Returns at once when another task is writing (it empties the queue
        before it stops), after waiting for it to stop. A failed write closes
        the session; a cancelled one puts back what it had not started to send.
        """
        if self._send_frame is None:
            return
        if self._flushing:
            if self._flush_idle is None:
                self._flush_idle = new_event()
            await self._flush_idle.wait()
            return
        await self._write([])

    async def _write(self, items: list[OutItem]) -> bool:
        """Be the writer: write ``items``, then everything queued meanwhile or before.

        The caller checked that nobody is writing and a websocket is attached.
        ``True`` (what :meth:`send` returns), also when the write failed.
        """
        send_frame = self._send_frame
        assert send_frame is not None
        self._flushing = True
        outbox = self.outbox
        try:
            while True:
                done = 0
                try:
                    for item in items:
                        done += 1
                        if isinstance(item, Flush):
                            item.done.set()
                        else:
                            await send_frame(item)
                            outbox.progress += 1
                except Exception:  # how an ASGI server says "the peer is gone" varies
                    log.debug("session %s: websocket send failed", self.sid, exc_info=True)
                    release_flushes(items[done:])
                    self.transport_failed = True
                    self.close(CloseReason.TRANSPORT_ERROR, discard=True)
                    return True
                except BaseException:  # cancelled: the frame in flight counts as sent
                    outbox.putback(items[done:])
                    raise
                if not len(outbox):
                    return True
                items = outbox.drain()
        finally:
            self._flushing = False
            idle, self._flush_idle = self._flush_idle, None
            if idle is not None:
                idle.set()
            if len(outbox):  # cancelled with packets others queued meanwhile
                self._kick_writer()

    async def flush(self) -> None:
        """Wait until the transport has written everything queued before this call.

        Returns at once if the session is closed (or closes meanwhile).
        """
        marker = Flush()
        if await self.send([marker]):
            await marker.done.wait()

    def close(self, reason: CloseReason, *, discard: bool = False, notify: bool = True) -> None:
        """Close the session (idempotent).

        With ``discard`` false, packets already queued are still delivered,
        followed by a CLOSE packet when ``notify`` is true.
        """
        if self.close_reason is not None:
            return
        self.close_reason = reason
        if notify and not discard:
            self.outbox.put_many_nowait([_CLOSE])
        if discard:
            release_flushes(self.outbox.drain())
        self.outbox.close(discard=discard)
        closed, self._closed_wakeup = self._closed_wakeup, None
        if closed is not None:
            wake(closed)
        if self._reader is not None:
            self._reader.cancel()  # stop reading: nothing more is accepted
        if self._predecessor is not None:
            self._predecessor.cancel()  # the handlers left in the polling task
        if self._flushing and self._abort is not None:
            # A write is in flight, maybe to a client that reads nothing:
            # the session's end must not wait for it. Cancelling it is not
            # enough (hypercorn's trio worker shields it).
            if discard:
                self.abort_transport()  # nothing more is owed to the client
            elif self._tg is not None:
                try:
                    self._tg.start_soon(self._cut_off_write)
                except RuntimeError:  # the task group has ended: so has the write
                    pass

    # -- inbound --------------------------------------------------------------

    async def receive(self, packet: Packet) -> None:
        """Handle one packet from the client.

        Raises:
            RemoteProtocolError: the packet is not allowed here; the caller
                closes the transport (the session is already closed).
        """
        kind = packet.type
        if kind is PacketType.MESSAGE:
            await self._server.handler.on_message(self, packet.data)
        elif kind is PacketType.PONG and self.protocol >= 4:
            if self._awaiting_pong:
                self._awaiting_pong = False
                self._last_heard = now = anyio.current_time()
                # The check due at the pong deadline sends the next ping (at
                # last pong + pingInterval). Only when that is earlier than
                # the deadline (pingInterval < pingTimeout) does the session
                # need an earlier check: one schedule entry per session.
                next_ping = now + self._options.ping_interval
                if next_ping < self._beat_due:
                    self._server.schedule_beat(self, next_ping)
        elif kind is PacketType.PING and self.protocol < 4:
            self._last_heard = anyio.current_time()
            self.send_nowait([Packet(PacketType.PONG, packet.data)])
        elif kind is PacketType.CLOSE:
            self.close(CloseReason.CLIENT_CLOSE, discard=True)
        elif kind is PacketType.NOOP:
            pass
        else:
            self.close(CloseReason.PROTOCOL_ERROR, discard=True)
            raise RemoteProtocolError(f"unexpected {kind.name} packet")

    def hold_reading(self, held: bool) -> None:
        """The layer above stops (``True``) or resumes reading this client's input
        (backpressure). A PONG (v4) or PING (v3) may wait unread meanwhile: the
        heartbeat does not count that against the client, which gets a full
        pingTimeout of reading from then on to be heard."""
        self._read_held = held
        if not held:
            self._read_resumed = anyio.current_time()

    def _unread_grace(self, now: float) -> float | None:
        """When to check again a client not heard in time that may have been
        left unread (see :meth:`hold_reading`); ``None``: it was read, it is late."""
        if self._read_held:
            return now + self._options.ping_timeout
        grace_ends = self._read_resumed + self._options.ping_timeout
        return grace_ends if now < grace_ends else None

    # -- heartbeat --------------------------------------------------------------

    def start_heartbeat(self, now: float) -> None:
        """Schedule this session's first heartbeat check (the server calls it once)."""
        self._last_heard = now
        self._stall_mark = (self.outbox.progress, now)
        first = self._options.ping_interval
        if self.protocol < 4:
            first += self._options.ping_timeout
        self._server.schedule_beat(self, now + first)

    def _stalled(self, now: float) -> bool:
        """Whether the client has taken nothing of what waits for it for
        ``write_timeout`` (checked at heartbeats); if so, it is disconnected.

        A heartbeat does not prove a client reads: one may answer pings and
        never read, holding all that is queued for it (and a write) for ever.
        """
        progress = self.outbox.progress
        seen, since = self._stall_mark
        waiting = self._flushing or len(self.outbox)
        if progress != seen or not waiting or self.upgrading:
            self._stall_mark = (progress, now)
            return False
        if now - since < self._options.stall_timeout:
            return False
        log.warning(
            "session %s: nothing written for %.1f s, disconnecting slow client",
            self.sid,
            now - since,
        )
        self.close(CloseReason.SLOW_CLIENT, discard=True)
        return True

    def beat(self, now: float) -> float | None:
        """A scheduled heartbeat check is due: act; when the next one is due (or ``None``).

        Engine.IO 4: the server pings every pingInterval (counted from the
        last pong) and closes the session when no pong comes within
        pingTimeout. Engine.IO 3: the client pings; a session silent for
        pingInterval + pingTimeout is closed.

        A client the layer above has not been reading (:meth:`hold_reading`)
        is given another pingTimeout rather than closed: its answer may be
        waiting unread. A live session whose outbound queue has not moved for
        ``write_timeout`` is closed as a slow client (see :meth:`_stalled`).

        Each check of a live session also ends the tasks that wait for work
        (the writer, the layer above's idle handler workers: see
        :meth:`EngineHandler.on_beat`): a client that went quiet holds none.
        """
        if self.protocol < 4:
            deadline = self._last_heard + self._options.ping_interval + self._options.ping_timeout
            if now < deadline:
                if self._stalled(now):
                    return None
                self._server.handler.on_beat(self)
                if self._writer_running:  # no ping to write: woken, it ends
                    self._writer_retire = True
                    self.outbox.wake()
                return deadline
            if (later := self._unread_grace(now)) is not None:
                return later
            self.close(CloseReason.PING_TIMEOUT, discard=True)
            return None
        if self._awaiting_pong:
            if (later := self._unread_grace(now)) is not None:
                return later
            self.close(CloseReason.PING_TIMEOUT, discard=True)
            return None
        next_ping = self._last_heard + self._options.ping_interval
        if now < next_ping:
            return next_ping  # the pong came: the next ping is due later
        if self._stalled(now):
            return None
        self._server.handler.on_beat(self)
        # A writer still waiting since the last traffic writes the ping and
        # ends; with none, one is started for the ping alone.
        self._writer_retire = self._writer_running
        if not self.send_nowait([_PING], linger=False):
            return None
        self._awaiting_pong = True
        return now + self._options.ping_timeout


class EngineServer:
    """The Engine.IO sessions of one process and the task group they run in."""

    def __init__(
        self, options: ServerOptions, handler: EngineHandler, *, node_id: str | None = None
    ) -> None:
        self.options = options
        self.handler = handler
        self.node_id = node_id if node_id is not None else secrets.token_hex(6)
        """This process's id in the cluster: the first part of every sid it makes."""
        self.forwarder: RequestForwarder | None = None
        """Forwards polling requests for other processes' sessions (none: refused)."""
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
        """Have :meth:`EngineSession.beat` called at ``due`` (anyio's clock)."""
        beats = self._beats
        session._beat_due = due
        entry = (due, next(self._beat_count), weakref.ref(session))
        heapq.heappush(beats, entry)
        if beats[0] is entry:  # sooner than what the loop sleeps for
            changed, self._beats_changed = self._beats_changed, None
            if changed is not None:
                wake(changed)

    async def _run_heartbeats(self) -> None:
        """Call every session's heartbeat checks when due, until cancelled."""
        beats = self._beats
        while True:
            now = anyio.current_time()
            while beats and beats[0][0] <= now:
                due, _, ref = heapq.heappop(beats)
                session = ref()
                if session is None or session.closed or due != session._beat_due:
                    continue  # gone, or a stale entry (an earlier check was scheduled)
                next_due = session.beat(now)
                if next_due is not None:
                    self.schedule_beat(session, next_due)
            changed = self._beats_changed = new_wakeup()
            with anyio.move_on_after(beats[0][0] - now if beats else math.inf):
                await wakeup_wait(changed)
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

    def new_session(
        self, *, protocol: int, transport: str, b64: bool, scope: Mapping[str, Any]
    ) -> EngineSession:
        """Create and register a session; the caller runs it (:meth:`EngineSession.host`).

        Raises:
            ServerNotRunning: the server's task group is not open.
        """
        if self._tg is None or not self.accepting:
            raise ServerNotRunning(ServerNotRunning.__doc__)
        session = EngineSession(self, protocol=protocol, transport=transport, b64=b64, scope=scope)
        self.sessions[session.sid] = session
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
        """What every new session gets once its task group runs: its heartbeat,
        and the layer above's ``on_open``."""
        session.start_heartbeat(anyio.current_time())
        await self.handler.on_open(session)
