"""The backend's own cheap events and wake-ups, chosen once per server.

``anyio.Event()`` finds the running backend on every call and, on asyncio,
builds two ``asyncio.Event`` objects (its ``__new__`` returns the backend's
instance, whose ``__init__`` Python then runs a second time). gosf makes an
event or a wake-up for every hand-over of a client's event to a handler task
and for every writer that waits, so it uses the backend's own kind instead
(under asyncio a smaller one than ``asyncio.Event``, and for a single waiter
a bare future).

Which backend runs is asked once, when the server starts
(``EngineServer.serve`` calls :func:`choose_primitives`), as hypercorn's
``WorkerContext`` is made once per worker with its backend's event class:
the resulting :class:`Primitives` is held by that server, and its sessions,
sockets and writers reach it through ``server.primitives``. Nothing is
global: an asyncio server and a trio server may run in one process. Code
that runs outside any server (gosf's clients, microservices) does not use
these: it uses ``anyio.Event``, which binds to the backend on first use.

The events behave as anyio's do for gosf's purposes: ``set``, ``is_set`` and
``await wait()``, cancellable by anyio cancel scopes on both backends (anyio
cancels a task's native waits). One difference: waiting on an already set
event is not a checkpoint on asyncio.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

import anyio

from .._backend import current_backend

__all__ = ("ANYIO_PRIMITIVES", "Event", "Primitives", "Wakeup", "choose_primitives")


class Event(Protocol):
    """What gosf uses of an event: ``anyio.Event``, ``asyncio.Event`` and ``trio.Event`` all fit."""

    def set(self) -> object: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> object: ...


Wakeup: TypeAlias = "asyncio.Future[None] | Event"
"""A one-shot wake-up for a single waiting task (see :attr:`Primitives.wakeup`)."""

W = TypeVar("W")
"""The kind of wake-up of one backend's primitives."""


@dataclass(frozen=True, slots=True)
class Primitives(Generic[W]):
    """One backend's events and wake-ups: what a server's sessions, sockets
    and writers wait on.

    Plain callables rather than methods: ``primitives.wakeup()`` calls the
    backend's constructor itself (under asyncio the loop's bound
    ``create_future``), with no frame of gosf's in between.
    """

    backend: str
    """``"asyncio"``, ``"trio"``, or ``"anyio"`` (outside a running server)."""
    event: Callable[[], Event]
    """A new unset event (``set``, ``is_set``, ``await wait()``), for any number of waiters."""
    wakeup: Callable[[], W]
    """A wake-up for exactly one waiting task, cheaper than an event: set it
    with :attr:`wake`, wait with ``await primitives.wait(w)``. Under asyncio
    a bare future (cancelling the waiter cancels it, harmless with one waiter)."""
    wake: Callable[[W], None]
    """Wake the task waiting on a wake-up (or the next one to wait on it)."""
    wait: Callable[[W], Awaitable[object]]
    """What to await for a wake-up."""


class _AsyncioEvent:
    """``asyncio.Event`` without its per-event deque.

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


def _wake_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _future_itself(future: asyncio.Future[None]) -> Awaitable[object]:
    return future


def _set_event(event: Event) -> None:
    event.set()


def _event_wait(event: Event) -> Awaitable[object]:
    return event.wait()


ANYIO_PRIMITIVES: Primitives[Event] = Primitives(
    "anyio", anyio.Event, anyio.Event, _set_event, _event_wait
)
"""``anyio.Event`` for everything: what a server holds before it starts
(each event binds to the backend on first use)."""


def choose_primitives() -> Primitives[Any]:
    """The primitives of the backend running in this thread (asked once, here).

    Outside any event loop: :data:`ANYIO_PRIMITIVES`.
    """
    backend = current_backend()
    if backend == "asyncio":
        future = asyncio.get_running_loop().create_future
        return Primitives("asyncio", _AsyncioEvent, future, _wake_future, _future_itself)
    if backend == "trio":
        trio = sys.modules["trio"]  # running, so imported
        return Primitives("trio", trio.Event, trio.Event, _set_event, _event_wait)
    return ANYIO_PRIMITIVES
