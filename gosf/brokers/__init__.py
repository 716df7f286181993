"""Brokers: how broadcasts reach the clients of other worker processes and machines.

``LocalBroker`` (the default) keeps everything in one process; ``MemoryBroker``
links several servers of one process (a ``MemoryBus``); ``RedisBroker``
carries broadcasts between processes and machines through Redis pub/sub.
:func:`from_url` picks one from the ``broker`` setting.
"""

from __future__ import annotations

from ._base import (
    DEFAULT_QUERY_TIMEOUT,
    Answer,
    Broadcast,
    Broker,
    Deliver,
    Inbox,
    LocalBroker,
    new_node_id,
)
from ._memory import MemoryBroker, MemoryBus

__all__ = (
    "DEFAULT_QUERY_TIMEOUT",
    "Answer",
    "Broadcast",
    "Broker",
    "Deliver",
    "Inbox",
    "LocalBroker",
    "MemoryBroker",
    "MemoryBus",
    "from_url",
    "new_node_id",
)


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
