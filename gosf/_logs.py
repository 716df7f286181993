"""Log lines that clients (or other processes) can cause at will, without flooding the log.

Two shapes, used by every layer:

* :class:`WarnOnce`: the first occurrence of each key (a refused origin, a
  kind of dropped query) at WARNING, the repeats at DEBUG; keys may come from
  clients, so only ``limit`` of them are remembered. It counts every key it
  has seen (``counts``).
* :class:`Throttled`: at most one WARNING per ``interval`` seconds for one
  failure a client can repeat (an answer JSON cannot carry), the others at
  DEBUG, counted in the next WARNING.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter

__all__ = ("Throttled", "WarnOnce")


class WarnOnce:
    """Log ``message % (key, *args)`` at WARNING the first time each key is seen."""

    def __init__(self, logger: logging.Logger, message: str, *, limit: int = 64) -> None:
        self._log = logger
        self._message = message
        self._limit = limit
        self.counts: Counter[str] = Counter()
        """How often each remembered key was logged."""
        self._full = False

    def __call__(self, key: str, *args: object) -> None:
        counts = self.counts
        if key in counts:
            counts[key] += 1
            self._log.debug(self._message, key, *args)
        elif self._full:
            self._log.debug(self._message, key, *args)
        elif len(counts) >= self._limit:
            self._full = True
            self._log.warning(
                "refused %d distinct values; further refusals are logged at DEBUG only: "
                + self._message,
                len(counts),
                key,
                *args,
            )
        else:
            counts[key] = 1
            self._log.warning(self._message, key, *args)


class Throttled:
    """At most one WARNING per ``interval`` seconds; the rest at DEBUG, counted."""

    __slots__ = ("_interval", "_log", "_next", "_quiet")

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self._log = logger
        self._interval = interval
        self._next = -math.inf
        self._quiet = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._quiet += 1
            self._log.debug(message, *args)
            return
        self._next = now + self._interval
        quiet, self._quiet = self._quiet, 0
        if quiet:
            message += " (and %d more since the last such warning, at DEBUG)"
            args = (*args, quiet)
        self._log.warning(message, *args)
