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

Queries and direct messages
---------------------------
:meth:`RedisBroker.query` asks every process a question and gathers their
answers within a timeout, over two more channels
(:mod:`gosf.brokers._redis_queries`). :meth:`RedisBroker.send_to` publishes
bytes, as they are, to ``<channel>:node:<node id>``, which only that process
subscribes to; the number of receivers Redis reports tells whether it is
there. Like every PUBLISH, a direct message is sent once and never retried.
gosf forwards long-polling requests this way (see ``gosf._cluster.forward``).

The parts
---------
This module is the broker as the server sees it; the work is done by

* :mod:`~gosf.brokers._redis_connection`: staying subscribed, one session
  after another, with backoff;
* :mod:`~gosf.brokers._redis_session`: one connection, from subscribing
  until it fails, and the bounded PUBLISH through it;
* :mod:`~gosf.brokers._redis_publisher`: every PUBLISH of a connection,
  pipelined when several wait;
* :mod:`~gosf.brokers._redis_receiver`: where each message that arrives goes;
* :mod:`~gosf.brokers._redis_queries`: cluster-wide queries;
* :mod:`~gosf.brokers._redis_streams`: Streams mode (``streams=True``),
  broadcasts through a Redis stream each process follows;
* :mod:`~gosf.brokers._redis_wire`: the messages as bytes, and the channels' names.
"""

from __future__ import annotations

import itertools
import logging
from typing import Final

import anyio
from anyio.abc import TaskStatus

from ._base import DEFAULT_QUERY_TIMEOUT, Answer, Broadcast, Deliver, Drops, Inbox, new_node_id
from ._queries import A, Query
from ._redis_connection import RedisConnection
from ._redis_queries import RedisQueries
from ._redis_receiver import Receiver
from ._redis_session import RedisSettings, describe, redact
from ._redis_streams import BroadcastStream
from ._redis_wire import Channels, encode_message

__all__ = ("RedisBroker",)

log = logging.getLogger("gosf.broker")


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
    They are read once, when the broker is made (into :attr:`settings`).

    ``streams``: broadcasts go through a Redis stream of about
    ``stream_maxlen`` entries, which each process reads from its last entry,
    each read waiting ``stream_block`` seconds at most
    (:mod:`gosf.brokers._redis_streams`): a process cut off for a while
    misses nothing the stream still holds. Every process of the cluster
    must use the same mode.

    Raises:
        ValueError: ``url`` is not a Redis URL, a timeout is not positive,
            ``backoff_max`` is below ``backoff_min``, or ``stream_maxlen`` or
            ``stream_block`` is not positive.
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
        streams: bool = False,
        stream_maxlen: int = 10_000,
        stream_block: float = 1.0,
    ) -> None:
        if not channel:
            raise ValueError("the channel must not be empty")
        if stream_maxlen < 1 or not stream_block > 0:
            raise ValueError("stream_maxlen must be positive, and stream_block too")
        self.settings: Final = RedisSettings(
            url,
            connect_timeout=connect_timeout,
            publish_timeout=publish_timeout,
            keepalive=keepalive,
            backoff_min=backoff_min,
            backoff_max=backoff_max,
        )
        # The settings as given, for who reads them (the broker's parts read ``settings``).
        self.url: Final = url
        self.connect_timeout: Final = connect_timeout
        self.publish_timeout: Final = publish_timeout
        self.keepalive: Final = keepalive
        self.backoff_min: Final = backoff_min
        self.backoff_max: Final = backoff_max
        self.node_id = new_node_id()
        self.channel = channel
        self._label = f"redis broker {redact(url)} (channel {channel!r})"
        self.drops = Drops(self._label)
        """Queries and answers of other processes dropped, by kind."""
        channels = Channels(channel, self.node_id)
        self.query_channel = channels.query
        self.reply_channel = channels.reply
        self.node_channel = channels.node
        self._channels = channels
        self._connection = RedisConnection(self.settings, self._label)
        self._queries = RedisQueries(self.node_id, channels, self.drops)
        self._receiver = Receiver(self.node_id, channels, self._queries, self._label)
        self.streams: Final = streams
        """Streams mode (:mod:`gosf.brokers._redis_streams`): broadcasts through
        the stream ``<channel>:stream`` rather than pub/sub."""
        self._stream = BroadcastStream(
            f"{channel}:stream",
            self.node_id,
            maxlen=stream_maxlen,
            block=stream_block,
            timeout=publish_timeout,
            label=self._label,
        )
        self._stream_ready: anyio.Event | None = None  # set once reading the stream
        self._running = False
        self._seq = itertools.count(1)
        self._dropped = 0  # broadcasts not published since the last successful one
        self.publish_failures = 0
        """Broadcasts not published since the broker was made (metrics read it)."""
        self._failed_publishes = False

    def __repr__(self) -> str:
        return f"RedisBroker({redact(self.url)!r}, channel={self.channel!r})"

    @property
    def connected(self) -> bool:
        """Whether this process is subscribed now (and so publishes)."""
        return self._connection.connected

    async def wait_connected(self, connected: bool = True) -> None:
        """Return once :attr:`connected` is ``connected`` (the caller bounds the wait).

        For tests and health checks: a Redis outage is seen as ``False`` once
        the subscription or a PUBLISH has failed, and ``True`` again once
        subscribed (in Streams mode, and once it knows where to read the
        stream from: what is appended after that reaches it).
        """
        await self._connection.wait_connected(connected)
        if connected and self.streams:
            if self._stream_ready is None:
                self._stream_ready = anyio.Event()
            await self._stream_ready.wait()

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
        session = self._connection.session
        if session is None:
            self._drop("not connected to Redis")
            return
        payload = encode_message(broadcast, self.node_id, next(self._seq))
        if self.streams:
            reason = await self._stream.append(session, payload)
        else:
            _, reason = await session.try_publish(self.channel, payload)
        if reason is not None:
            self._drop(reason)
            self._connection.reconnect(session, reason)
            return
        if self._dropped:
            log.warning(
                "%s: publishing again; %d broadcast(s) did not reach other processes",
                self._label,
                self._dropped,
            )
            self._dropped = 0
        self._failed_publishes = False

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        self.publish_failures += 1
        if not self._failed_publishes:
            self._failed_publishes = True
            log.warning(
                "%s: %s; broadcasts reach this process's clients only until it is back",
                self._label,
                reason,
            )
        else:
            log.debug("%s: broadcast dropped: %s", self._label, reason)

    async def send_to(self, node_id: str, data: bytes) -> bool:
        """Send ``data`` to the process ``node_id`` (at most ``publish_timeout`` seconds).

        Returns whether that process received it (is subscribed now). Never
        raises because Redis is unreachable, slow or failing: ``False`` then
        (and, as for :meth:`publish`, a failed PUBLISH makes :meth:`run`
        reconnect).
        """
        session = self._connection.session
        if session is None:
            return False
        receivers, reason = await session.try_publish(self._channels.node_of(node_id), data)
        if reason is not None:
            log.warning("%s: a direct message to %s failed: %s", self._label, node_id, reason)
            self._connection.reconnect(session, reason)
            return False
        return receivers > 0

    def _reading(self) -> None:
        if self._stream_ready is None:
            self._stream_ready = anyio.Event()
        self._stream_ready.set()

    async def _follow_stream(self, deliver: Deliver) -> None:
        """Streams mode: read the stream through each session in turn, from the
        last entry delivered, for as long as :meth:`run` runs."""
        connection = self._connection
        while True:
            await connection.wait_connected(True)
            session = connection.session
            if session is None:
                continue
            try:
                await self._stream.follow(session, deliver, self._reading)
            except Exception as exc:  # a read failed or timed out: reconnect, then go on
                connection.reconnect(session, f"XREAD failed: {describe(exc)}")
            # Wait for that session to go (bounded: reconnect drops it at once).
            with anyio.move_on_after(self.connect_timeout):
                while connection.session is session:
                    await connection.wait_connected(False)

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
        return await self._queries.ask(self._connection.session, query, timeout)

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
        self._queries.answer = answer
        self._receiver.deliver = deliver
        self._receiver.inbox = inbox
        try:
            if not self.streams:
                await self._connection.run(
                    self._channels.subscribed, self._receiver, task_status=task_status
                )
                return
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._follow_stream, deliver)
                await self._connection.run(
                    self._channels.subscribed, self._receiver, task_status=task_status
                )
        finally:
            self._queries.answer = None
            self._receiver.deliver = None
            self._receiver.inbox = None
            self._running = False
