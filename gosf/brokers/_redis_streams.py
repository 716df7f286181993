"""The Redis broker's Streams mode: broadcasts through a Redis stream, not pub/sub.

With ``RedisBroker(url, streams=True)`` each broadcast is appended to the
stream ``<channel>:stream`` (``XADD ... MAXLEN ~ stream_maxlen``), encoded as
on pub/sub (:mod:`gosf.brokers._redis_wire`, in the entry's field ``m``),
and every process reads that stream from the last entry it delivered
(``XREAD BLOCK``, each read bounded). What that buys over pub/sub:

* a process cut off from Redis for a while (a network blip, a Redis
  restart with persistence) reads, once it is back, every broadcast the
  others appended meanwhile, in order, once each, as long as the stream
  still holds them (its length is bounded by ``stream_maxlen``, roughly);
* the stream outlives the process that appended to it.

What it does not: a broadcast this process could not append (Redis away)
reaches its own clients only, as on pub/sub. A process starts reading
where the stream ends when it first subscribes (what came before is not
for it). Queries and direct messages still go through pub/sub. Every
process of a cluster must use the same mode: one on pub/sub and one on the
stream do not hear each other's broadcasts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import anyio
from coredis.tokens import PureToken

from ._base import Deliver
from ._redis_session import Session, describe
from ._redis_wire import decode_message

__all__ = ("FIELD", "BroadcastStream")

log = logging.getLogger("gosf.broker")

FIELD: Final = b"m"
"""The field of a stream entry that holds the encoded broadcast."""

READ_COUNT: Final = 256
"""Entries read at most at once."""


class BroadcastStream:
    """The stream ``key`` of one broker: appending to it, and following it
    from the last entry delivered."""

    def __init__(
        self,
        key: str,
        node_id: str,
        *,
        maxlen: int,
        block: float,
        timeout: float,
        label: str,
    ) -> None:
        """``block``: seconds one XREAD waits for entries at most; ``timeout``:
        seconds any command may take beyond that."""
        self.key = key
        self._key_bytes = key.encode()
        self.node_id = node_id
        self.maxlen = maxlen
        self.block = block
        self.timeout = timeout
        self.label = label
        self.last_id: bytes | None = None
        """The entry delivered last (``None``: not reading yet)."""

    async def append(self, session: Session, payload: bytes) -> str | None:
        """XADD ``payload`` within ``timeout``; ``None``, or why it failed."""
        try:
            with anyio.move_on_after(self.timeout):
                await session.client.xadd(
                    self.key,
                    {FIELD: payload},
                    trim_strategy=PureToken.MAXLEN,
                    trim_operator=PureToken.APPROXIMATELY,
                    threshold=self.maxlen,
                )
                return None
        except Exception as exc:  # whatever coredis raises for a broken connection
            return f"XADD failed: {describe(exc)}"
        return f"XADD timed out after {self.timeout}s"

    async def follow(self, session: Session, deliver: Deliver, reading: Callable[[], None]) -> None:
        """Deliver the stream's new entries of other processes, in order, until
        a read fails; ``reading`` is called once the place to read from is known.

        Raises:
            TimeoutError: a read took longer than ``block + timeout``.
            Exception: whatever coredis raised.
        """
        client = session.client
        if self.last_id is None:
            with anyio.fail_after(self.timeout):
                newest = await client.xrevrange(self.key, "+", "-", count=1)
            self.last_id = _bytes(newest[0].identifier) if newest else b"0-0"
        reading()
        # The connection's own read timeout is ``timeout``: a blocked read
        # must end well before it, or coredis takes it for a lost connection.
        block_ms = max(1, int(min(self.block, self.timeout / 2) * 1000))
        while True:
            with anyio.fail_after(self.block + self.timeout):
                read = await client.xread(
                    {self.key: self.last_id}, count=READ_COUNT, block=block_ms
                )
            if not read:
                continue
            entries = read.get(self._key_bytes) or read.get(self.key) or ()  # type: ignore[call-overload]
            for entry in entries:
                self.last_id = _bytes(entry.identifier)
                self._deliver(entry.field_values.get(FIELD), deliver)

    def _deliver(self, data: object, deliver: Deliver) -> None:
        if not isinstance(data, bytes):
            log.warning("%s: a stream entry without a broadcast: dropped", self.label)
            return
        try:
            broadcast, _ = decode_message(data)
        except ValueError as exc:
            log.warning("%s: a stream entry that does not decode: %s", self.label, exc)
            return
        if broadcast.origin == self.node_id:
            return  # this process delivered it to its clients already
        try:
            deliver(broadcast)
        except Exception:
            log.exception("%s: delivering a broadcast failed", self.label)


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
