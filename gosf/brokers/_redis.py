"""A broker that carries broadcasts between processes through Redis pub/sub.

Every process of a cluster holds **one** subscription to one Redis channel
(``gosf`` unless told otherwise), in :meth:`RedisBroker.run`, which the server
runs in its task group. :meth:`RedisBroker.publish` sends each broadcast to
that channel once, encoded once, whatever the number of recipients; every
other process receives it and delivers it to its own sockets. The client is
coredis (6.x, built on anyio), so this runs under asyncio and under trio. It
speaks RESP3 and so needs Redis 6 or newer.

The wire format of broadcasts is described in :mod:`gosf.brokers._redis_wire`.

What an outage costs
--------------------
Redis pub/sub keeps nothing: a message reaches the processes that are
subscribed at that moment, or nobody. While Redis is unreachable:

* broadcasts published in that time do **not** reach other processes, and are
  not replayed later: :meth:`~RedisBroker.publish` logs and drops them
  (logger ``gosf.broker``: a warning when an outage starts, a count of the
  dropped broadcasts when it ends) and returns at once, without raising. A
  Redis that hangs rather than refuses costs one ``publish_timeout``: a
  PUBLISH that fails or times out makes the broker drop its connection and
  reconnect, and publishing returns at once until it is subscribed again;
* each process keeps delivering its own broadcasts to its own sockets (that
  happens before the broker is asked to publish) and keeps serving its clients;
* :meth:`~RedisBroker.run` reconnects with capped exponential backoff and full
  jitter and, once subscribed again, delivers what other processes publish
  from then on. Messages published by others while this process was not
  subscribed are lost for it.

No broadcast is delivered twice: a process holds one subscription at a time
(the old one is gone before a new one is made), a publish is never retried
(a PUBLISH that timed out may have reached Redis), and a short memory of
``(origin, sequence)`` pairs drops any repeat that would still arrive.

Queries (cluster-wide questions)
--------------------------------
:meth:`RedisBroker.query` asks every process a question (the rooms of the
cluster, whether it holds a sid and, if so, to disconnect it...) and gathers
their answers. It uses two more channels, so the broadcast channel and its
wire format (version 1 above) are unchanged, and a process of an older gosf
simply does not take part in queries. Each process subscribes, on its one
subscription, to:

* ``<channel>:query``, where every query is published, and
* ``<channel>:reply:<node id>``, where the answers to its own queries come.

A query and an answer are each one JSON object (orjson), small by design::

    query:  {"v": 1, "o": "5f0c3a9e21b7", "q": "17", "r": {...request...}}
    answer: {"v": 1, "o": "a81d0f3c9e02", "q": "17", "a": {...answer...}}

``o`` is the node id of the sender, ``q`` the query's id within the asking
process, ``r`` the query, ``a`` the answer, each as
:mod:`gosf.brokers._queries` writes it (``{"op": "rooms", "n": "/"}``,
``{"rooms": {"red": 2}}``...). A process decodes what arrives once, where it
arrives, into the typed query or answer, and drops (counted in
:attr:`RedisBroker.drops`, logged once per kind) what it cannot read: a
query of a kind it does not know (from a newer gosf, say) is not answered,
and an answer that does not decode counts as its process's answer, so
the asker does not wait for it. The asker first counts the
processes subscribed to ``<channel>:query`` (``PUBSUB NUMSUB``), publishes the
query, answers it itself, and waits until every other process counted has
answered, or ``timeout`` has passed (1 s by default). A process that is not
subscribed (Redis down, reconnecting) answers for itself only: a query never
raises because Redis is unreachable, and never takes longer than its timeout.
Answers that arrive late are dropped; a process that goes away mid-query
costs the asker the timeout.

Direct messages
---------------
:meth:`RedisBroker.send_to` publishes bytes, as they are, to
``<channel>:node:<node id>``, which only that process subscribes to; the
number of receivers Redis reports tells whether it is there. Like every
PUBLISH, a direct message is sent once and never retried. gosf forwards
long-polling requests this way (see ``gosf._transport._forward``).
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from ._base import (
    DEFAULT_QUERY_TIMEOUT,
    Answer,
    Broadcast,
    Deliver,
    Drops,
    Inbox,
    answer_locally,
    check_timeout,
    new_node_id,
)

try:
    import coredis
    from coredis.retry import NoRetryPolicy
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the Redis broker needs coredis: pip install 'gosf[redis]' (or coredis>=6.0)"
    ) from exc

from ._queries import A, Query, QueryAnswer, UnknownQuery, decode_answer
from ._redis_publisher import Publisher
from ._redis_wire import (
    decode_answer_message,
    decode_message,
    decode_query_message,
    encode_answer,
    encode_message,
    encode_query,
)

__all__ = ("RedisBroker", "decode_message", "encode_message")

log = logging.getLogger("gosf.broker")

_SEEN_MAX = 4096
"""How many recent ``(origin, sequence)`` pairs a broker remembers to drop repeats."""
_MAX_ANSWERING = 64
"""Queries of other processes answered at once, at most (more are dropped; askers time out)."""


@dataclass(slots=True)
class _Pending(Generic[A]):
    """A query of this process waiting for answers."""

    query: Query[A]
    expected: int = 0
    """How many other processes were subscribed when it was sent."""
    replied: int = 0
    """How many of them have answered (with an answer that decoded or not)."""
    answers: list[A] = field(default_factory=list)
    done: anyio.Event = field(default_factory=anyio.Event)

    def receive(self, body: object, drops: Drops) -> None:
        """One process's answer: decoded as an answer to the query, or dropped (counted).

        A process whose answer does not decode has still answered: waiting
        longer for it would only cost the asker its timeout.
        """
        try:
            self.answers.append(decode_answer(self.query, body))
        except ValueError as exc:
            drops.drop("an answer it cannot decode", exc)
        self.replied += 1
        if self.replied >= self.expected:
            self.done.set()


def _redact(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


# -- the broker ---------------------------------------------------------------------------


class RedisBroker:
    """Carries broadcasts between the processes of a cluster through Redis pub/sub.

    Made for an app by its config (``gosf.App({"broker": "redis://127.0.0.1:6379/0"})``),
    or by hand: ``SocketIOServer(broker=RedisBroker("redis://127.0.0.1:6379/0"))``.

    ``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL as coredis reads
    it (``redis://[user:password@]host:port/db``). All processes that must
    reach each other use the same Redis and the same ``channel``; a second
    cluster on the same Redis uses another channel.

    Timeouts (seconds): ``connect_timeout`` bounds connecting, the handshake
    and subscribing, one attempt at a time; ``publish_timeout`` bounds one
    PUBLISH; ``keepalive`` is how long a silent subscription waits before it
    PINGs Redis (a PING unanswered within ``publish_timeout`` counts as an
    outage). After a failed attempt :meth:`run` waits a random time between 0
    and ``min(backoff_max, backoff_min * 2 ** failures)`` before the next.

    Raises:
        ValueError: ``url`` is not a Redis URL, a timeout is not positive, or
            ``backoff_max`` is below ``backoff_min``.
    """

    def __init__(
        self,
        url: str,
        *,
        channel: str = "gosf",
        connect_timeout: float = 5.0,
        publish_timeout: float = 2.0,
        keepalive: float = 10.0,
        backoff_min: float = 0.2,
        backoff_max: float = 10.0,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"not a Redis URL: {_redact(url)!r} (redis://, rediss:// or unix://)")
        if not channel:
            raise ValueError("the channel must not be empty")
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("publish_timeout", publish_timeout),
            ("keepalive", keepalive),
            ("backoff_min", backoff_min),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        if backoff_max < backoff_min:
            raise ValueError("backoff_max must not be below backoff_min")
        coredis.Redis.from_url(url)  # parses the URL now (ValueError), connects later
        self.node_id = new_node_id()
        self.url = url
        self.channel = channel
        self.connect_timeout = connect_timeout
        self.publish_timeout = publish_timeout
        self.keepalive = keepalive
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._label = f"redis broker {_redact(url)} (channel {channel!r})"
        self._client: coredis.Redis[bytes] | None = None  # set while subscribed
        self._changed: anyio.Event | None = None  # set when `connected` changes (made by run)
        self._running = False
        self._session_scope: anyio.CancelScope | None = None  # cancelled: reconnect
        self._reset_reason: str | None = None
        self._seq = itertools.count(1)
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._dropped = 0  # broadcasts not published since the last successful one
        self._failed_publishes = False
        self.query_channel = f"{channel}:query"
        self.reply_channel = f"{channel}:reply:{self.node_id}"
        self.node_channel = f"{channel}:node:{self.node_id}"
        self._answer: Answer | None = None
        self._inbox: Inbox | None = None
        self._answering = 0  # queries of other processes being answered now
        self._publisher: Publisher | None = None  # set while subscribed
        self._pending: dict[str, _Pending[Any]] = {}
        self.drops = Drops(self._label)
        """Queries and answers of other processes dropped, by kind."""
        self._qids = itertools.count(1)

    def __repr__(self) -> str:
        return f"RedisBroker({_redact(self.url)!r}, channel={self.channel!r})"

    @property
    def connected(self) -> bool:
        """Whether this process is subscribed now (and so publishes)."""
        return self._client is not None

    def _set_client(self, client: coredis.Redis[bytes] | None) -> None:
        """Record the subscribed connection (``None``: not subscribed); wake the waiters."""
        if (client is None) == (self._client is None):
            self._client = client
            return
        self._client = client
        changed, self._changed = self._changed, anyio.Event()
        if changed is not None:
            changed.set()

    async def wait_connected(self, connected: bool = True) -> None:
        """Return once :attr:`connected` is ``connected`` (the caller bounds the wait).

        For tests and health checks: a Redis outage is seen as ``False`` once
        the subscription or a PUBLISH has failed, and ``True`` again once
        subscribed.
        """
        while self.connected != connected:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, broadcast: Broadcast) -> None:
        """Send ``broadcast`` to the other processes (at most ``publish_timeout`` seconds).

        Never raises because Redis is unreachable, slow or failing: the
        broadcast is then dropped for the other processes and logged (a
        warning when such a run of failures starts, one line with the count
        when it ends). While :meth:`run` is not subscribed, it returns at once;
        a PUBLISH that fails or times out makes :meth:`run` reconnect.

        Raises:
            TypeError: a part of ``broadcast`` is neither ``str`` nor ``bytes``.
        """
        client = self._client
        if client is None:
            self._drop("not connected to Redis")
            return
        payload = encode_message(broadcast, self.node_id, next(self._seq))
        _, reason = await self._publish_bounded(self.channel, payload)
        if reason is not None:
            self._drop(reason)
            self._reconnect(client, reason)
            return
        if self._dropped:
            log.warning(
                "%s: publishing again; %d broadcast(s) did not reach other processes",
                self._label,
                self._dropped,
            )
            self._dropped = 0
        self._failed_publishes = False

    async def _publish_bounded(self, channel: str, data: bytes) -> tuple[int, str | None]:
        """:meth:`_publish` within ``publish_timeout``, never raising:
        ``(receivers, None)``, or ``(0, why it failed)``."""
        try:
            with anyio.move_on_after(self.publish_timeout):
                return await self._publish(channel, data), None
        except Exception as exc:  # whatever coredis raises for a broken connection
            return 0, f"PUBLISH failed: {_describe(exc)}"
        return 0, f"PUBLISH timed out after {self.publish_timeout}s"

    async def _publish(self, channel: str, data: bytes) -> int:
        """PUBLISH through this connection's :class:`Publisher` (batched with others).

        Raises:
            ConnectionError: not connected.
            Exception: what coredis raised.
        """
        publisher = self._publisher
        if publisher is None:
            raise ConnectionError("not connected to Redis")
        return await publisher.publish(channel, data)

    def _reconnect(self, client: coredis.Redis[bytes], reason: str) -> None:
        """Give up on ``client`` (a command on it failed or timed out) and reconnect."""
        session = self._session_scope
        if session is not None and self._client is client:
            # Reconnect now rather than when the subscription notices (a Redis
            # that hangs is noticed by the keepalive only), and until then drop
            # messages at once instead of each waiting for the timeout.
            self._set_client(None)
            self._reset_reason = reason
            session.cancel()

    async def send_to(self, node_id: str, data: bytes) -> bool:
        """Send ``data`` to the process ``node_id`` (at most ``publish_timeout`` seconds).

        Returns whether that process received it (is subscribed now). Never
        raises because Redis is unreachable, slow or failing: ``False`` then
        (and, as for :meth:`publish`, a failed PUBLISH makes :meth:`run`
        reconnect).
        """
        client = self._client
        if client is None:
            return False
        receivers, reason = await self._publish_bounded(f"{self.channel}:node:{node_id}", data)
        if reason is not None:
            log.warning("%s: a direct message to %s failed: %s", self._label, node_id, reason)
            self._reconnect(client, reason)
            return False
        return receivers > 0

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        if not self._failed_publishes:
            self._failed_publishes = True
            log.warning(
                "%s: %s; broadcasts reach this process's clients only until it is back",
                self._label,
                reason,
            )
        else:
            log.debug("%s: broadcast dropped: %s", self._label, reason)

    # -- queries ------------------------------------------------------------------------

    async def query(
        self,
        query: Query[A],
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> list[A]:
        """Ask every process ``query``; their answers, this process's first.

        Returns once every other process subscribed when the query was sent
        has answered, or after ``timeout`` seconds. Never raises because
        Redis is unreachable, slow or failing: the answers gathered so far
        (at least this process's, if it has one) are returned, and the
        failure is logged. An answer that does not decode as an answer to
        ``query`` is dropped (counted, logged once), its process counted as
        having answered.

        Raises:
            ValueError: ``timeout`` is not positive.
            TypeError: a string of ``query`` cannot be encoded (a lone surrogate).
        """
        check_timeout(timeout)
        qid = str(next(self._qids))
        payload = encode_query(self.node_id, qid, query)  # a TypeError now, not mid-way
        deadline = anyio.current_time() + timeout
        local = answer_locally(self._answer, query, self.drops)
        answers = [] if local is None else [local]
        client = self._client
        if client is None:
            log.debug("%s: not connected to Redis: query answered locally only", self._label)
            return answers
        pending = _Pending(query)
        self._pending[qid] = pending
        try:
            with anyio.move_on_after(deadline - anyio.current_time()) as scope:
                counts = await client.pubsub_numsub(self.query_channel)
                subscribed = sum(counts.values())
                pending.expected = max(0, subscribed - 1)  # less this process
                if pending.expected:
                    await self._publish(self.query_channel, payload)
                    if pending.replied < pending.expected:
                        await pending.done.wait()
            if scope.cancelled_caught:
                log.info(
                    "%s: query %s: %d of %d process(es) answered within %ss",
                    self._label,
                    type(query).__name__,
                    pending.replied,
                    pending.expected,
                    timeout,
                )
        except Exception as exc:  # whatever coredis raises for a broken connection
            log.warning("%s: query failed: %s", self._label, _describe(exc))
        finally:
            del self._pending[qid]
        return answers + pending.answers

    async def _run_publisher(self, publisher: Publisher, client: coredis.Redis[bytes]) -> None:
        try:
            await publisher.run()
        except Exception as exc:  # whatever coredis raises for a broken connection
            self._reconnect(client, f"PUBLISH failed: {_describe(exc)}")

    def _start_answer(self, tg: TaskGroup, client: coredis.Redis[bytes], data: Any) -> None:
        """Answer a query in a task of ``tg``, unless ``_MAX_ANSWERING`` already are."""
        if self._answering >= _MAX_ANSWERING:
            log.warning("%s: %d queries being answered: dropped one", self._label, _MAX_ANSWERING)
            return
        self._answering += 1

        async def answer() -> None:
            try:
                await self._answer_query(client, data)
            finally:
                self._answering -= 1

        tg.start_soon(answer)

    async def _answer_query(self, client: coredis.Redis[bytes], data: Any) -> None:
        """Answer a query of another process (bounded by ``publish_timeout``; never raises).

        A query of a kind this process does not know (a newer gosf's) or one
        it cannot read is dropped: counted, logged once, never answered.
        """
        try:
            origin, qid, query = decode_query_message(data)
        except UnknownQuery as exc:
            self.drops.drop("an unknown query", exc)
            return
        except ValueError as exc:
            self.drops.drop("a query it cannot decode", exc)
            return
        if origin == self.node_id:
            return
        asked: Query[QueryAnswer] = query
        answer = answer_locally(self._answer, asked, self.drops)
        if answer is None:
            return
        try:
            payload = encode_answer(self.node_id, qid, answer)
        except TypeError as exc:
            log.error("%s: an answer cannot be encoded: %s", self._label, exc)
            return
        _, reason = await self._publish_bounded(f"{self.channel}:reply:{origin}", payload)
        if reason is not None:
            log.warning("%s: answering a query failed: %s", self._label, reason)

    def _receive_answer(self, data: Any) -> None:
        try:
            _, qid, body = decode_answer_message(data)
        except ValueError as exc:
            self.drops.drop("an answer it cannot decode", exc)
            return
        pending = self._pending.get(qid)
        if pending is None:
            return  # late: the query is over
        pending.receive(body, self.drops)

    # -- receiving ----------------------------------------------------------------------

    async def run(
        self,
        deliver: Deliver,
        *,
        answer: Answer | None = None,
        inbox: Inbox | None = None,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Subscribe and ``deliver`` what other processes publish, until cancelled.

        Queries of every process are answered with ``answer`` (none: this
        process does not answer, and its own queries get no local answer).
        Direct messages to this process go to ``inbox`` (none: dropped).

        Reports started (``task_status.started()``) after the first attempt:
        once subscribed, or as soon as that attempt has failed (within about
        ``connect_timeout``), so a server starts while Redis is down and
        serves its own clients; the subscription is then retried in the
        background, with capped exponential backoff and jitter, for as long
        as this runs. ``deliver`` is called for each broadcast of another
        process, in the order Redis sends them; an exception from it is
        logged and does not stop the subscription.

        Raises:
            RuntimeError: this broker is already running (one subscription per process).
        """
        if self._running:
            raise RuntimeError(f"{self} is already running: one subscription per process")
        self._running = True
        self._answer = answer
        self._inbox = inbox
        started = False
        failures = 0
        down_since: float | None = None

        def on_subscribed() -> None:
            nonlocal started, failures, down_since
            if down_since is not None:
                log.warning(
                    "%s: subscribed again after %.1fs; cross-process delivery resumes",
                    self._label,
                    anyio.current_time() - down_since,
                )
            else:
                log.info("%s: subscribed", self._label)
            failures = 0
            down_since = None
            if not started:
                started = True
                task_status.started()

        try:
            while True:
                self._reset_reason = None
                try:
                    with anyio.CancelScope() as self._session_scope:
                        await self._session(deliver, on_subscribed)
                    raise ConnectionError("the subscription ended")
                except Exception as exc:
                    # Stopping? (Under asyncio, coredis may turn the cancellation into
                    # an error of its teardown, such as ClosedResourceError.)
                    await anyio.lowlevel.checkpoint_if_cancelled()
                    # (a reset reason: publish() gave up on this connection)
                    reason = self._reset_reason or _describe(exc)
                    failures += 1
                    delay = random.uniform(
                        0, min(self.backoff_max, self.backoff_min * 2 ** min(failures - 1, 30))
                    )
                    if down_since is None:
                        down_since = anyio.current_time()
                        log.warning(
                            "%s: Redis unreachable (%s); local delivery continues, "
                            "broadcasts do not cross processes until it is back; "
                            "retrying in %.2fs",
                            self._label,
                            reason,
                            delay,
                        )
                    else:
                        log.info(
                            "%s: still unreachable (%s, attempt %d); retrying in %.2fs",
                            self._label,
                            reason,
                            failures,
                            delay,
                        )
                except BaseExceptionGroup as group:
                    # Cancelled (the server stops): under trio, coredis's pub/sub may add
                    # what it raised while being torn down (e.g. ClosedResourceError from
                    # an UNSUBSCRIBE on a connection already closed). Let only the
                    # cancellation through.
                    raise _cancellation(group) from None
                if not started:
                    started = True
                    task_status.started()
                await anyio.sleep(delay)
        finally:
            self._set_client(None)
            self._session_scope = None
            self._answer = None
            self._inbox = None
            self._running = False

    async def _session(self, deliver: Deliver, on_subscribed: Callable[[], None]) -> None:
        """One connection: subscribe, then deliver until the connection fails.

        Raises:
            TimeoutError: not subscribed within ``connect_timeout``.
            Exception: whatever coredis raises when Redis is unreachable or
                goes away (``coredis.exceptions.ConnectionError``, often in an
                exception group).
        """
        client: coredis.Redis[bytes] = coredis.Redis.from_url(
            self.url,
            decode_responses=False,
            retry_policy=NoRetryPolicy(),  # a retried PUBLISH could arrive twice
            connect_timeout=self.connect_timeout,
            stream_timeout=self.publish_timeout,
        )
        with anyio.CancelScope(deadline=anyio.current_time() + self.connect_timeout) as attempt:
            async with (
                client,
                client.pubsub(
                    ignore_subscribe_messages=True,
                    retry_policy=NoRetryPolicy(),  # reconnecting is ours, see run()
                    subscription_timeout=self.connect_timeout,
                    max_idle_seconds=self.keepalive,
                ) as pubsub,
            ):
                await pubsub.subscribe(
                    self.channel, self.query_channel, self.reply_channel, self.node_channel
                )
                attempt.deadline = math.inf
                publisher = self._publisher = Publisher(client)
                self._set_client(client)
                channel = self.channel.encode()
                queries = self.query_channel.encode()
                direct = self.node_channel.encode()
                failure: Exception | None = None
                try:
                    on_subscribed()
                    # PUBLISHes go through the publisher's task, and answers to other
                    # processes' queries are made by tasks of their own: a slow
                    # PUBLISH never holds up what arrives on the subscription.
                    async with anyio.create_task_group() as helpers:
                        helpers.start_soon(self._run_publisher, publisher, client)
                        try:
                            async for message in pubsub:
                                if message["type"] != "message":
                                    continue
                                source = message["channel"]
                                if isinstance(source, str):
                                    source = source.encode()
                                if source == channel:
                                    self._receive(message["data"], deliver)
                                elif source == direct:
                                    self._receive_direct(message["data"])
                                elif source == queries:
                                    self._start_answer(helpers, client, message["data"])
                                else:
                                    self._receive_answer(message["data"])
                        except Exception as exc:  # the connection failed: reconnect
                            failure = exc
                        helpers.cancel_scope.cancel()
                finally:
                    self._set_client(None)
                    self._publisher = None
                if failure is not None:
                    raise failure
        if attempt.cancelled_caught:
            raise TimeoutError(f"not subscribed within {self.connect_timeout}s")

    def _receive_direct(self, data: Any) -> None:
        inbox = self._inbox
        if inbox is None:
            return
        if not isinstance(data, bytes):
            log.warning("%s: dropped a direct message that is not bytes", self._label)
            return
        try:
            inbox(data)
        except Exception:
            log.exception("%s: the inbox failed on a direct message", self._label)

    def _receive(self, data: Any, deliver: Deliver) -> None:
        if not isinstance(data, bytes):
            log.warning("%s: dropped a message that is not bytes: %r", self._label, type(data))
            return
        try:
            broadcast, seq = decode_message(data)
        except ValueError as exc:
            log.warning("%s: dropped a message it cannot decode: %s", self._label, exc)
            return
        if broadcast.origin == self.node_id:
            return
        key = (broadcast.origin, seq)
        if key in self._seen:
            log.warning("%s: dropped a repeated message %s", self._label, key)
            return
        self._seen[key] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
        try:
            deliver(broadcast)
        except Exception:
            log.exception("%s: delivering a broadcast from %s failed", self._label, key[0])


def _cancellation(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first cancellation exception in ``group``, or ``group`` itself if it holds none."""
    cancelled, _ = group.split(anyio.get_cancelled_exc_class())
    if cancelled is None:
        return group
    exc: BaseException = cancelled
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    """A one-line account of ``exc``, looking inside exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
