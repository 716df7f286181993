"""The Redis broker's connection: one session after another, with backoff.

:meth:`RedisConnection.run` runs one :func:`~gosf.brokers._redis_session.run_session`
at a time, for as long as it runs: the old subscription is gone before a new
one is made, so no broadcast arrives twice through two of them. After the
``n``-th failed attempt in a row it waits a random time between 0 and
``min(backoff_max, backoff_min * 2 ** (n - 1))`` (capped exponential backoff
with full jitter, so the processes of a cluster do not all come back at once)
before the next.

A session ends when coredis sees its connection fail (the keepalive's PING
included), or sooner, when :meth:`RedisConnection.reconnect` gives up on it:
a PUBLISH through it failed or timed out. A Redis that hangs rather than
refuses is otherwise noticed by the keepalive only; until the next session is
subscribed, :attr:`RedisConnection.session` is ``None`` and the broker drops
what it would publish at once instead of each PUBLISH waiting its timeout.

Logging (logger ``gosf.broker``): a warning when an outage starts and when it
ends, each further failed attempt at info level.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from ._redis_session import Listener, RedisSettings, Session, describe, run_session

__all__ = ("RedisConnection", "backoff_delay")

log = logging.getLogger("gosf.broker")


def backoff_delay(settings: RedisSettings, failures: int) -> float:
    """How long to wait after ``failures`` failed attempts in a row (at least one)."""
    ceiling = settings.backoff_min * 2 ** min(failures - 1, 30)
    return random.uniform(0, min(settings.backoff_max, ceiling))


class RedisConnection:
    """Keeps one process subscribed to Redis, and tells who asks whether it is.

    ``label`` names the broker in logs.
    """

    def __init__(self, settings: RedisSettings, label: str) -> None:
        self.settings = settings
        self.label = label
        self._session: Session | None = None  # set while subscribed
        self._changed: anyio.Event | None = None  # set when `connected` changes
        self._session_scope: anyio.CancelScope | None = None  # cancelled: reconnect
        self._reset_reason: str | None = None
        # While run() runs: whom to tell it has started (until told), and the
        # failed attempts since the last subscription, for the backoff and the logs.
        self._started: TaskStatus[None] | None = None
        self._failures = 0
        self._down_since: float | None = None  # when the outage began

    @property
    def session(self) -> Session | None:
        """The subscribed connection to send through now; ``None`` while not subscribed."""
        return self._session

    @property
    def connected(self) -> bool:
        """Whether this process is subscribed now (and so publishes)."""
        return self._session is not None

    async def wait_connected(self, connected: bool = True) -> None:
        """Return once :attr:`connected` is ``connected`` (the caller bounds the wait)."""
        while self.connected != connected:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def _set_session(self, session: Session | None) -> None:
        """Record the subscribed connection (``None``: not subscribed); wake the waiters."""
        if (session is None) == (self._session is None):
            self._session = session
            return
        self._session = session
        changed, self._changed = self._changed, anyio.Event()
        if changed is not None:
            changed.set()

    def reconnect(self, session: Session, reason: str) -> None:
        """Give up on ``session`` (a command through it failed or timed out) and reconnect.

        Nothing happens if ``session`` is over already: a failure of an old
        connection must not end a new one.
        """
        scope = self._session_scope
        if scope is not None and self._session is session:
            # Reconnect now rather than when the subscription notices (a Redis
            # that hangs is noticed by the keepalive only), and until then drop
            # messages at once instead of each waiting for the timeout.
            self._set_session(None)
            self._reset_reason = reason
            scope.cancel()

    # -- what a session tells its owner (a SessionOwner) --------------------------------

    def opened(self, session: Session) -> None:
        """Publish through ``session`` from now on; the outage, if any, is over."""
        self._set_session(session)
        if self._down_since is not None:
            log.warning(
                "%s: subscribed again after %.1fs; cross-process delivery resumes",
                self.label,
                anyio.current_time() - self._down_since,
            )
        else:
            log.info("%s: subscribed", self.label)
        self._failures = 0
        self._down_since = None
        self._report_started()

    def closed(self, session: Session) -> None:
        """``session`` is being torn down: not subscribed any more."""
        if self._session is session:
            self._set_session(None)

    def failed(self, session: Session, reason: str) -> None:
        """A PUBLISH through ``session`` failed: reconnect."""
        self.reconnect(session, reason)

    # -- the loop ---------------------------------------------------------------------

    async def run(
        self,
        channels: Sequence[str],
        listener: Listener,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Subscribe to ``channels`` and hand what arrives to ``listener``, until cancelled.

        Reports started after the first attempt: once subscribed, or as soon
        as that attempt has failed (within about ``connect_timeout``); the
        subscription is then retried in the background for as long as this runs.
        """
        self._started = task_status
        self._failures = 0
        self._down_since = None
        try:
            while True:
                self._reset_reason = None
                try:
                    with anyio.CancelScope() as self._session_scope:
                        await run_session(self.settings, channels, listener, self)
                    raise ConnectionError("the subscription ended")
                except Exception as exc:
                    # Stopping? (Under asyncio, coredis may turn the cancellation into
                    # an error of its teardown, such as ClosedResourceError.)
                    await anyio.lowlevel.checkpoint_if_cancelled()
                    # (a reset reason: a PUBLISH gave up on this connection)
                    reason = self._reset_reason or describe(exc)
                    self._failures += 1
                    delay = backoff_delay(self.settings, self._failures)
                    if self._down_since is None:
                        self._down_since = anyio.current_time()
                        log.warning(
                            "%s: Redis unreachable (%s); local delivery continues, "
                            "broadcasts do not cross processes until it is back; "
                            "retrying in %.2fs",
                            self.label,
                            reason,
                            delay,
                        )
                    else:
                        log.info(
                            "%s: still unreachable (%s, attempt %d); retrying in %.2fs",
                            self.label,
                            reason,
                            self._failures,
                            delay,
                        )
                except BaseExceptionGroup as group:
                    # Cancelled (the server stops): under trio, coredis's pub/sub may add
                    # what it raised while being torn down (e.g. ClosedResourceError from
                    # an UNSUBSCRIBE on a connection already closed). Let only the
                    # cancellation through.
                    raise _cancellation(group) from None
                self._report_started()
                await anyio.sleep(delay)
        finally:
            self._set_session(None)
            self._session_scope = None
            self._started = None

    def _report_started(self) -> None:
        """Tell :meth:`run`'s caller it has started, the first time only."""
        started, self._started = self._started, None
        if started is not None:
            started.started()


def _cancellation(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first cancellation exception in ``group``, or ``group`` itself if it holds none."""
    cancelled, _ = group.split(anyio.get_cancelled_exc_class())
    if cancelled is None:
        return group
    exc: BaseException = cancelled
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
