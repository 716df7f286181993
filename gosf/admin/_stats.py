"""What ``server_stats`` reports every few seconds: the process, its clients, and
the events of the last seconds counted per second (the reference server's
``EventBuffer``: the UI draws its connection and byte histograms from them)."""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

__all__ = ("IN", "OUT", "EventCounts", "memory_rss")

# How many distinct (second, type, subtype) counters a buffer holds at most:
# it is emptied every report, so only a flood of distinct disconnection
# reasons could reach it.
MAX_COUNTERS = 4096


@dataclass
class _Count:
    timestamp: int
    type: str
    sub_type: str | None
    count: int


IN, OUT = 0, 2
"""Which way a packet went, for :meth:`EventCounts.traffic`."""

_TRAFFIC = ("packetsIn", "bytesIn", "packetsOut", "bytesOut")


class EventCounts:
    """Events counted per second until the next report takes them.

    Packets and bytes, counted for every packet, take the short way
    (:meth:`traffic`: one clock read, one lookup); the rarer events
    (connections, disconnections by reason) the general one (:meth:`add`).
    """

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[int, str, str | None], _Count] = {}
        # Per second: packets in, bytes in, packets out, bytes out.
        self._traffic: dict[int, list[int]] = {}

    def traffic(self, way: int, packets: int, size: int) -> None:
        """Count ``packets`` of ``size`` bytes in all going ``way`` (:data:`IN`, :data:`OUT`)."""
        second = int(self._clock())
        row = self._traffic.get(second)
        if row is None:
            if len(self._traffic) >= MAX_COUNTERS:
                return
            row = self._traffic[second] = [0, 0, 0, 0]
        row[way] += packets
        row[way + 1] += size

    def add(self, type_: str, sub_type: str | None = None, count: int = 1) -> None:
        second = int(self._clock()) * 1000
        key = (second, type_, sub_type)
        entry = self._counts.get(key)
        if entry is not None:
            entry.count += count
        elif len(self._counts) < MAX_COUNTERS:
            self._counts[key] = _Count(second, type_, sub_type, count)

    def take(self) -> list[dict[str, Any]]:
        """The counts so far, as the UI reads them; the buffer starts again empty."""
        counts, self._counts = self._counts, {}
        traffic, self._traffic = self._traffic, {}
        taken = [
            {"timestamp": c.timestamp, "type": c.type, "subType": c.sub_type, "count": c.count}
            for c in counts.values()
        ]
        for second, row in traffic.items():
            taken.extend(
                {"timestamp": second * 1000, "type": kind, "subType": None, "count": count}
                for kind, count in zip(_TRAFFIC, row, strict=True)
                if count
            )
        return taken


def memory_rss() -> int:
    """This process's resident memory in bytes: ``/proc/self/statm`` on Linux,
    else the peak ``getrusage`` reports (kilobytes on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
