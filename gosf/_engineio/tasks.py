"""A session's tasks: a task group opened only while the session has some.

What the layer above starts for a client (its handler workers) and what
the writer needs (a writer task, a blocked write's
cut-off) run in the session's task group. An idle client runs none, so it
holds none: :class:`SessionTasks` is made with the session's first task
(``SessionDriver.start_soon``, ``driver.py``) and dropped with its last, and
its group is held by a task of the server's task group
(:meth:`SessionTasks.hold`) that opens it, keeps it while a task runs in it,
and closes it with the last one. The session owns the tasks all the same:
its end cancels them and waits for them (:meth:`SessionTasks.end`) before
the layer above is told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .event import Event, Primitives

__all__ = ("SessionTasks",)

Job = Callable[..., Awaitable[Any]]


class SessionTasks:
    """One session's tasks, while it has some (see the module's docstring)."""

    __slots__ = ("group", "held", "idle", "pending", "refused", "running")

    def __init__(self, held: Event) -> None:
        self.group: TaskGroup | None = None
        """Their task group, open while one of them runs."""
        self.pending: list[tuple[Job, tuple[Any, ...]]] = []
        """Started while no group takes them: for the next one."""
        self.running = 0
        """Started in the group and not ended."""
        self.idle: Event | None = None
        """Set when the last one ends."""
        self.held = held
        """Set when the task holding their groups ends."""
        self.refused = False
        """The session has ended them: a group opened from now on is cancelled at once."""

    def start(self, func: Job, args: tuple[Any, ...]) -> None:
        """Run ``func(*args)`` in the group, or in the next one while none is open."""
        group = self.group
        if group is None:
            self.pending.append((func, args))  # the holding task starts it
            return
        self.running += 1
        group.start_soon(self._run, func, args)

    async def _run(self, func: Job, args: tuple[Any, ...]) -> None:
        """One of the tasks: counted, so that the group closes with the last."""
        try:
            await func(*args)
        finally:
            self.running -= 1
            if not self.running:
                idle, self.idle = self.idle, None
                if idle is not None:
                    idle.set()

    async def hold(self, primitives: Primitives[Any]) -> None:
        """Hold the group while a task runs in it (the body of a task of the
        server's task group).

        When the last task ends, the group takes no more (a task started
        from then on is pending) and closes; a task pending by then opens
        another one, here. Cancelled (the server stops), a task still
        pending never starts.
        """
        try:
            while self.pending:
                async with anyio.create_task_group() as group:
                    pending, self.pending = self.pending, []
                    self.group = group
                    if self.refused:  # the session ended before they began
                        group.cancel_scope.cancel()
                    for func, args in pending:
                        self.running += 1
                        group.start_soon(self._run, func, args)
                    try:
                        while self.running:
                            idle = self.idle = primitives.event()
                            await idle.wait()
                    finally:
                        # No await between the last task's end and this: a
                        # task started from now on is pending, for the next group.
                        self.group = None
                        self.idle = None
        finally:
            self.pending.clear()

    async def end(self, wait: float) -> None:
        """The session's end: cancel the tasks and wait for them to end
        (shielded, and for at most ``wait`` seconds: a task may shield itself)."""
        self.refused = True
        if self.group is not None:
            self.group.cancel_scope.cancel()
        with anyio.CancelScope(shield=True) as waiting:
            waiting.deadline = anyio.current_time() + wait
            await self.held.wait()
