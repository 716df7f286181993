"""A cheaper ``anyio.Event`` for the per-message hot path.

``anyio.Event()`` finds the running backend through sniffio on every call and,
on asyncio, builds two ``asyncio.Event`` objects (its ``__new__`` returns the
backend's instance, whose ``__init__`` Python then runs a second time): about
2.5 µs per event where ``asyncio.Event()`` takes 0.25 µs. gosf makes an event
for every hand-over of a client's event to a handler task, so it asks the
running loop directly and makes the backend's own kind of event (under
asyncio a smaller one than ``asyncio.Event``).

The events behave as anyio's do for gosf's purposes: ``set``, ``is_set`` and
``await wait()``, cancellable by anyio cancel scopes on both backends (anyio
cancels a task's native waits). One difference: waiting on an already set
event is not a checkpoint on asyncio.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Protocol, TypeAlias

import anyio

__all__ = ("Event", "Wakeup", "new_event", "new_wakeup", "wake", "wakeup_wait")


class Event(Protocol):
    """What gosf uses of an event: ``anyio.Event``, ``asyncio.Event`` and ``trio.Event`` all fit."""

    def set(self) -> object: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> object: ...


class _AsyncioEvent:
    """``asyncio.Event`` without its per-event deque (~600 bytes when empty).

    Many of these live as long as their client (a writer waiting for
    packets), so their size counts; a list is made only when a task waits.
    """

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


def new_event() -> Event:
    """A new unset event for the backend running in this thread.

    Outside any event loop it is an ``anyio.Event``, which binds to the
    backend on first use.
    """
    if asyncio._get_running_loop() is not None:
        return _AsyncioEvent()
    trio = sys.modules.get("trio")  # a trio run has imported it
    if trio is not None and trio.lowlevel.in_trio_run():
        event: Event = trio.Event()
        return event
    return anyio.Event()


Wakeup: TypeAlias = "asyncio.Future[None] | Event"
"""A one-shot wake-up for a single waiting task (see :func:`new_wakeup`)."""


def new_wakeup() -> Wakeup:
    """A wake-up for exactly one waiting task, cheaper than :func:`new_event`.

    Under asyncio it is a bare future: no waiter list, and the task awaits it
    directly (cancelling the waiter cancels the future, harmless with one
    waiter). Set it with :func:`wake`, wait with ``await wakeup_wait(w)``.
    """
    loop = asyncio._get_running_loop()
    if loop is not None:
        return loop.create_future()
    return new_event()


def wake(wakeup: Wakeup) -> None:
    """Wake the task waiting on ``wakeup`` (or the next one to wait on it)."""
    if isinstance(wakeup, asyncio.Future):
        if not wakeup.done():
            wakeup.set_result(None)
    else:
        wakeup.set()


def wakeup_wait(wakeup: Wakeup) -> Awaitable[object]:
    """What to await for ``wakeup``."""
    return wakeup if isinstance(wakeup, asyncio.Future) else wakeup.wait()
