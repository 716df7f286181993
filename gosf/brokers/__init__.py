"""Brokers: how broadcasts reach the clients of other worker processes and machines.

``LocalBroker`` (the default) keeps everything in one process; ``MemoryBroker``
links several servers of one process (a ``MemoryBus``); ``RedisBroker``
carries broadcasts between processes and machines through Redis pub/sub.
:func:`from_url` picks one from the ``broker`` setting. Cluster queries and
their answers are typed: :class:`RoomsQuery`, :class:`CountQuery`,
:class:`SocketCommand`, answered by :class:`RoomCounts`,
:class:`SocketCount`, :class:`CommandResult`; those of many sockets at once,
:class:`FetchSockets`, :class:`RoomsCommand` and :class:`AckBroadcast`, by
:class:`SocketList`, :class:`SocketCount` and :class:`AckRecipients`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import (
    DEFAULT_QUERY_TIMEOUT,
    Answer,
    Broadcast,
    Broker,
    Deliver,
    Drops,
    Inbox,
    LocalBroker,
    new_node_id,
)
from ._memory import MemoryBroker, MemoryBus
from ._queries import (
    AckBroadcast,
    AckRecipients,
    AnyAnswer,
    AnyQuery,
    CommandResult,
    CountQuery,
    FetchSockets,
    HandedSession,
    Query,
    QueryAnswer,
    RoomCounts,
    RoomsCommand,
    RoomsQuery,
    ServerSideEvent,
    SocketCommand,
    SocketCount,
    SocketInfo,
    SocketList,
    TakeSession,
    UnknownQuery,
)

if TYPE_CHECKING:
    from ._redis import RedisBroker

__all__ = (
    "DEFAULT_QUERY_TIMEOUT",
    "AckBroadcast",
    "AckRecipients",
    "Answer",
    "AnyAnswer",
    "AnyQuery",
    "Broadcast",
    "Broker",
    "CommandResult",
    "CountQuery",
    "Deliver",
    "Drops",
    "FetchSockets",
    "HandedSession",
    "Inbox",
    "LocalBroker",
    "MemoryBroker",
    "MemoryBus",
    "Query",
    "QueryAnswer",
    "RedisBroker",
    "RoomCounts",
    "RoomsCommand",
    "RoomsQuery",
    "ServerSideEvent",
    "SocketCommand",
    "SocketCount",
    "SocketInfo",
    "SocketList",
    "TakeSession",
    "UnknownQuery",
    "from_url",
    "new_node_id",
)


def __getattr__(name: str) -> Any:
    """``RedisBroker`` is imported on first use: it needs coredis (``gosf[redis]``)."""
    if name == "RedisBroker":
        from ._redis import RedisBroker

        return RedisBroker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def from_url(url: str | None) -> Broker:
    """The broker for a ``broker`` setting: ``None`` → local, ``redis://...`` → Redis.

    Raises:
        ValueError: an unknown scheme.
    """
    if url is None or url in ("", "local", "memory://"):
        return LocalBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from ._redis import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unknown broker {url!r}: use redis://host:port/db (or nothing: local)")
