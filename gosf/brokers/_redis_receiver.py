"""What arrives on the Redis broker's subscription, and where each message goes.

One subscription carries four channels (:class:`~gosf.brokers._redis_wire.Channels`);
:meth:`Receiver.on_message` routes each message by its channel:

* a broadcast of another process is decoded and handed to ``deliver``, in
  the order Redis sends them. This process's own broadcasts come back too
  and are skipped; so is any repeat of a broadcast already delivered (a short
  memory of ``(origin, sequence)`` pairs), so none is delivered twice;
* a direct message (:meth:`RedisBroker.send_to`: gosf forwards long-polling
  requests this way, see ``gosf._cluster.forward``) goes to ``inbox``, as
  it is;
* a query of any process, and an answer to a query of this one, go to
  :class:`~gosf.brokers._redis_queries.RedisQueries`.

Nothing here waits: a broadcast that does not decode is dropped with a
warning, and an exception from ``deliver`` or ``inbox`` is logged and does
not stop the subscription.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from anyio.abc import TaskGroup

from ._base import Deliver, Inbox
from ._redis_queries import RedisQueries
from ._redis_session import Session
from ._redis_wire import Channels, decode_message

__all__ = ("SEEN_MAX", "Receiver")

log = logging.getLogger("gosf.broker")

SEEN_MAX = 4096
"""How many recent ``(origin, sequence)`` pairs a broker remembers to drop repeats."""


class Receiver:
    """Routes what the subscription of one process receives (its session's ``Listener``).

    ``deliver`` and ``inbox`` are the broker's callbacks while it runs
    (``inbox`` ``None``: direct messages are dropped). ``label`` names the
    broker in logs.
    """

    def __init__(self, node_id: str, channels: Channels, queries: RedisQueries, label: str) -> None:
        self.node_id = node_id
        self.label = label
        self.deliver: Deliver | None = None
        self.inbox: Inbox | None = None
        self._queries = queries
        self._broadcasts = channels.broadcast.encode()
        self._direct = channels.node.encode()
        self._asked = channels.query.encode()
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()

    def on_message(self, channel: bytes, data: Any, session: Session, tasks: TaskGroup) -> None:
        """Route one message that arrived on ``channel`` (see the module docstring)."""
        if channel == self._broadcasts:
            self._receive(data)
        elif channel == self._direct:
            self._receive_direct(data)
        elif channel == self._asked:
            self._queries.start_answer(tasks, session, data)
        else:
            self._queries.receive_answer(data)

    def _receive_direct(self, data: Any) -> None:
        inbox = self.inbox
        if inbox is None:
            return
        if not isinstance(data, bytes):
            log.warning("%s: dropped a direct message that is not bytes", self.label)
            return
        try:
            inbox(data)
        except Exception:
            log.exception("%s: the inbox failed on a direct message", self.label)

    def _receive(self, data: Any) -> None:
        deliver = self.deliver
        if deliver is None:
            return
        if not isinstance(data, bytes):
            log.warning("%s: dropped a message that is not bytes: %r", self.label, type(data))
            return
        try:
            broadcast, seq = decode_message(data)
        except ValueError as exc:
            log.warning("%s: dropped a message it cannot decode: %s", self.label, exc)
            return
        if broadcast.origin == self.node_id:
            return
        key = (broadcast.origin, seq)
        if key in self._seen:
            log.warning("%s: dropped a repeated message %s", self.label, key)
            return
        self._seen[key] = None
        if len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        try:
            deliver(broadcast)
        except Exception:
            log.exception("%s: delivering a broadcast from %s failed", self.label, key[0])
