"""A bounded outbound queue for one Engine.IO session.

Why not a memory object stream: a long-polling GET has to take *everything*
queued at once, has to be woken without consuming a packet (the upgrade probe
answers it with a NOOP), and the transport that drains the queue changes
during an upgrade. A list plus two events does all of that without a task.

Every producer and the single consumer run on the same event loop thread, so
no lock is needed; events are replaced after they fire (events cannot be
reset). A list, not a deque: the queue is nearly always drained whole, and an
empty deque costs ~600 bytes per client against 56 for a list.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ._event import Event, new_event

T = TypeVar("T")

__all__ = ("Outbox", "OutboxClosed")


class OutboxClosed(Exception):
    """The session this queue belongs to has closed."""


class Outbox(Generic[T]):
    """A FIFO of at most ``maxlen`` items with async waits for data and room."""

    __slots__ = ("_closed", "_items", "_maxlen", "_readable", "_woken", "_writable", "progress")

    def __init__(self, maxlen: int) -> None:
        self._items: list[T] = []
        self._maxlen = maxlen
        # Events exist only while someone waits on them: the hot path (put,
        # drain) then costs no allocation and no wake-up.
        self._readable: Event | None = None
        self._writable: Event | None = None
        self._closed = False
        self._woken = False
        self.progress = 0
        """Bumped as the queue's consumer moves on: by :meth:`drain` (per item
        taken) and by a writer per item written. The session's heartbeat
        compares it between checks (see ``EngineSession._stalled``)."""

    def __len__(self) -> int:
        return len(self._items)

    @property
    def maxlen(self) -> int:
        return self._maxlen

    @property
    def closed(self) -> bool:
        return self._closed

    def _signal_readable(self) -> None:
        event = self._readable
        if event is not None:
            self._readable = None
            event.set()

    def _signal_writable(self) -> None:
        event = self._writable
        if event is not None:
            self._writable = None
            event.set()

    async def _wait_writable(self) -> None:
        if self._writable is None:
            self._writable = new_event()
        await self._writable.wait()

    def put_many_nowait(self, items: list[T]) -> bool:
        """Queue all of ``items`` back to back, or none of them when they do not fit.

        Raises:
            OutboxClosed: the queue is closed.
        """
        if self._closed:
            raise OutboxClosed
        if len(self._items) + len(items) > self._maxlen:
            return False
        self._items.extend(items)
        self._signal_readable()
        return True

    async def put_many(self, items: list[T]) -> None:
        """Queue all of ``items`` back to back, waiting for room for all of them.

        Raises:
            OutboxClosed: the queue is (or becomes) closed.
        """
        if len(items) > self._maxlen:
            raise ValueError(f"{len(items)} items can never fit a queue of {self._maxlen}")
        while not self.put_many_nowait(items):
            await self._wait_writable()

    async def wait_empty(self) -> None:
        """Wait until every queued item has been taken."""
        while self._items:
            await self._wait_writable()

    def wake(self) -> None:
        """Make a waiting :meth:`wait` return even though nothing was queued."""
        self._woken = True
        self._signal_readable()

    async def wait(self) -> None:
        """Wait until an item is queued, :meth:`wake` is called or the queue closes."""
        while not self._items and not self._closed and not self._woken:
            if self._readable is None:
                self._readable = new_event()
            await self._readable.wait()
        self._woken = False

    def drain(self, limit: int | None = None) -> list[T]:
        """Take up to ``limit`` queued items (all when ``None``), oldest first."""
        items = self._items
        if limit is None or limit >= len(items):
            taken, self._items = items, []
        else:
            taken = items[:limit]
            del items[:limit]
        self.progress += len(taken)
        self._signal_writable()
        return taken

    def putback(self, items: list[T]) -> None:
        """Return ``items`` to the front of the queue, in order, even when closed or full."""
        self._items[:0] = items
        self._signal_readable()

    def close(self, *, discard: bool = False) -> None:
        """Refuse further items and wake every waiter.

        Items already queued stay readable unless ``discard`` is true.
        """
        self._closed = True
        if discard:
            self._items.clear()
        self._signal_readable()
        self._signal_writable()
