"""One connection of the Redis broker, from subscribing until it fails.

:func:`run_session` makes a coredis client, subscribes on it within
``connect_timeout`` (connecting, the handshake and the subscriptions, all in
one deadline), then hands every message that arrives to a :class:`Listener`
until the connection fails. While it lasts, the rest of the broker sends
through the :class:`Session` it gave its :class:`SessionOwner`: every PUBLISH
of the process goes through the session's one
:class:`~gosf.brokers._redis_publisher.Publisher`, in a task of its own, and
the listener may start tasks (answering a query) in the session's task group,
so a slow PUBLISH never holds up what arrives on the subscription. Nothing of
the session outlives it: its task group ends with it.

Reconnecting is not done here (coredis's retries are off, a retried PUBLISH
could arrive twice): :mod:`gosf.brokers._redis_connection` runs one session
after another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import anyio
from anyio.abc import TaskGroup

try:
    import coredis
    from coredis.retry import NoRetryPolicy
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the Redis broker needs coredis: pip install 'gosf[redis]' (or coredis>=6.0)"
    ) from exc

from ._redis_publisher import Publisher

__all__ = (
    "Listener",
    "RedisSettings",
    "Session",
    "SessionOwner",
    "describe",
    "redact",
    "run_session",
)


def redact(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def describe(exc: BaseException) -> str:
    """A one-line account of ``exc``, looking inside exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where Redis is and how long the broker waits for it (seconds); checked when made.

    Raises:
        ValueError: ``url`` is not a Redis URL, a timeout is not positive, or
            ``backoff_max`` is below ``backoff_min``.
    """

    url: str
    connect_timeout: float = 5.0
    publish_timeout: float = 2.0
    keepalive: float = 10.0
    backoff_min: float = 0.2
    backoff_max: float = 10.0

    def __post_init__(self) -> None:
        if urlsplit(self.url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"not a Redis URL: {redact(self.url)!r} (redis://, rediss:// or unix://)"
            )
        for name in ("connect_timeout", "publish_timeout", "keepalive", "backoff_min"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        if self.backoff_max < self.backoff_min:
            raise ValueError("backoff_max must not be below backoff_min")
        coredis.Redis.from_url(self.url)  # parses the URL now (ValueError), connects later


class Session:
    """One subscribed connection: what the broker sends through while it lasts."""

    __slots__ = ("_client", "_publish_timeout", "_publisher")

    def __init__(self, client: coredis.Redis[bytes], publish_timeout: float) -> None:
        self._client = client
        self._publisher = Publisher(client)
        self._publish_timeout = publish_timeout

    @property
    def client(self) -> coredis.Redis[bytes]:
        """The connection pool of the session, for commands besides PUBLISH (streams)."""
        return self._client

    async def publish(self, channel: str, data: bytes) -> int:
        """PUBLISH ``data`` (batched with others): how many subscribers received it.

        The caller bounds the wait. Raises:
            ConnectionError: the session is over.
            Exception: what coredis raised.
        """
        return await self._publisher.publish(channel, data)

    async def try_publish(self, channel: str, data: bytes) -> tuple[int, str | None]:
        """:meth:`publish` within ``publish_timeout``, never raising:
        ``(receivers, None)``, or ``(0, why it failed)``."""
        try:
            with anyio.move_on_after(self._publish_timeout):
                return await self.publish(channel, data), None
        except Exception as exc:  # whatever coredis raises for a broken connection
            return 0, f"PUBLISH failed: {describe(exc)}"
        return 0, f"PUBLISH timed out after {self._publish_timeout}s"

    async def count_subscribers(self, channel: str) -> int:
        """How many connections are subscribed to ``channel`` (``PUBSUB NUMSUB``).

        The caller bounds the wait. Raises:
            Exception: what coredis raised.
        """
        counts = await self._client.pubsub_numsub(channel)
        return sum(counts.values())

    async def _run_publisher(self, owner: SessionOwner) -> None:
        """Send what is published through this session until it ends; a failure ends it."""
        try:
            await self._publisher.run()
        except Exception as exc:  # whatever coredis raises for a broken connection
            owner.failed(self, f"PUBLISH failed: {describe(exc)}")


class Listener(Protocol):
    """Receives what arrives on a session's subscription (never blocks)."""

    def on_message(self, channel: bytes, data: Any, session: Session, tasks: TaskGroup) -> None:
        """One message from ``channel``; work that waits goes in a task of ``tasks``."""


class SessionOwner(Protocol):
    """Who runs sessions, one at a time, and learns when each one can be used."""

    def opened(self, session: Session) -> None:
        """Subscribed: publish through ``session`` from now on."""

    def closed(self, session: Session) -> None:
        """``session`` is over (it is being torn down): publish through it no more."""

    def failed(self, session: Session, reason: str) -> None:
        """A PUBLISH through ``session`` failed: give up on it."""


async def run_session(
    settings: RedisSettings, channels: Sequence[str], listener: Listener, owner: SessionOwner
) -> None:
    """One connection: subscribe to ``channels``, then hand what arrives to
    ``listener`` until the connection fails.

    Raises:
        TimeoutError: not subscribed within ``connect_timeout``.
        Exception: whatever coredis raises when Redis is unreachable or goes
            away (``coredis.exceptions.ConnectionError``, often in an
            exception group).
    """
    client: coredis.Redis[bytes] = coredis.Redis.from_url(
        settings.url,
        decode_responses=False,
        retry_policy=NoRetryPolicy(),  # a retried PUBLISH could arrive twice
        connect_timeout=settings.connect_timeout,
        stream_timeout=settings.publish_timeout,
    )
    with anyio.CancelScope(deadline=anyio.current_time() + settings.connect_timeout) as attempt:
        async with (
            client,
            client.pubsub(
                ignore_subscribe_messages=True,
                retry_policy=NoRetryPolicy(),  # reconnecting is the owner's
                subscription_timeout=settings.connect_timeout,
                max_idle_seconds=settings.keepalive,
            ) as pubsub,
        ):
            await pubsub.subscribe(*channels)
            attempt.deadline = math.inf
            session = Session(client, settings.publish_timeout)
            failure: Exception | None = None
            try:
                owner.opened(session)
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(session._run_publisher, owner)
                    try:
                        async for message in pubsub:
                            if message["type"] != "message":
                                continue
                            source = message["channel"]
                            if isinstance(source, str):
                                source = source.encode()
                            listener.on_message(source, message["data"], session, tasks)
                    except Exception as exc:  # the connection failed: the owner reconnects
                        failure = exc
                    tasks.cancel_scope.cancel()
            finally:
                owner.closed(session)
            if failure is not None:
                raise failure
    if attempt.cancelled_caught:
        raise TimeoutError(f"not subscribed within {settings.connect_timeout}s")
