"""The seam between processes: what a broker carries, and what it must do.

A server delivers a broadcast to its own clients itself, then hands it to its
broker, which carries it to every other process of the cluster; each of them
delivers it to *its* clients. The packet is encoded once, by the process that
broadcasts, and travels encoded.

A broker also carries *direct messages*: :meth:`Broker.send_to` hands bytes
to the one process whose node id is given, where the ``inbox`` callback of
its :meth:`Broker.run` receives them. gosf uses them to forward an HTTP
long-polling request that reached a process which does not hold its session
to the process that does (no sticky sessions needed).

A broker also carries *queries* (cluster-wide questions and commands: the
rooms of the cluster, a client's disconnection by sid): :meth:`Broker.query`
hands a typed query (:mod:`gosf.brokers._queries`) to every process, each
answers it with its :data:`Answer` callback, and the asker gathers the
answers, of the type the query names, bounded by a timeout. A broker that
crosses processes decodes what arrives once, where it arrives: a query it
cannot read, or of a kind it does not know, is dropped (counted, logged
once), never raised into its subscription.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import anyio
from anyio.abc import TaskStatus

from .._logs import WarnOnce
from ._queries import QUERY_TYPES, A, AnyAnswer, AnyQuery, Query

__all__ = (
    "DEFAULT_QUERY_TIMEOUT",
    "Answer",
    "Broadcast",
    "Broker",
    "Deliver",
    "Drops",
    "Inbox",
    "LocalBroker",
    "answer_locally",
    "check_timeout",
    "new_node_id",
)

log = logging.getLogger("gosf.broker")

DEFAULT_QUERY_TIMEOUT = 1.0
"""Seconds a cluster-wide query waits for the other processes' answers."""


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
    ``skip_rooms``: sockets in any of these rooms are left out (Node's
    ``except``). ``volatile``: a socket that cannot take the packet at once
    does not get it (see :attr:`gosf.protocol.session.Session.writable`).
    Both came after the first wire format: their defaults are what a process
    that does not know them does. ``offset``: the connection state recovery
    offset its origin gave it (``None``: recovery off there), under which
    every process logs it.
    """

    namespace: str
    parts: tuple[str | bytes, ...]
    rooms: tuple[str, ...] | None = None
    skip: str | None = None
    origin: str = ""
    skip_rooms: tuple[str, ...] = ()
    volatile: bool = False
    offset: str | None = None


Deliver = Callable[[Broadcast], None]
"""Delivers a broadcast from another process to this process's sockets (never blocks)."""

Inbox = Callable[[bytes], None]
"""Receives a direct message sent to this process by :meth:`Broker.send_to` (never blocks)."""

Answer = Callable[[AnyQuery], AnyAnswer | None]
"""Answers a query (from this process or another) for this process (never blocks).

It returns an answer of the query's ``answer_type``; ``None``: no answer."""


class Drops:
    """What a broker dropped from other processes, counted by kind.

    The first drop of each kind is logged as a warning, later ones at debug
    level (:class:`gosf._logs.WarnOnce`): a cluster mid-upgrade, whose newer
    processes ask what older ones do not know, must not fill the logs with
    one line per query.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._warn = WarnOnce(log, "dropped %s from another process (%s): %s")

    @property
    def counts(self) -> Counter[str]:
        """How many drops of each kind."""
        return self._warn.counts

    def drop(self, kind: str, detail: object) -> None:
        """Count a drop of ``kind`` (a fixed phrase, such as "an unknown query")."""
        self._warn(kind, self.label, detail)


def answer_locally(answer: Answer | None, query: Query[A], drops: Drops) -> A | None:
    """``answer(query)``, or ``None`` when there is no callback, it fails (logged),
    or ``query`` or its answer is of a kind this process does not know (counted
    in ``drops``)."""
    if answer is None:
        return None
    # (another name: narrowing ``query`` itself would lose the type of its answers)
    known: Query[A] | AnyQuery = query
    if not isinstance(known, QUERY_TYPES):
        drops.drop("an unknown query", type(query).__name__)
        return None
    try:
        reply = answer(known)
    except Exception:
        log.exception("%s: answering the query %r failed", drops.label, query)
        return None
    if reply is None:
        return None
    if not isinstance(reply, query.answer_type):
        drops.drop("an answer of the wrong type", f"{type(reply).__name__} to {query!r}")
        return None
    return reply


def check_timeout(timeout: float) -> None:
    """Raises: ValueError: ``timeout`` is not a positive number of seconds."""
    if not timeout > 0:
        raise ValueError(f"a query timeout must be positive, not {timeout!r}")


@runtime_checkable
class Broker(Protocol):
    """Carries broadcasts between the processes of a cluster.

    ``run`` lives in the server's task group for the server's lifetime: it
    receives what other processes publish and calls ``deliver`` for each
    (never for this process's own broadcasts), and keeps doing so across
    outages of whatever carries the messages. ``publish`` never blocks for
    long and never raises because the carrier is down: local delivery has
    already happened and must not be held up.

    ``run`` also answers the queries of every process (this one's included)
    with ``answer``, when given. ``query`` asks every live process of the
    cluster and returns their answers (this process's first, when it has
    one), once every process it knows to be live has answered or ``timeout``
    seconds have passed, whichever comes first; with the carrier down it
    returns this process's answer only, without raising.

    ``send_to`` hands ``data`` to the process ``node_id``, whose ``run``
    passes it to its ``inbox``; it returns whether that process is reachable
    (subscribed) now, and ``False`` (never an exception) when it is not or
    when the carrier is down. Messages a process sends to another one arrive
    in the order they were sent, at most once.
    """

    node_id: str

    async def publish(self, broadcast: Broadcast) -> None: ...

    async def send_to(self, node_id: str, data: bytes) -> bool: ...

    async def query(
        self,
        query: Query[A],
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> list[A]: ...

    async def run(
        self,
        deliver: Deliver,
        *,
        answer: Answer | None = None,
        inbox: Inbox | None = None,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None: ...


class LocalBroker:
    """The default: one process, nothing to carry (needs no service)."""

    def __init__(self) -> None:
        self.node_id = new_node_id()
        self._answer: Answer | None = None
        self.drops = Drops(f"local broker {self.node_id}")

    async def publish(self, broadcast: Broadcast) -> None:
        return None

    async def send_to(self, node_id: str, data: bytes) -> bool:
        """``False``: there is no other process (a message to itself is not carried)."""
        return False

    async def query(
        self,
        query: Query[A],
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> list[A]:
        """This process's answer (the only process), if it has one.

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        check_timeout(timeout)
        local = answer_locally(self._answer, query, self.drops)
        return [] if local is None else [local]

    async def run(
        self,
        deliver: Deliver,
        *,
        answer: Answer | None = None,
        inbox: Inbox | None = None,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        self._answer = answer
        try:
            task_status.started()
            await anyio.sleep_forever()
        finally:
            self._answer = None
