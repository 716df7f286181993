"""Drain the app when the process is told to stop, before the ASGI server stops.

gosf drains (see :meth:`gosf.App.drain`) at the ASGI lifespan's shutdown, but
the servers send that only after they have dealt with the connections
themselves: hypercorn waits its ``graceful_timeout`` for them to end on their
own and then cuts them; uvicorn closes websockets at once ("service
restart"). A request in flight is lost and clients see a transport error. So, while the
app runs, gosf hears of the stop first and drains before the server starts
its own shutdown:

* Where the process itself handles SIGINT and SIGTERM (uvicorn,
  ``hypercorn -w 0``, ``gosf.startup``), gosf's handler takes the place of
  the server's. On the first signal it drains the app, puts the server's
  handler back and hands it the signal: the server then shuts down as it
  always does, with no client left to cut. A second signal during the drain
  goes to the server at once (Ctrl-C twice still forces the way out). Where
  the server leaves SIGTERM to the system (hypercorn's trio worker) but stops
  gracefully on SIGINT, the drained SIGTERM is handed over as SIGINT.
  Signals the process ignores stay ignored.
* A worker under hypercorn's supervisor (its default) gets no signal: the
  supervisor sets a multiprocessing event that the worker polls. gosf polls it
  too and drains while hypercorn waits its ``graceful_timeout`` for the
  connections, which must therefore outlast the drain (``--graceful-timeout``;
  gosf warns at startup when it is too short).

asyncio keeps the callbacks of ``loop.add_signal_handler`` in a table it does
not publish; gosf reads it (``_signal_handlers``) to take hypercorn's handler
out of the way and call it after the drain. Where it cannot be read (another
event loop), gosf leaves such a handler alone.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._backend import current_backend

__all__ = ("CLOSE_GRACE", "drain_first")

log = logging.getLogger("gosf")

SIGNALS = (signal.SIGINT, signal.SIGTERM)

CLOSE_GRACE = 2.0
"""Margin past ``shutdown_grace`` that hypercorn's ``graceful_timeout`` should
leave: the drain keeps to ``shutdown_grace``, then the clients' last frames
and the server's own close need a moment before hypercorn cuts what is left."""

SUPERVISOR_POLL_INTERVAL = 0.1
"""Seconds between looks at hypercorn's shutdown event (hypercorn's own interval)."""


@dataclass(frozen=True)
class _Previous:
    """What handled a signal before gosf.

    ``handler`` is the Python-level handler; ``loop_callback`` the callback
    and arguments an asyncio loop runs for the signal, when there is one.
    """

    handler: Any
    loop_callback: tuple[Callable[..., object], tuple[Any, ...]] | None = None


class _Relay:
    """Takes SIGINT/SIGTERM from the server, drains, and hands them back."""

    def __init__(self, drain: Callable[[], Awaitable[None]]) -> None:
        self._drain = drain
        self._previous: dict[signal.Signals, _Previous] = {}
        self._draining = False
        self._closed = False
        self._stop = anyio.Event()
        self._signal: signal.Signals | None = None  # None: hypercorn's supervisor
        self._loop: Any = None
        self._trio_token: Any = None

    # -- installing and restoring ----------------------------------------------------

    def install(self) -> None:
        """Put gosf's handler in place of the server's (main thread only)."""
        library = current_backend()
        if library == "asyncio":
            import asyncio

            self._loop = asyncio.get_running_loop()
        elif library == "trio":
            import trio

            self._trio_token = trio.lowlevel.current_trio_token()
        else:
            return
        for sig in SIGNALS:
            previous = self._previous_of(sig)
            if previous is None:
                continue
            self._previous[sig] = previous
            if self._loop is not None:
                self._loop.add_signal_handler(sig, self._on_signal, sig)
            else:
                signal.signal(sig, self._on_trio_signal)

    def _previous_of(self, sig: signal.Signals) -> _Previous | None:
        """What handles ``sig`` now, or ``None`` when gosf must leave it alone."""
        handler = signal.getsignal(sig)
        if handler is None or handler == signal.SIG_IGN:
            return None  # not set from Python, or ignored on purpose (hypercorn's workers)
        if self._loop is None:
            return _Previous(handler)
        table = getattr(self._loop, "_signal_handlers", None)
        handle = table.get(sig) if isinstance(table, dict) else None
        if handle is not None:
            return _Previous(handler, (handle._callback, handle._args))
        if getattr(handler, "__name__", "") == "_sighandler_noop":
            return None  # an event loop's handler gosf cannot read: leave it be
        return _Previous(handler)

    def _is_ours(self, sig: signal.Signals) -> bool:
        """Whether gosf's handler still handles ``sig`` (nobody replaced it since)."""
        if self._loop is not None:
            table = getattr(self._loop, "_signal_handlers", None)
            if not isinstance(table, dict):
                return True  # a loop gosf cannot read: it installed its handler there
            handle = table.get(sig)
            return handle is not None and handle._callback == self._on_signal
        return bool(signal.getsignal(sig) == self._on_trio_signal)

    def _restore(self, sig: signal.Signals) -> bool:
        """Put back what handled ``sig`` before gosf.

        Returns False when someone has replaced gosf's handler since: it then
        stays under theirs (they may pass signals on to it) and passes on
        itself.
        """
        previous = self._previous.get(sig)
        if previous is None or not self._is_ours(sig):
            return False
        del self._previous[sig]
        if self._loop is not None:
            if previous.loop_callback is not None:
                callback, args = previous.loop_callback
                self._loop.add_signal_handler(sig, callback, *args)
                return True
            self._loop.remove_signal_handler(sig)
        signal.signal(sig, previous.handler)
        return True

    def close(self) -> None:
        """The app stops: restore the server's handlers and stop watching."""
        self._closed = True
        self._stop.set()
        for sig in list(self._previous):
            self._restore(sig)

    # -- a signal ------------------------------------------------------------------------

    def _on_trio_signal(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler may interrupt trio anywhere: only schedule.
        try:
            self._trio_token.run_sync_soon(self._on_signal, signal.Signals(signum))
        except RuntimeError:  # trio.RunFinishedError: nothing left to drain
            pass

    def _on_signal(self, sig: signal.Signals) -> None:
        """In the event loop, outside any task: the first signal starts the drain
        (in :meth:`serve`), a later one passes on."""
        if self._draining or self._closed:
            self._pass_on(sig)
            return
        self._draining = True
        self._signal = sig
        self._stop.set()

    async def serve(self) -> None:
        """Drain once a signal came, then hand it on; return when the app stops."""
        await self._stop.wait()
        if self._closed:
            return
        if self._signal is None:
            log.info("hypercorn is stopping this worker: draining")
        else:
            log.info("%s: draining before the server stops", self._signal.name)
        try:
            await self._drain()
        finally:
            if self._signal is not None:
                self._pass_on(self._signal)

    def _pass_on(self, sig: signal.Signals) -> None:
        """Hand ``sig`` to the handler the server had, as if gosf had not been there."""
        graceful_sigint = self._previous.get(signal.SIGINT)
        previous = self._previous.get(sig)
        if (
            sig == signal.SIGTERM
            and previous is not None
            and previous.loop_callback is None
            and previous.handler == signal.SIG_DFL
            and graceful_sigint is not None
            and graceful_sigint.handler != signal.SIG_DFL
        ):
            # The server leaves SIGTERM to the system, which would end the
            # process without the lifespan's shutdown; ask it to stop the way
            # it does on Ctrl-C.
            self._restore(sig)
            sig, previous = signal.SIGINT, graceful_sigint
        if previous is None:
            return  # handed on already
        if self._restore(sig):
            if previous.loop_callback is not None:
                callback, args = previous.loop_callback
                callback(*args)
            else:
                # Raised from the event loop's own callbacks: trio then takes a
                # KeyboardInterrupt to its main task rather than into this one.
                self._call_soon(signal.raise_signal, sig)
        elif previous.loop_callback is not None:
            callback, args = previous.loop_callback
            callback(*args)
        elif callable(previous.handler):
            # Raising the signal would come back here through the handler
            # that has replaced gosf's: call the one before gosf directly.
            self._call_soon(previous.handler, sig, None)

    def _call_soon(self, func: Callable[..., object], *args: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon(func, *args)
        else:
            self._trio_token.run_sync_soon(func, *args)

    # -- hypercorn's supervisor -------------------------------------------------------

    async def watch(self, event: Any) -> None:
        """Drain once ``event`` (hypercorn's shutdown event) is set."""
        while not event.is_set():
            if self._closed:
                return
            await anyio.sleep(SUPERVISOR_POLL_INTERVAL)
        if not self._draining:
            self._draining = True
            self._stop.set()


def _hypercorn_worker() -> tuple[Any, Any] | None:
    """``(shutdown_event, config)`` when this process is a worker started by
    hypercorn's supervisor, else ``None``.

    They are the keyword arguments the supervisor started the worker with
    (``multiprocessing`` keeps them on the process object).
    """
    process = multiprocessing.current_process()
    target = getattr(process, "_target", None)
    kwargs = getattr(process, "_kwargs", None)
    if not isinstance(kwargs, dict) or not getattr(target, "__module__", "").startswith(
        "hypercorn."
    ):
        return None
    event = kwargs.get("shutdown_event")
    if event is None or not callable(getattr(event, "is_set", None)):
        return None
    return event, kwargs.get("config")


@asynccontextmanager
async def drain_first(
    tg: TaskGroup, drain: Callable[[], Awaitable[None]], *, grace: float
) -> AsyncIterator[None]:
    """For the block, a stop signal (or hypercorn's supervisor) runs ``drain`` in
    ``tg`` before the server hears of it; see the module's docstring.

    ``grace`` is how long a drain may take (``shutdown_grace``), for the warning
    about hypercorn's ``graceful_timeout``.
    """
    relay = _Relay(drain)
    tg.start_soon(relay.serve)
    if threading.current_thread() is threading.main_thread():
        relay.install()
    worker = _hypercorn_worker()
    if worker is not None:
        event, config = worker
        timeout = getattr(config, "graceful_timeout", None)
        if isinstance(timeout, int | float) and timeout < grace + CLOSE_GRACE:
            log.warning(
                "hypercorn's graceful_timeout (%gs) is shorter than gosf's drain "
                "(shutdown_grace %gs, and %gs for the clients' last frames): requests "
                "still running are cut at shutdown. Start hypercorn with "
                "--graceful-timeout %d.",
                timeout,
                grace,
                CLOSE_GRACE,
                int(grace + CLOSE_GRACE + 1),
            )
        tg.start_soon(relay.watch, event)
    try:
        yield
    finally:
        relay.close()
