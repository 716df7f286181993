"""Brokers that meet in memory: several servers in one process (tests, embedding).

Every :class:`MemoryBroker` attached to the same :class:`MemoryBus` receives
what the others publish. Each subscriber's queue is bounded; a subscriber that
falls ``buffer`` broadcasts behind loses the newest ones (logged), as a slow
network peer would.
"""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

from ._base import Broadcast, Deliver, new_node_id

__all__ = ("MemoryBroker", "MemoryBus")

log = logging.getLogger("gosf.broker")


class MemoryBus:
    """Where the :class:`MemoryBroker`\\ s of one process meet."""

    def __init__(self, buffer: int = 1024) -> None:
        self.buffer = buffer
        self._subscribers: dict[str, MemoryObjectSendStream[Broadcast]] = {}

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

    async def publish(self, broadcast: Broadcast) -> None:
        if broadcast.origin != self.node_id:
            broadcast = Broadcast(
                broadcast.namespace, broadcast.parts, broadcast.rooms, broadcast.skip, self.node_id
            )
        self._bus._publish(broadcast)

    async def run(
        self, deliver: Deliver, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        send, receive = anyio.create_memory_object_stream[Broadcast](self._bus.buffer)
        self._bus._subscribers[self.node_id] = send
        try:
            task_status.started()
            async with receive:
                async for broadcast in receive:
                    deliver(broadcast)
        finally:
            self._bus._subscribers.pop(self.node_id, None)
            send.close()
