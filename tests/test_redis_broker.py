"""RedisBroker against a real redis-server, under asyncio and trio.

Two brokers in one test stand for two processes of a cluster. Each test uses
its own channel on the module's redis-server; the fault tests get a
redis-server of their own, which they stop and start again.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import anyio
import coredis
import orjson
import pytest
from anyio.abc import TaskStatus

import gosf
from gosf.brokers import (
    AnyAnswer,
    AnyQuery,
    Broadcast,
    Broker,
    CommandResult,
    CountQuery,
    RoomCounts,
    RoomsQuery,
    SocketCommand,
    SocketCount,
    UnknownQuery,
    from_url,
)
from gosf.brokers._queries import decode_answer
from gosf.brokers._redis import RedisBroker
from gosf.brokers._redis_connection import backoff_delay
from gosf.brokers._redis_wire import (
    Channels,
    decode_answer_message,
    decode_message,
    decode_query_message,
    encode_answer,
    encode_message,
    encode_query,
)
from gosf.protocol.session import Session
from tests import redis_fixtures
from tests.conftest import free_port
from tests.harness import Watch, serve_app, watch_attribute
from tests.redis_fixtures import RedisServer
from tests.test_forwarding import Hopping, http_client

redis_server = redis_fixtures.redis_server
redis_url = redis_fixtures.redis_url
own_redis = redis_fixtures.own_redis

WAIT = 10.0
"""The longest any single wait in these tests may take."""
QUIET = 0.3
"""How long to watch for a message that must not come (a duplicate, an echo)."""

_channels = itertools.count()


def channel() -> str:
    return f"gosf-test-{time.monotonic_ns()}-{next(_channels)}"


class Inbox:
    """What one broker delivered, with bounded waits."""

    def __init__(self) -> None:
        self.received: list[Broadcast] = []
        self._changed = anyio.Event()

    def deliver(self, broadcast: Broadcast) -> None:
        self.received.append(broadcast)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, count: int) -> list[Broadcast]:
        """The broadcasts delivered, once there are ``count`` (within ``WAIT`` seconds)."""
        await self.until(lambda: len(self.received) >= count)
        return self.received

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (within ``WAIT`` seconds) until ``condition()`` holds, looking
        again at each delivery."""
        with anyio.fail_after(WAIT):
            while not condition():
                await self._changed.wait()

    def texts(self) -> list[str]:
        return [str(b.parts[0]) for b in self.received]


def note(into: list[bytes], watch: Watch, message: bytes) -> None:
    """A direct message's arrival: kept in ``into``, and ``watch`` told."""
    into.append(message)
    watch.notify()


def make_broker(url: str, chan: str, **options: Any) -> RedisBroker:
    settings: dict[str, Any] = {
        "connect_timeout": 2.0,
        "publish_timeout": 1.0,
        "keepalive": 2.0,
        "backoff_min": 0.05,
        "backoff_max": 0.5,
    }
    settings.update(options)
    return RedisBroker(url, channel=chan, **settings)


@asynccontextmanager
async def running(*brokers: RedisBroker) -> AsyncIterator[list[Inbox]]:
    """Run each broker (as a server would, with ``tg.start``), yield their inboxes."""
    inboxes = [Inbox() for _ in brokers]
    async with anyio.create_task_group() as tg:
        for broker, inbox in zip(brokers, inboxes, strict=True):
            with anyio.fail_after(WAIT):
                await tg.start(broker.run, inbox.deliver)
        yield inboxes
        tg.cancel_scope.cancel()


async def connected(*brokers: RedisBroker, state: bool = True) -> None:
    """Wait (within ``WAIT`` seconds) until every broker is subscribed (or, ``state``
    false, is not)."""
    with anyio.fail_after(WAIT):
        for broker in brokers:
            await broker.wait_connected(state)


# -- the wire format ------------------------------------------------------------------------


def test_wire_round_trip() -> None:
    broadcast = Broadcast(
        "/chat",
        ('52-["file",{"_placeholder":true,"num":0},"\\n é"]', b"\x00\n\xff" * 100, b""),
        ("room a", "ü"),
        "sid-1",
    )
    data = encode_message(broadcast, "node-a", 7)
    assert data.count(b"\n", 0, data.index(b"\n") + 1) == 1
    decoded, seq = decode_message(data)
    assert seq == 7
    assert decoded == Broadcast(
        broadcast.namespace, broadcast.parts, broadcast.rooms, broadcast.skip, "node-a"
    )
    everyone, _ = decode_message(encode_message(Broadcast("/", ("2[]",)), "n", 1))
    assert everyone.rooms is None and everyone.skip is None


def test_wire_carries_skip_rooms_and_volatile_in_optional_keys() -> None:
    broadcast = Broadcast("/", ("2[]",), ("red",), None, skip_rooms=("muted", "a"), volatile=True)
    data = encode_message(broadcast, "node-a", 3)
    header = orjson.loads(data[: data.index(b"\n")])
    assert header["x"] == ["muted", "a"] and header["vo"] is True
    decoded, _ = decode_message(data)
    assert decoded == dataclasses.replace(broadcast, origin="node-a")
    # A plain broadcast is the bytes it always was: a process of the version
    # before these keys reads the same header, and ignores keys it does not know.
    plain = encode_message(Broadcast("/", ("2[]",), ("red",)), "node-a", 3)
    assert set(orjson.loads(plain[: plain.index(b"\n")])) == {
        "v", "o", "i", "n", "r", "s", "k", "l"
    }  # fmt: skip
    assert decode_message(plain)[0].skip_rooms == ()
    assert decode_message(plain)[0].volatile is False


@pytest.mark.parametrize(
    "data",
    [
        b'{"v":1,"o":"a","i":1,"n":"/","r":null,"s":null,"x":"room","k":"t","l":[1]}\na',
        b'{"v":1,"o":"a","i":1,"n":"/","r":null,"s":null,"x":[1],"k":"t","l":[1]}\na',
        b'{"v":1,"o":"a","i":1,"n":"/","r":null,"s":null,"vo":1,"k":"t","l":[1]}\na',
        b"",
        b"no header",
        b"[1]\n",
        b'{"v":2}\n',
        b'{"v":1,"o":"a","i":1,"n":"/","r":null,"s":null,"k":"t","l":[5]}\nabc',
        b'{"v":1,"o":"a","i":1,"n":"/","r":null,"s":null,"k":"x","l":[1]}\na',
        b'{"v":1,"o":"a","i":1,"n":"/","r":[1],"s":null,"k":"t","l":[1]}\na',
        b'{"v":1,"o":"a","i":"1","n":"/","r":null,"s":null,"k":"t","l":[1]}\na',
        b'{"v":1,"o":"a","i":1,"n":"/","r":null,"s":null,"k":"t","l":[2]}\n\xff\xfe',
    ],
)
def test_wire_rejects_malformed(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_message(data)


def test_query_messages_round_trip() -> None:
    for query in (
        RoomsQuery("/chat"),
        CountQuery(),
        SocketCommand("disconnect", "s1"),
        SocketCommand("join", "s1", "room é"),
    ):
        assert decode_query_message(encode_query("node-a", "17", query)) == ("node-a", "17", query)
    data = encode_query("node-a", "3", RoomsQuery())
    assert orjson.loads(data) == {"v": 1, "o": "node-a", "q": "3", "r": {"op": "rooms", "n": "/"}}
    for asked, answer in (
        (RoomsQuery(), RoomCounts({"red": 2})),
        (CountQuery(), SocketCount(4)),
        (SocketCommand("leave", "s", "r"), CommandResult(True)),
    ):
        origin, qid, body = decode_answer_message(encode_answer("node-b", "9", answer))
        assert (origin, qid) == ("node-b", "9")
        assert decode_answer(asked, body) == answer


# What processes of other versions, or broken ones, might publish on the query channel.
BAD_QUERIES = [
    b"",
    b"not json",
    b"\xff\xfe",
    b"[1]",
    b'{"v":2,"o":"x","q":"1","r":{"op":"rooms","n":"/"}}',
    b'{"v":1,"o":7,"q":"1","r":{"op":"rooms","n":"/"}}',
    b'{"v":1,"o":"x","q":"1"}',
    b'{"v":1,"o":"x","q":"1","r":{"op":"rooms"}}',
    b'{"v":1,"o":"x","q":"1","r":{"op":"join","n":"/","sid":"s"}}',
]
UNKNOWN_QUERY = b'{"v":1,"o":"x","q":"1","r":{"op":"fetchSockets","n":"/","opts":{}}}'


@pytest.mark.parametrize("data", BAD_QUERIES)
def test_wire_rejects_malformed_queries(data: bytes) -> None:
    with pytest.raises(ValueError) as caught:
        decode_query_message(data)
    assert not isinstance(caught.value, UnknownQuery)


def test_wire_rejects_unknown_queries() -> None:
    with pytest.raises(UnknownQuery):
        decode_query_message(UNKNOWN_QUERY)


def test_channel_names_are_those_gosf_always_used() -> None:
    """Processes of older gosf versions subscribe to these names: they are wire format."""
    names = Channels("app", "node-a")
    assert names.subscribed == ("app", "app:query", "app:reply:node-a", "app:node:node-a")
    assert (names.reply_to("node-b"), names.node_of("node-b")) == (
        "app:reply:node-b",
        "app:node:node-b",
    )
    broker = RedisBroker("redis://127.0.0.1:1/0", channel="app")
    assert (broker.query_channel, broker.reply_channel, broker.node_channel) == (
        "app:query",
        f"app:reply:{broker.node_id}",
        f"app:node:{broker.node_id}",
    )


def test_backoff_is_jittered_below_a_doubling_capped_ceiling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pause after ``n`` failures is uniform in ``[0, min(max, min * 2 ** (n - 1))]``,
    however long the outage (no overflow after many failures)."""
    bounds: list[tuple[float, float]] = []

    def highest(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr("random.uniform", highest)
    settings = RedisBroker("redis://127.0.0.1:1/0", backoff_min=0.5, backoff_max=3.0).settings
    assert [backoff_delay(settings, n) for n in (1, 2, 3, 4, 10**6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert {low for low, _ in bounds} == {0}


def test_from_url_and_bad_settings() -> None:
    broker = from_url("redis://127.0.0.1:1/0")
    assert isinstance(broker, RedisBroker) and isinstance(broker, Broker)
    assert "secret" not in repr(RedisBroker("redis://user:secret@127.0.0.1:1/0"))
    for bad in ("http://127.0.0.1:6379", "redis://127.0.0.1:notaport/0"):
        with pytest.raises(ValueError):
            RedisBroker(bad)
    with pytest.raises(ValueError):
        RedisBroker("redis://127.0.0.1:1/0", publish_timeout=0)
    with pytest.raises(ValueError):
        RedisBroker("redis://127.0.0.1:1/0", backoff_min=2, backoff_max=1)


# -- two processes ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_broadcast_reaches_the_other_process_once(redis_url: str) -> None:
    chan = channel()
    a, b = make_broker(redis_url, chan), make_broker(redis_url, chan)
    async with running(a, b) as (inbox_a, inbox_b):
        assert a.connected and b.connected
        await a.publish(Broadcast("/chat", ('2["hi"]',), ("lobby", "news"), "sid-x"))
        (got,) = await inbox_b.wait_for(1)
        assert got == Broadcast("/chat", ('2["hi"]',), ("lobby", "news"), "sid-x", a.node_id)
        await a.publish(Broadcast("/", ('2["all"]',)))
        await inbox_b.wait_for(2)
        assert inbox_b.received[1] == Broadcast("/", ('2["all"]',), None, None, a.node_id)
        await b.publish(Broadcast("/", ('2["back"]',)))
        await inbox_a.wait_for(1)
        await anyio.sleep(QUIET)
        assert inbox_a.texts() == ['2["back"]']  # never its own
        assert inbox_b.texts() == ['2["hi"]', '2["all"]']  # each exactly once


@pytest.mark.anyio
async def test_binary_attachments_survive(redis_url: str) -> None:
    chan = channel()
    a, b = make_broker(redis_url, chan), make_broker(redis_url, chan)
    attachment = bytes(range(256)) * 64 + b"\r\n\n"
    parts: tuple[str | bytes, ...] = (
        '52-["file",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        attachment,
        b"",
    )
    async with running(a, b) as (_, inbox_b):
        await a.publish(Broadcast("/files", parts, ("r",), None))
        (got,) = await inbox_b.wait_for(1)
        assert got.parts == parts
        assert isinstance(got.parts[1], bytes) and isinstance(got.parts[0], str)


@pytest.mark.anyio
async def test_many_broadcasts_from_many_tasks_arrive_once_each(redis_url: str) -> None:
    chan = channel()
    a, b, c = (make_broker(redis_url, chan) for _ in range(3))
    async with running(a, b, c) as (inbox_a, inbox_b, inbox_c):

        async def burst(broker: RedisBroker, name: str) -> None:
            for i in range(100):
                await broker.publish(Broadcast("/", (f"{name}{i}",)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(burst, a, "a")
            tg.start_soon(burst, b, "b")
        await inbox_c.wait_for(200)
        await inbox_a.wait_for(100)
        await inbox_b.wait_for(100)
        await anyio.sleep(QUIET)
        assert sorted(inbox_c.texts()) == sorted(
            [f"a{i}" for i in range(100)] + [f"b{i}" for i in range(100)]
        )
        assert inbox_a.texts() == [f"b{i}" for i in range(100)]  # one publisher: in order
        assert inbox_b.texts() == [f"a{i}" for i in range(100)]


@pytest.mark.anyio
async def test_one_subscription_per_broker(redis_url: str) -> None:
    broker = make_broker(redis_url, channel())
    async with running(broker):
        with pytest.raises(RuntimeError):
            await broker.run(lambda b: None)


@pytest.mark.anyio
async def test_a_failing_deliver_does_not_stop_the_subscription(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    chan = channel()
    a, b = make_broker(redis_url, chan), make_broker(redis_url, chan)
    got: list[Broadcast] = []
    delivered = Watch()

    def deliver(broadcast: Broadcast) -> None:
        got.append(broadcast)
        delivered.notify()
        if len(got) == 1:
            raise RuntimeError("a bug in deliver")

    async with anyio.create_task_group() as tg, running(a):
        await tg.start(b.run, deliver)
        with caplog.at_level(logging.ERROR, "gosf.broker"):
            await a.publish(Broadcast("/", ("one",)))
            await a.publish(Broadcast("/", ("two",)))
            await delivered.until(lambda: len(got) == 2, WAIT)
        assert "a bug in deliver" in caplog.text
        tg.cancel_scope.cancel()


# -- outages ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_direct_messages_reach_only_their_process_in_order(redis_url: str) -> None:
    chan = channel()
    first, second, third = (make_broker(redis_url, chan) for _ in range(3))
    got: dict[str, list[bytes]] = {b.node_id: [] for b in (first, second, third)}
    arrived = Watch()
    async with anyio.create_task_group() as tg:
        for broker in (first, second, third):
            with anyio.fail_after(WAIT):
                inbox = partial(note, got[broker.node_id], arrived)
                await tg.start(partial(broker.run, Inbox().deliver, inbox=inbox))
        messages = [b"\x00binary\n" + bytes([n]) for n in range(50)]
        for message in messages:
            assert await first.send_to(second.node_id, message)
        assert not await first.send_to("no-such-node", b"lost")
        await arrived.until(lambda: len(got[second.node_id]) == len(messages), WAIT)
        await anyio.sleep(QUIET)
        assert got[second.node_id] == messages
        assert got[first.node_id] == got[third.node_id] == []
        tg.cancel_scope.cancel()
    with anyio.fail_after(1):  # not running: not reachable, at once
        assert not await first.send_to(second.node_id, b"stopped")


@pytest.mark.anyio
async def test_direct_messages_from_many_tasks_are_batched_in_order(redis_url: str) -> None:
    """Concurrent senders share one pipelined publisher; each sender's order holds."""
    chan = channel()
    first, second = make_broker(redis_url, chan), make_broker(redis_url, chan)
    got: list[bytes] = []
    arrived = Watch()
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(WAIT):
            await tg.start(partial(first.run, Inbox().deliver))
            await tg.start(partial(second.run, Inbox().deliver, inbox=partial(note, got, arrived)))
        outcomes: list[bool] = []

        async def sender(task: int) -> None:
            for n in range(40):
                outcomes.append(await first.send_to(second.node_id, f"{task}:{n}".encode()))

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as senders:
                for task in range(25):
                    senders.start_soon(sender, task)
        assert outcomes == [True] * 1000
        await arrived.until(lambda: len(got) == 1000, WAIT)
        for task in range(25):
            mine = [m for m in got if m.startswith(f"{task}:".encode())]
            assert mine == [f"{task}:{n}".encode() for n in range(40)]
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_publish_without_redis_returns_at_once() -> None:
    broker = RedisBroker(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1)
    with anyio.fail_after(1):
        await broker.publish(Broadcast("/", ("not running",)))  # never ran: dropped
    inbox = Inbox()
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(WAIT):  # started reported after the first failed attempt
            await tg.start(broker.run, inbox.deliver)
        assert not broker.connected
        with anyio.fail_after(1):
            await broker.publish(Broadcast("/", ("redis down",)))
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_starting_before_redis_subscribes_once_it_is_up(own_redis: RedisServer) -> None:
    own_redis.stop()
    chan = channel()
    a, b = make_broker(own_redis.url, chan), make_broker(own_redis.url, chan)
    async with running(a, b) as (_, inbox_b):
        assert not a.connected and not b.connected
        await a.publish(Broadcast("/", ("lost",)))
        own_redis.start()
        await connected(a, b)
        await a.publish(Broadcast("/", ("after",)))
        await inbox_b.wait_for(1)
        await anyio.sleep(QUIET)
        assert inbox_b.texts() == ["after"]


@pytest.mark.anyio
async def test_redis_restart_mid_traffic(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Stop Redis while A publishes: no raise, no long block; B gets each message at most once
    and every message published after both resubscribed."""
    caplog.set_level(logging.INFO, "gosf.broker")
    chan = channel()
    a, b = make_broker(own_redis.url, chan), make_broker(own_redis.url, chan)
    sent: list[str] = []
    async with running(a, b) as (inbox_a, inbox_b):
        for i in range(20):
            sent.append(f"before{i}")
            await a.publish(Broadcast("/", (sent[-1],)))
        await inbox_b.wait_for(20)

        stopped = anyio.Event()

        async def traffic() -> None:
            i = 0
            while not stopped.is_set():
                sent.append(f"during{i}")
                started = anyio.current_time()
                await a.publish(Broadcast("/", (sent[-1],)))  # must not raise
                assert anyio.current_time() - started < a.publish_timeout + 0.5
                i += 1
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as tg:
            tg.start_soon(traffic)
            await anyio.sleep(0.1)
            await anyio.to_thread.run_sync(own_redis.stop)
            await connected(a, b, state=False)
            await anyio.sleep(0.3)  # publishes while Redis is down
            await anyio.to_thread.run_sync(own_redis.start)
            await connected(a, b)
            stopped.set()

        for i in range(20):
            sent.append(f"after{i}")
            await a.publish(Broadcast("/", (sent[-1],)))
        await inbox_b.until(lambda: "after19" in inbox_b.texts())
        await anyio.sleep(QUIET)

        texts = inbox_b.texts()
        assert len(texts) == len(set(texts)), "a broadcast was delivered twice"
        assert set(texts) <= set(sent)
        assert texts[:20] == [f"before{i}" for i in range(20)]
        assert texts[-20:] == [f"after{i}" for i in range(20)]
        assert texts == [t for t in sent if t in set(texts)]  # in publishing order
        assert not inbox_a.received
    assert "Redis unreachable" in caplog.text
    assert "cross-process delivery resumes" in caplog.text
    assert "did not reach other processes" in caplog.text


@pytest.mark.anyio
async def test_a_hung_redis_costs_one_publish_timeout(own_redis: RedisServer) -> None:
    """Redis frozen (SIGSTOP): the first publish waits ``publish_timeout`` and makes the
    broker reconnect; the next ones return at once; delivery resumes once it thaws."""
    chan = channel()
    a = make_broker(own_redis.url, chan, publish_timeout=0.5, keepalive=30.0)
    b = make_broker(own_redis.url, chan, keepalive=30.0)
    async with running(a, b) as (_, inbox_b):
        own_redis.pause()
        try:
            started = anyio.current_time()
            await a.publish(Broadcast("/", ("frozen 1",)))
            assert 0.4 < anyio.current_time() - started < 2.0
            assert not a.connected
            started = anyio.current_time()
            for i in range(10):
                await a.publish(Broadcast("/", (f"frozen {i + 2}",)))
            assert anyio.current_time() - started < 0.5
        finally:
            own_redis.resume()
        await connected(a)
        await a.publish(Broadcast("/", ("thawed",)))
        await inbox_b.wait_for(1)
        await anyio.sleep(QUIET)
        # b's subscription never broke (its keepalive is long): it gets what Redis got
        texts = inbox_b.texts()
        assert texts[-1] == "thawed" and len(texts) == len(set(texts))
        assert set(texts) <= {"frozen 1", "thawed"}


# -- forwarding across an outage ------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("outage", ["stopped", "hung"])
async def test_a_forwarded_get_answered_during_an_outage_reaches_its_client_after(
    own_redis: RedisServer, outage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A polling client's GET waits at the process that does not hold its
    session (forwarded to the owner) when Redis stops (or hangs: SIGSTOP). A
    packet for the client is queued meanwhile: the owner answers the GET with
    it, but the answer cannot cross. Once Redis is back the answer must still
    reach the client (it used to be lost, and the client stayed connected but
    deaf until the forwarding timed out); then the client goes on polling as
    before."""
    chan = channel()
    owner, other = (gosf.SocketIOServer(broker=make_broker(own_redis.url, chan)) for _ in range(2))
    brokers = [cast(RedisBroker, server.broker) for server in (owner, other)]
    async with (
        serve_app(owner.asgi) as owner_host,
        serve_app(other.asgi) as other_host,
        http_client() as http,
    ):
        client = Hopping(http, [other_host])
        with anyio.fail_after(WAIT):
            await connected(*brokers)
            await client.handshake(owner_host)
            assert (await client.post("40")).status_code == 200
            (opened,) = await client.get()
            assert opened.startswith("40")
        session = owner.engine.sessions[client.sid]
        polls = watch_attribute(monkeypatch, Session, "get_pending")

        got: list[str] = []

        async def long_poll() -> None:
            got.extend(await client.get())

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(long_poll)
                # Forwarded to the owner, where it waits for packets.
                await polls.until(lambda: session.machine.get_pending, WAIT)
                if outage == "stopped":
                    await anyio.to_thread.run_sync(own_redis.stop)
                else:
                    own_redis.pause()
                # Local delivery goes on (a hung Redis costs the broadcast's PUBLISH
                # one publish_timeout): the owner answers the GET; it cannot cross.
                await owner.emit("news", "during the outage")
                await connected(*brokers, state=False)  # (a hung one: by the keepalive)
                if outage == "stopped":
                    await anyio.to_thread.run_sync(own_redis.start)
                else:
                    own_redis.resume()
        assert got == ['42["news","during the outage"]']

        with anyio.fail_after(WAIT):
            await owner.emit("news", "after the outage")
            assert await client.get() == ['42["news","after the outage"]']


# -- queries ------------------------------------------------------------------------------


def counting(count: int) -> Callable[[AnyQuery], AnyAnswer | None]:
    """An ``answer`` callback for a process with ``count`` sockets (and no rooms)."""

    def answer(query: AnyQuery) -> AnyAnswer | None:
        match query:
            case CountQuery():
                return SocketCount(count)
            case RoomsQuery():
                return RoomCounts({})
            case _:
                return CommandResult(False)

    return answer


@asynccontextmanager
async def answering(*brokers: RedisBroker) -> AsyncIterator[None]:
    """Run each broker, the ``i``-th answering that it has ``i + 1`` sockets."""
    async with anyio.create_task_group() as tg:
        for count, broker in enumerate(brokers, 1):
            with anyio.fail_after(WAIT):
                await tg.start(partial(broker.run, lambda _: None, answer=counting(count)))
        await connected(*brokers)
        yield
        tg.cancel_scope.cancel()


@asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    """A plain coredis client: a process that sends whatever bytes a test gives it."""
    client: coredis.Redis[bytes] = coredis.Redis.from_url(url, decode_responses=False)
    async with client:
        yield client


@pytest.mark.anyio
async def test_queries_a_process_cannot_read_are_dropped_and_the_next_answered(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "gosf.broker")
    chan = channel()
    a, b = make_broker(redis_url, chan), make_broker(redis_url, chan)
    async with answering(a, b), raw_client(redis_url) as other:
        for data in [*BAD_QUERIES, UNKNOWN_QUERY, UNKNOWN_QUERY]:
            assert await other.publish(f"{chan}:query", data) == 2
        with anyio.fail_after(WAIT):
            answers = await a.query(CountQuery(), timeout=WAIT)
        assert answers == [SocketCount(1), SocketCount(2)]
        assert await b.query(RoomsQuery(), timeout=WAIT) == [RoomCounts({}), RoomCounts({})]
    for broker in (a, b):
        assert broker.drops.counts == {
            "a query it cannot decode": len(BAD_QUERIES),
            "an unknown query": 2,
        }
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    # once per kind and process, not once per message
    assert sum("dropped a query it cannot decode" in m for m in warnings) == 2, warnings
    assert sum("dropped an unknown query" in m for m in warnings) == 2, warnings


@pytest.mark.anyio
async def test_an_answer_that_does_not_decode_counts_as_its_process_answer(
    redis_url: str,
) -> None:
    """The asker stops waiting once every process has answered, readable or not."""
    chan = channel()
    asker = make_broker(redis_url, chan)

    async def garbled_peer(*, task_status: TaskStatus[None]) -> None:
        """A process that answers two queries with answers that do not decode, then leaves:
        one of the wrong shape, then one that is not even an object."""
        garbled: list[object] = [{"count": "many"}, ["many"]]
        async with (
            raw_client(redis_url) as client,
            client.pubsub(ignore_subscribe_messages=True) as pubsub,
        ):
            await pubsub.subscribe(f"{chan}:query")
            task_status.started()
            async for message in pubsub:
                if message["type"] == "message":
                    _, qid, _ = decode_query_message(cast(bytes, message["data"]))
                    reply = {"v": 1, "o": "garbled", "q": qid, "a": garbled.pop(0)}
                    await client.publish(f"{chan}:reply:{asker.node_id}", orjson.dumps(reply))
                    if not garbled:
                        break

    # (it leaves by itself: cancelled, coredis's pub/sub may fail in its teardown)
    with anyio.fail_after(WAIT):
        async with answering(asker), anyio.create_task_group() as tg:
            await tg.start(garbled_peer)
            # far longer than the test's own bound: waiting it out would fail the test
            for _ in range(2):
                assert await asker.query(CountQuery(), timeout=10 * WAIT) == [SocketCount(1)]
    assert asker.drops.counts == {"an answer it cannot decode": 2}
