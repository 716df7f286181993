"""GOSF's message-counter plugin (``ambelovsky/gosf-message-counter``), ported.

It counts every request that got a response (an ``on_after_response`` hook;
broadcasts are not counted) and, while active, logs the rate every
``interval`` seconds::

    Messages Per Second: 12.30

to the ``gosf.message_counter`` logger at ``INFO``. The rate is the number of
responses since the previous report divided by the time actually elapsed.

The reporting loop is a task of the app's task group (``app.start_soon``),
run inside a cancel scope that ``deactivate`` cancels; ``deactivate`` returns
once the loop has ended. Not ported from Go: the lock held across loop
iterations (it deadlocked after the first report) and the terminal clearing.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import anyio

import gosf

__all__ = ("MessageCounter",)

log = logging.getLogger("gosf.message_counter")


class _Reporter:
    """One activation's reporting loop: its cancel scope and whether it has ended."""

    __slots__ = ("scope", "started", "stopped")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.started = False
        self.stopped = anyio.Event()


class MessageCounter:
    """Counts responses and reports messages per second every ``interval`` seconds."""

    name: ClassVar[str] = "message-counter"

    def __init__(self, interval: float = 10.0) -> None:
        """
        Raises:
            ValueError: ``interval`` is not a positive number of seconds.
        """
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.interval = float(interval)
        self.total = 0
        """Responses counted since the plugin was created."""
        self.messages_per_second = 0.0
        """The rate of the last report (0.0 before the first)."""
        self.reports = 0
        """How many reports were made."""
        self._window = 0  # responses since the last report
        self._app: gosf.App | None = None
        self._reporter: _Reporter | None = None

    @property
    def reporting(self) -> bool:
        """Whether the reporting loop is running."""
        reporter = self._reporter
        return reporter is not None and reporter.started and not reporter.stopped.is_set()

    # -- plugin life cycle ------------------------------------------------------------

    def activate(self, app: gosf.App) -> None:
        """Start counting ``app``'s responses and reporting.

        Raises:
            RuntimeError: the plugin is active already (on this or another app).
        """
        if self._app is not None:
            raise RuntimeError("the message counter is active already")
        app.hooks.add("on_after_response", self._count)
        self._app = app
        self._window = 0
        reporter = self._reporter = _Reporter()
        app.start_soon(self._report, reporter)

    async def deactivate(self, app: gosf.App) -> None:
        """Stop counting and reporting; returns once the reporting loop has ended."""
        if self._app is not app:
            return
        app.hooks.remove("on_after_response", self._count)
        self._app = None
        reporter = self._reporter
        if reporter is None:
            return
        reporter.scope.cancel()
        if reporter.started:
            # The loop was cancelled: it ends at once, so this wait is short.
            # (A loop not started yet exits as soon as it starts: its scope is
            # cancelled already.)
            await reporter.stopped.wait()

    # -- the work -------------------------------------------------------------------------

    def _count(
        self, client: gosf.Client, request: gosf.Request, response: gosf.Message | None
    ) -> None:
        self.total += 1
        self._window += 1

    async def _report(self, reporter: _Reporter) -> None:
        reporter.started = True
        try:
            with reporter.scope:
                last = anyio.current_time()
                while True:
                    await anyio.sleep(self.interval)
                    now = anyio.current_time()
                    count, self._window = self._window, 0
                    self.messages_per_second = count / max(now - last, 1e-9)
                    self.reports += 1
                    last = now
                    log.info("Messages Per Second: %.2f", self.messages_per_second)
        finally:
            reporter.stopped.set()
