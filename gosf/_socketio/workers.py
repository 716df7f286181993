"""A socket's worker tasks: where its handlers run, and how they end.

Each handler of a socket runs in a worker task in its session's task group,
under a cancel scope of the worker's, so that closing the socket cancels
them all (:meth:`Workers.cancel`). A worker whose handler ended waits for
the next one instead of ending: handing a job to an idle worker is much
cheaper than starting a task. Idle workers end on each heartbeat
(:meth:`Workers.retire_idle`), so a client gone quiet holds no task, and
the next event starts one again.

How many run at once is bounded by the caller (the server's handler slots,
``gosf._socketio.slots``), so the workers are bounded too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .._engineio.event import Primitives, Wakeup
from .._engineio.session import EngineSession, current_session

__all__ = ("Job", "Workers")

Job = Callable[..., Awaitable[Any]]
"""What a worker runs: ``await job(*args)``."""


class _Worker:
    __slots__ = ("job", "primitives", "wake")

    def __init__(self, primitives: Primitives[Any]) -> None:
        self.primitives = primitives  # the server's, which made its wake-up
        self.job: tuple[Job, tuple[Any, ...]] | None = None
        self.wake: Wakeup  # made each time the worker goes idle


class Workers:
    """The worker tasks of one socket (see the module)."""

    __slots__ = ("_drained", "_idle", "_scopes", "closed", "running", "session")

    def __init__(self, session: EngineSession) -> None:
        self.session = session
        self.closed = False
        """Set by :meth:`cancel`: no job starts any more."""
        self.running = 0
        """Worker tasks alive."""
        # Idle workers, and a cancel scope per worker (made with the first worker).
        self._idle: list[_Worker] | None = None
        self._scopes: list[anyio.CancelScope] | None = None
        self._drained: anyio.Event | None = None  # set when the last worker ends

    def start(self, func: Job, *args: Any) -> None:
        """Run ``func(*args)`` in a worker task: an idle one, else a new one in
        the session's task group.

        Raises:
            RuntimeError: the workers were cancelled (the socket is closed), or
                the session is ending (no task group to start in).
        """
        if self.closed:
            raise RuntimeError("socket is closed")
        if self._idle:
            worker = self._idle.pop()
            worker.job = (func, args)
            worker.primitives.wake(worker.wake)
            return
        session = self.session
        session.start_soon(self._run, func, args)
        self.running += 1

    def retire_idle(self) -> None:
        """End the workers waiting for a job (the next job starts a worker again)."""
        idle, self._idle = self._idle, None
        for worker in idle or ():
            worker.primitives.wake(worker.wake)  # with no job: its loop ends

    def cancel(self) -> None:
        """Cancel every worker's job, and refuse new ones (the socket closed)."""
        self.closed = True
        for scope in self._scopes or ():
            scope.cancel()

    async def drain(self) -> None:
        """Wait until every worker has ended (unbounded: the caller bounds it)."""
        while self.running:
            if self._drained is None:
                self._drained = anyio.Event()
            await self._drained.wait()

    async def _run(self, func: Job, args: tuple[Any, ...]) -> None:
        session = self.session
        current_session.set(session)  # this task serves this client only
        primitives = session.server.primitives
        me = _Worker(primitives)
        job: tuple[Job, tuple[Any, ...]] | None = (func, args)
        scope = anyio.CancelScope()
        scopes = self._scopes
        if scopes is None:
            scopes = self._scopes = []
        scopes.append(scope)
        try:
            with scope:
                if self.closed:
                    scope.cancel()
                while job is not None:
                    await job[0](*job[1])
                    me.job, me.wake = None, primitives.wakeup()
                    idle = self._idle
                    if idle is None:
                        idle = self._idle = []
                    idle.append(me)
                    await primitives.wait(me.wake)  # cancelled with the socket
                    job = me.job
        finally:
            scopes.remove(scope)
            if self._idle and me in self._idle:
                self._idle.remove(me)
            self.running -= 1
            if not self.running and self._drained is not None:
                self._drained.set()
