"""A session's outbound queue and what became of each packet (sans-IO).

The session machine (``session.py``) decides what may be queued and when a
session ends; this queue keeps the packets and the counts the machine and
its driver read:

* ``queued``: waiting for the carrying transport;
* in flight: taken by the transport (:meth:`Outbound.take`), not yet
  reported written (:meth:`Outbound.written`) or given back
  (:meth:`Outbound.put_back`);
* :attr:`Outbound.sent` and :attr:`Outbound.settled`: packets queued over
  the session's life, and those whose write has ended (written, lost with a
  client that went away, or dropped with a closed session). Everything
  queued before ``sent`` was ``n`` has gone once ``settled`` reaches ``n``:
  that is what a flush waits for.
* :attr:`Outbound.writes`: writes reported, which the machine compares
  between heartbeats to tell a client that reads from one that does not.
"""

from __future__ import annotations

from collections.abc import Sequence

from .engineio import Packet

__all__ = ("Outbound",)


class Outbound:
    """The packets waiting for one session's client, oldest first."""

    __slots__ = ("_in_flight", "_queue", "sent", "settled", "writes")

    def __init__(self) -> None:
        # A list, not a deque: it is nearly always taken whole, and an empty
        # deque costs many times an empty list's size per client.
        self._queue: list[Packet] = []
        self._in_flight = 0
        self.sent = 0
        self.settled = 0
        self.writes = 0

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Packets taken by the transport and not yet reported."""
        return self._in_flight

    def push(self, packets: Sequence[Packet]) -> None:
        """Queue ``packets`` after the others (the machine checked the bound)."""
        self._queue.extend(packets)
        self.sent += len(packets)

    def take(self, limit: int | None = None) -> list[Packet]:
        """Hand up to ``limit`` queued packets to the transport (all when ``None``)."""
        queue = self._queue
        if limit is None or limit >= len(queue):
            taken, self._queue = queue, []
        else:
            taken, self._queue = queue[:limit], queue[limit:]
        self._in_flight += len(taken)
        return taken

    def written(self, count: int | None = None) -> None:
        """``count`` of the packets in flight are written, or lost with their
        client (all of them when ``None``): settled either way."""
        done = self._in_flight if count is None else min(count, self._in_flight)
        self._in_flight -= done
        self.settled += done
        self.writes += 1

    def put_back(self, packets: list[Packet]) -> None:
        """Packets the transport took and did not write go first again, in order."""
        self._in_flight -= len(packets)
        self._queue[:0] = packets

    def drop(self) -> None:
        """Forget everything queued or in flight (the session is closed): settled."""
        self.settled += len(self._queue) + self._in_flight
        self._queue = []
        self._in_flight = 0
