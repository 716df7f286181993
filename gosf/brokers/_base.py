"""The seam between processes: what a broker carries, and what it must do.

A server delivers a broadcast to its own clients itself, then hands it to its
broker, which carries it to every other process of the cluster; each of them
delivers it to *its* clients. The packet is encoded once, by the process that
broadcasts, and travels encoded.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import anyio
from anyio.abc import TaskStatus

__all__ = ("Broadcast", "Broker", "Deliver", "LocalBroker", "new_node_id")


def new_node_id() -> str:
    """A random id for one process of a cluster."""
    return secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class Broadcast:
    """One broadcast, as it crosses processes.

    ``parts`` is the encoded Socket.IO packet: the text part, then binary
    attachments. ``rooms`` ``None`` means every socket of the namespace.
    ``skip`` is a socket sid not to deliver to (a client broadcast's sender).
    ``origin`` is the node id of the process that broadcast it.
    """

    namespace: str
    parts: tuple[str | bytes, ...]
    rooms: tuple[str, ...] | None = None
    skip: str | None = None
    origin: str = ""


Deliver = Callable[[Broadcast], None]
"""Delivers a broadcast from another process to this process's sockets (never blocks)."""


@runtime_checkable
class Broker(Protocol):
    """Carries broadcasts between the processes of a cluster.

    ``run`` lives in the server's task group for the server's lifetime: it
    receives what other processes publish and calls ``deliver`` for each
    (never for this process's own broadcasts), and keeps doing so across
    outages of whatever carries the messages. ``publish`` never blocks for
    long and never raises because the carrier is down: local delivery has
    already happened and must not be held up.
    """

    node_id: str

    async def publish(self, broadcast: Broadcast) -> None: ...

    async def run(
        self, deliver: Deliver, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None: ...


class LocalBroker:
    """The default: one process, nothing to carry (needs no service)."""

    def __init__(self) -> None:
        self.node_id = new_node_id()

    async def publish(self, broadcast: Broadcast) -> None:
        return None

    async def run(
        self, deliver: Deliver, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await anyio.sleep_forever()
