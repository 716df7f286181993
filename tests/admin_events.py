"""What a client playing the Admin UI receives, for the admin tests
(tests/test_admin.py, tests/interop/test_admin_cluster.py): the UI's event
names, and :class:`Seen`, which records them and waits for one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ("UI_EVENTS", "WAIT", "Seen")

WAIT = 5.0
"""Bound on every wait for an event."""


class Seen:
    """The events a client received, by name, with a wait for the next one."""

    def __init__(self) -> None:
        self.events: defaultdict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self._changed = anyio.Event()

    def handler(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.events[name].append(args)
            self._changed.set()
            self._changed = anyio.Event()

        return record

    async def until(
        self, name: str, test: Callable[..., bool] = lambda *a: True
    ) -> tuple[Any, ...]:
        with anyio.fail_after(WAIT):
            while True:
                for args in self.events[name]:
                    if test(*args):
                        return args
                await self._changed.wait()


UI_EVENTS = (
    "session", "config", "all_sockets", "server_stats", "socket_connected",
    "socket_disconnected", "room_joined", "room_left", "event_received", "event_sent",
)  # fmt: skip
