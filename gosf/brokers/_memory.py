"""Brokers that meet in memory: several servers in one process (tests, embedding).

Every :class:`MemoryBroker` attached to the same :class:`MemoryBus` receives
what the others publish. Each subscriber's queue is bounded; a subscriber that
falls ``buffer`` broadcasts behind loses the newest ones (logged), as a slow
network peer would.

A direct message (:meth:`MemoryBroker.send_to`) is handed to the inbox of
the running broker it is addressed to, at once, in the sending task.

A query is answered by every broker of the bus whose :meth:`MemoryBroker.run`
is running, at once and in the asking task (the answers never block). The
bus carries queries and answers as the typed objects they are (no encoding:
they never leave the process); an object that is not a query this gosf
knows is dropped by each broker that gets it (counted, logged once).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

from ._base import (
    DEFAULT_QUERY_TIMEOUT,
    Answer,
    Broadcast,
    Deliver,
    Drops,
    Inbox,
    answer_locally,
    check_timeout,
    new_node_id,
)
from ._queries import A, Query

__all__ = ("MemoryBroker", "MemoryBus")

log = logging.getLogger("gosf.broker")


class MemoryBus:
    """Where the :class:`MemoryBroker`\\ s of one process meet."""

    def __init__(self, buffer: int = 1024) -> None:
        self.buffer = buffer
        self._subscribers: dict[str, MemoryObjectSendStream[Broadcast]] = {}
        # the running brokers: how each answers, and where it counts what it drops
        self._answerers: dict[str, tuple[Answer | None, Drops]] = {}
        self._inboxes: dict[str, Inbox | None] = {}  # the running brokers

    def broker(self) -> MemoryBroker:
        """A new broker on this bus."""
        return MemoryBroker(self)

    def _publish(self, broadcast: Broadcast) -> None:
        for node, stream in list(self._subscribers.items()):
            if node == broadcast.origin:
                continue
            try:
                stream.send_nowait(broadcast)
            except anyio.WouldBlock:
                log.warning("broker %s is %d broadcasts behind: dropped one", node, self.buffer)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.pop(node, None)


class MemoryBroker:
    """A broker on a :class:`MemoryBus`."""

    def __init__(self, bus: MemoryBus) -> None:
        self.node_id = new_node_id()
        self._bus = bus
        self.drops = Drops(f"memory broker {self.node_id}")

    async def publish(self, broadcast: Broadcast) -> None:
        if broadcast.origin != self.node_id:
            broadcast = replace(broadcast, origin=self.node_id)
        self._bus._publish(broadcast)

    async def send_to(self, node_id: str, data: bytes) -> bool:
        """Hand ``data`` to the inbox of the running broker ``node_id``; whether there is one."""
        await anyio.lowlevel.checkpoint()
        if node_id not in self._bus._inboxes:
            return False
        inbox = self._bus._inboxes[node_id]
        if inbox is not None:
            try:
                inbox(bytes(data))
            except Exception:
                log.exception("broker %s: its inbox failed on a direct message", node_id)
        return True

    async def query(
        self,
        query: Query[A],
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> list[A]:
        """The answers of this broker, then of every other running broker of the bus.

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        check_timeout(timeout)
        await anyio.lowlevel.checkpoint()
        answerers = self._bus._answerers
        order = [self.node_id] + [node for node in answerers if node != self.node_id]
        answers: list[A] = []
        for node in order:
            if node in answerers:
                answerer, drops = answerers[node]
                answer = answer_locally(answerer, query, drops)
                if answer is not None:
                    answers.append(answer)
        return answers

    async def run(
        self,
        deliver: Deliver,
        *,
        answer: Answer | None = None,
        inbox: Inbox | None = None,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        send, receive = anyio.create_memory_object_stream[Broadcast](self._bus.buffer)
        self._bus._subscribers[self.node_id] = send
        self._bus._answerers[self.node_id] = (answer, self.drops)
        self._bus._inboxes[self.node_id] = inbox
        try:
            task_status.started()
            async with receive:
                async for broadcast in receive:
                    deliver(broadcast)
        finally:
            self._bus._subscribers.pop(self.node_id, None)
            self._bus._answerers.pop(self.node_id, None)
            self._bus._inboxes.pop(self.node_id, None)
            send.close()
