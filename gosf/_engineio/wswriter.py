"""Writing a session's outbound queue to the websocket that carries it.

Who writes, one at a time (:attr:`WebSocketWriter.writing`):

* a handler of the client writes its own packets, and whatever is queued,
  when nobody else is writing (``EngineSession.send``): no hand-over;
* the websocket's reader writes what it queued after each message;
* anything else queued (broadcasts, other clients' emits, pings) is written
  by a writer task started on demand (:meth:`WebSocketWriter.kick`). It
  stays while traffic comes, until the next heartbeat finds it idle
  (:meth:`WebSocketWriter.retire`): an idle client has no writer task.

The queue is the session machine's (:class:`gosf.protocol.session.Session`):
the writer takes packets, writes them, and reports each one written; a
write that is cancelled puts back what it had not started. A write that
fails ends the session (transport error). One that the client blocks by not
reading is ended by aborting the connection (:meth:`WebSocketWriter.abort`):
cancelling it is not always possible (hypercorn's trio worker shields it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio

from ..protocol.engineio import Packet
from ..protocol.session import Session
from .event import Event, Primitives

__all__ = ("WebSocketWriter", "Written")

log = logging.getLogger("gosf.engineio")


class _Server(Protocol):
    primitives: Primitives[Any]


class Written(Protocol):
    """What a writer needs of the session it writes for (``EngineSession``)."""

    sid: str
    machine: Session

    @property
    def server(self) -> _Server: ...

    @property
    def closed(self) -> bool: ...

    def start_soon(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None: ...

    def transport_closed(self, *, failed: bool = False) -> None: ...

    def wake(self) -> None: ...

    async def wait_changed(self) -> None: ...


class WebSocketWriter:
    """Writes one session's packets to its websocket, one writer at a time."""

    __slots__ = (
        "_abort",
        "_idle",
        "_retire",
        "failed",
        "has_task",
        "in_message",
        "reader",
        "send_frame",
        "session",
        "writing",
    )

    def __init__(
        self,
        session: Written,
        send_frame: Callable[[Packet], Awaitable[None]],
        reader: anyio.CancelScope,
        abort: Callable[[], None] | None = None,
    ) -> None:
        """``send_frame`` writes one packet; ``reader`` is the cancel scope of
        the task reading the websocket (closing the session cancels it);
        ``abort`` drops the connection at once (without it, a write blocked
        by the client can only be cancelled)."""
        self.session = session
        self.send_frame = send_frame
        self.reader = reader
        self._abort = abort
        self.writing = False
        """Someone is writing (and will write all that is queued)."""
        self.failed = False
        """Writing failed, or the connection was aborted: nothing more goes
        through it, not even a close frame."""
        self.has_task = False
        """A writer task is alive (see :meth:`kick`)."""
        self.in_message = False
        """The reading task is handing a message to the layer above; it writes
        what is queued before it reads the next (see ``EngineSession.send_nowait``)."""
        self._retire = False  # it should end once the queue is empty
        self._idle: Event | None = None  # set when the current writing stops

    # -- who writes ---------------------------------------------------------------------

    def kick(self, *, linger: bool = True) -> None:
        """Make sure someone writes what is queued: start a writer task if
        nobody writes. ``linger`` false: that task ends once the queue is
        empty, instead of waiting for more until the next heartbeat."""
        if self.writing or self.has_task:
            return  # a waiting writer task is woken with the session's waiters
        session = self.session
        if session.closed or not session.machine.queued:
            return
        try:
            session.start_soon(self._run)
        except RuntimeError:  # not running (any more)
            return
        self.has_task = True
        self._retire = not linger

    def retire(self) -> None:
        """A heartbeat: a writer task alive now ends once the queue is empty."""
        self._retire = self.has_task

    async def _run(self) -> None:
        session = self.session
        machine = session.machine
        wrote = False
        try:
            while not session.closed and not self.failed:
                if machine.queued:
                    # write_queued() itself when nobody writes, not through
                    # flush(): one coroutine level less on every resumption
                    # of a write (a fast path: see "Fast paths" in
                    # docs/performance.md).
                    if self.writing:
                        # Another writer (the reader, a handler) empties the
                        # queue: this task, started for nothing, ends after
                        # it instead of waiting for traffic until the beat.
                        await self.flush()
                    else:
                        await self.write_queued()
                        wrote = True
                elif not wrote or self._retire:
                    return  # no await between this check and the flag below
                else:
                    await session.wait_changed()
        finally:
            self.has_task = False
            self._retire = False

    # -- writing ------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write everything queued; when another task is writing, wait until
        it stops instead (it empties the queue before it does)."""
        if self.writing:
            if self._idle is None:
                self._idle = self.session.server.primitives.event()
            await self._idle.wait()
            return
        await self.write_queued()

    async def write_queued(self) -> None:
        """Be the writer until the queue is empty: the caller checked that
        nobody is writing. A failed write ends the session; a cancelled one
        puts back what it had not started."""
        session = self.session
        machine = session.machine
        send_frame = self.send_frame
        self.writing = True
        emptied = False
        try:
            while not self.failed:
                packets = machine.take()
                if not packets:
                    emptied = True
                    return
                done = 0
                try:
                    for packet in packets:
                        await send_frame(packet)
                        done += 1
                        machine.written(1)
                except Exception:  # how an ASGI server says "the peer is gone" varies
                    log.debug("session %s: websocket send failed", session.sid, exc_info=True)
                    machine.written()  # the rest is lost with the connection
                    self.failed = True
                    session.transport_closed(failed=True)
                    return
                except BaseException:  # cancelled: the frame in flight counts as sent
                    machine.written(1)
                    machine.put_back(packets[done + 1 :])
                    raise
                session.wake()  # room in the queue, packets written: waiters go on
        finally:
            self.writing = False
            idle, self._idle = self._idle, None
            if idle is not None:
                idle.set()
            if not emptied and not self.failed and machine.queued:
                self.kick()  # cancelled with packets others queued

    # -- when the client does not read -------------------------------------------------

    def abort(self) -> None:
        """Drop the websocket's connection at once, without a close frame.

        For a write to a client that reads nothing: aborting ends the write
        (it fails or returns) and frees the connection.
        """
        abort = self._abort
        if abort is None or self.failed:
            return
        self.failed = True
        log.info("session %s: aborting its connection", self.session.sid)
        abort()

    async def within(self, seconds: float, write: Callable[[], Awaitable[None]]) -> None:
        """Run ``write`` (a closing session's last writes) for at most
        ``seconds``, then abort the connection if it is still writing."""
        if self._abort is None:
            with anyio.move_on_after(seconds):
                await write()
            return
        async with anyio.create_task_group() as tg:

            async def abort_when_late() -> None:
                # For a write that cannot be cancelled: aborting ends it.
                await anyio.sleep(seconds)
                self.abort()

            tg.start_soon(abort_when_late)
            with anyio.move_on_after(seconds) as late:
                await write()
            tg.cancel_scope.cancel()
        if late.cancelled_caught:
            # Cancelled, what it wrote may still sit in the server's buffer,
            # which the server would keep the connection open to deliver.
            self.abort()

    async def cut_off(self, seconds: float) -> None:
        """A graceful close found a write in flight: it gets ``seconds`` to
        end (the session's end waits for this), then the connection
        is aborted."""
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + seconds
            while self.writing:
                if self._idle is None:
                    self._idle = self.session.server.primitives.event()
                await self._idle.wait()
        if self.writing:
            self.abort()
