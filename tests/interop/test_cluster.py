"""Two gosf worker processes and a real redis-server: broadcasts cross processes, once.

Each worker is ``tests/apps/cluster_app.py`` under hypercorn (asyncio or trio
worker; also one of each), in its own process on its own loopback port, with
``GOSF_BROKER`` pointing at a redis-server the tests start themselves
(``tests/redis_fixtures.py``; the tests skip, loudly, where redis-server is not
installed). Clients are gosf's own ``SocketIOClient`` (asyncio and trio),
connected to one worker or the other.

"Exactly once" is checked with a marker: after the broadcasts under test, the
same worker announces a marker and every client waits for it. Redis keeps one
publisher's messages in order and each worker delivers them in order, so once
a client has the marker it has everything that worker broadcast before it.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

import gosf
from tests import redis_fixtures
from tests.cluster_workers import KIND_IDS, KINDS, Cluster, start_cluster, stop_cluster
from tests.conftest import Served, start_server, stop_server
from tests.node import JS, run_scenario
from tests.proxy import python_socketio_per_request, round_robin
from tests.redis_fixtures import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

redis_server = redis_fixtures.redis_server

APP = "tests.apps.cluster_app:app"
TIMEOUT = 10.0
"""Bound on every single wait (a call, an expected event)."""
RECOVERY = 30.0
"""Bound on cross-process delivery resuming once Redis is back (the backoff is capped at 10 s)."""
EVENTS = ("said", "announced", "told")
ROOT = Path(__file__).resolve().parents[2]
"""The repository (where ``python -m tests.apps...`` runs)."""

_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@pytest.fixture(scope="module", params=KINDS, ids=KIND_IDS)
def cluster(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Cluster]:
    running = start_cluster(request.param, redis_server.url)
    try:
        yield running
        assert running.alive(), "a worker died during the tests"
    finally:
        stop_cluster(running)


class Peer:
    """A SocketIOClient connected to one worker, recording the broadcast events it gets.

    ``client``: another client with the same ``on``/``call`` (python-socketio's).
    """

    def __init__(self, name: str, client: Any = None) -> None:
        self.name = name
        self.client = client if client is not None else gosf.SocketIOClient()
        self.events: dict[str, list[str]] = defaultdict(list)
        self._changed = anyio.Event()
        for event in EVENTS:
            self.client.on(event, self._recorder(event))  # sync: run in order, in the reader

    def _recorder(self, event: str) -> Any:
        def record(message: dict[str, Any]) -> None:
            self.events[event].append(str(message.get("text", "")))
            self._changed.set()
            self._changed = anyio.Event()

        return record

    async def call(self, endpoint: str, text: str = "", **body: Any) -> Any:
        payload: dict[str, Any] = {"text": text}
        if body:
            payload["body"] = body
        return await self.client.call(endpoint, payload, timeout=TIMEOUT)

    async def wait_for(self, event: str, text: str) -> None:
        """Wait until ``event`` has brought ``text`` (the caller bounds the wait)."""
        while text not in self.events[event]:
            await self._changed.wait()

    async def wait_change(self) -> None:
        """Wait for the next event (the caller bounds it)."""
        await self._changed.wait()

    async def marker(self, *peers: Peer) -> None:
        """Announce a marker from this peer's worker and wait until every peer has it."""
        text = unique("marker")
        await self.call("announce", text)
        with anyio.fail_after(TIMEOUT):
            for peer in peers:
                await peer.wait_for("announced", text)

    def got(self, event: str) -> list[str]:
        """The events received, markers left out."""
        return [text for text in self.events[event] if not text.startswith("marker-")]


@asynccontextmanager
async def peers(url: str, *names: str) -> AsyncIterator[list[Peer]]:
    async with AsyncExitStack() as stack:
        made = []
        for name in names:
            peer = Peer(name)
            await stack.enter_async_context(peer.client.connect(url, connect_timeout=TIMEOUT))
            made.append(peer)
        yield made


async def pid(peer: Peer) -> str:
    answer = await peer.call("whoami")
    return str(answer["text"])


async def test_room_and_global_broadcasts_reach_both_workers_once(cluster: Cluster) -> None:
    room = unique("room")
    async with (
        peers(cluster.first.url, "a1", "a2", "a-out") as (a1, a2, a_out),
        peers(cluster.second.url, "b1", "b-out") as (b1, b_out),
    ):
        everyone = (a1, a2, a_out, b1, b_out)
        assert await pid(a1) != await pid(b1), "the two workers are one process"
        for peer in (a1, a2, b1):
            await peer.call("join", room)

        await a1.call("tell-room", "from worker 1", room=room)
        await b1.call("tell-room", "from worker 2", room=room)
        await b_out.call("announce", "to all from 2")
        await a_out.call("announce", "to all from 1")
        await a1.marker(*everyone)
        await b1.marker(*everyone)

        for peer in (a1, a2, b1):
            assert sorted(peer.got("told")) == ["from worker 1", "from worker 2"], peer.name
        for peer in (a_out, b_out):
            assert peer.got("told") == [], peer.name
        for peer in everyone:
            assert sorted(peer.got("announced")) == ["to all from 1", "to all from 2"], peer.name
            assert peer.got("said") == [], peer.name
    assert cluster.alive()


async def test_client_broadcasts_skip_the_sender(cluster: Cluster) -> None:
    room = unique("room")
    async with (
        peers(cluster.first.url, "a1", "a2", "a-out") as (a1, a2, a_out),
        peers(cluster.second.url, "b1", "b-out") as (b1, b_out),
    ):
        everyone = (a1, a2, a_out, b1, b_out)
        for peer in (a1, a2, b1):
            await peer.call("join", room)

        await a1.call("say", "a1 to the room", room=room)
        await b1.call("say", "b1 to the room", room=room)
        await b1.call("say", "b1 to everyone", room="")
        await a1.marker(*everyone)
        await b1.marker(*everyone)

        assert sorted(a1.got("said")) == ["b1 to everyone", "b1 to the room"]
        assert sorted(a2.got("said")) == ["a1 to the room", "b1 to everyone", "b1 to the room"]
        assert sorted(b1.got("said")) == ["a1 to the room"]
        assert a_out.got("said") == ["b1 to everyone"]
        assert b_out.got("said") == ["b1 to everyone"]
    assert cluster.alive()


async def test_skip_rooms_leave_their_members_out_on_both_workers(cluster: Cluster) -> None:
    room, muted = unique("room"), unique("muted")
    async with (
        peers(cluster.first.url, "a1", "a-muted") as (a1, a_muted),
        peers(cluster.second.url, "b1", "b-muted", "b-out") as (b1, b_muted, b_out),
    ):
        everyone = (a1, a_muted, b1, b_muted, b_out)
        for peer in everyone[:4]:
            await peer.call("join", room)
        for peer in (a_muted, b_muted):
            await peer.call("join", muted)

        # Node's to(room).except(muted), from each worker; and everyone but muted.
        await a1.call("tell-room", "from 1", room=room, skip=[muted])
        await b1.call("tell-room", "from 2", room=room, skip=[muted])
        await b_out.call("tell-room", "all but muted", room="", skip=[muted])
        await a1.marker(*everyone)
        await b1.marker(*everyone)

        for peer in (a1, b1):
            assert sorted(peer.got("told")) == ["all but muted", "from 1", "from 2"], peer.name
        for peer in (a_muted, b_muted):
            assert peer.got("told") == [], peer.name
        assert b_out.got("told") == ["all but muted"]
    assert cluster.alive()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the test only runs node
async def test_npm_clients_skip_rooms_on_both_workers(cluster: Cluster) -> None:
    """Node's ``to(room).except(muted)``, from each worker, seen by npm socket.io-client v4."""
    room, muted = unique("room"), unique("muted")
    scenario = partial(
        run_scenario, "cluster_except.cjs", cluster.first.url, cluster.second.url, room, muted
    )
    seen = await anyio.to_thread.run_sync(scenario)
    assert seen["a"] == seen["b"] == ["end 1", "end 2", "from 1", "from 2"]
    assert seen["aMuted"] == seen["bMuted"] == ["end 1", "end 2"]
    assert cluster.alive()


@pytest.mark.parametrize(
    ("anyio_backend", "kind"),
    [("asyncio", "hypercorn-asyncio"), ("trio", "hypercorn-trio")],
    ids=["asyncio", "trio"],
)
async def test_redis_stops_and_comes_back_mid_traffic(anyio_backend: str, kind: str) -> None:
    """Stop Redis while a client on worker 1 keeps broadcasting to a room that has
    members on both workers, then start it again:

    * no worker crashes, no request fails;
    * worker 1's own clients get every broadcast, through the outage;
    * worker 2's client gets the broadcasts from before the outage, then again
      once the brokers have resubscribed; both ways;
    * nobody gets a broadcast twice, and each gets them in order.
    """
    with redis_fixtures.running_redis() as redis:
        cluster = start_cluster((kind, kind), redis.url)
        try:
            await _fault_scenario(cluster, redis)
        finally:
            stop_cluster(cluster)


async def _fault_scenario(cluster: Cluster, redis: RedisServer) -> None:
    room = unique("room")
    async with (
        peers(cluster.first.url, "a1", "a2") as (a1, a2),
        peers(cluster.second.url, "b1") as (b1,),
    ):
        for peer in (a1, a2, b1):
            await peer.call("join", room)
        sent: list[str] = []

        async def send(text: str) -> None:
            sent.append(text)
            await a1.call("tell-room", text, room=room)

        for i in range(10):
            await send(f"before-{i}")
        with anyio.fail_after(TIMEOUT):
            await b1.wait_for("told", "before-9")

        stop_traffic = anyio.Event()
        outage: dict[str, int] = {}

        async def traffic() -> None:
            for i in itertools.count():
                if stop_traffic.is_set():
                    return
                await send(f"during-{i}")
                await anyio.sleep(0.02)  # paces the traffic (it waits for nothing)

        async with anyio.create_task_group() as tg:
            tg.start_soon(traffic)
            with anyio.fail_after(TIMEOUT):  # the traffic crosses to worker 2 before the outage
                await b1.wait_for("told", "during-2")
            outage["start"] = len(sent)
            await anyio.to_thread.run_sync(redis.stop)
            await anyio.sleep(1.0)  # traffic goes on while Redis is down
            assert cluster.alive()
            outage["end"] = len(sent)
            await anyio.to_thread.run_sync(redis.start)
            # Cross-process delivery resumes: wait for b1 to get something sent from now on.
            resumed = set(sent)
            with anyio.fail_after(RECOVERY):
                while not set(b1.got("told")) - resumed:
                    await b1.wait_change()
            stop_traffic.set()

        for i in range(10):
            await send(f"after-{i}")
        # And the other way: worker 2 to worker 1 (its broker resubscribed too).
        await b1.call("tell-room", "back from worker 2", room=room)
        await a1.marker(a1, a2, b1)
        with anyio.fail_after(RECOVERY):
            await a2.wait_for("told", "back from worker 2")
            await a1.wait_for("told", "back from worker 2")

        assert cluster.alive(), "a worker died"
        mine = [t for t in a2.got("told") if t != "back from worker 2"]
        assert mine == sent, "worker 1's own clients missed or repeated a broadcast"
        assert [t for t in a1.got("told") if t != "back from worker 2"] == sent
        theirs = [t for t in b1.got("told") if t != "back from worker 2"]
        assert len(theirs) == len(set(theirs)), "a broadcast was delivered twice"
        assert theirs == [t for t in sent if t in set(theirs)], "out of order, or unknown"
        assert theirs[:10] == [f"before-{i}" for i in range(10)]
        assert theirs[-10:] == [f"after-{i}" for i in range(10)]
        lost = set(sent[outage["start"] : outage["end"]]) - set(theirs)
        assert lost, "Redis was stopped for a second, yet nothing was lost: was it stopped?"


class PollingPeer(Peer):
    """A python-socketio client on long-polling only, a new connection per request
    (so a round-robin balancer spreads its requests over both workers), recording
    the broadcast events it gets. asyncio only."""

    def __init__(self, name: str, client: Any) -> None:
        super().__init__(name, client)


@asynccontextmanager
async def polling_peers(url: str, count: int) -> AsyncIterator[list[PollingPeer]]:
    async with AsyncExitStack() as stack:
        made = []
        for i in range(count):
            client = await stack.enter_async_context(python_socketio_per_request())
            peer = PollingPeer(f"polling-{i}", client)
            with anyio.fail_after(TIMEOUT):
                await client.connect(url, transports=["polling"], wait_timeout=5)
            made.append(peer)
        yield made


async def broker_state(peer: Peer, *, connected: bool) -> None:
    """Wait until the broker of ``peer``'s worker is (or is no longer) subscribed to Redis."""
    answer = await peer.client.call(
        "broker-state",
        {"text": "", "body": {"connected": connected, "timeout": RECOVERY}},
        timeout=RECOVERY + TIMEOUT,
    )
    assert answer["body"]["connected"] is connected, answer


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # python-socketio's client is asyncio
@pytest.mark.parametrize("kind", ["hypercorn-asyncio", "hypercorn-trio"])
async def test_polling_clients_behind_a_balancer_recover_from_a_redis_restart(
    kind: str, anyio_backend: str
) -> None:
    """Long-polling clients spread over two workers by a round-robin balancer
    (no sticky sessions: half their requests are forwarded to the session's
    owner through Redis). Redis stops while both workers broadcast to their
    own clients, and starts again on the same port. Every client still
    connected then gets a fresh round of room and global broadcasts, from
    both workers, exactly once, and its acks.

    It used to be that a client whose GET had been forwarded when Redis
    stopped stayed connected but deaf: the owner's answer could not cross and
    was lost, and the other worker held the GET open until it timed out.
    """
    room = unique("room")
    with redis_fixtures.running_redis() as redis:
        cluster = start_cluster((kind, kind), redis.url)
        try:
            async with (
                round_robin([host_of(cluster.first), host_of(cluster.second)]) as balancer,
                peers(cluster.first.url, "ws-1") as (ws1,),
                peers(cluster.second.url, "ws-2") as (ws2,),
                polling_peers(f"http://{balancer.host}", 8) as clients,
            ):
                for client in clients:
                    await client.call("join", room)
                await anyio.to_thread.run_sync(redis.stop)
                for ws in (ws1, ws2):
                    await broker_state(ws, connected=False)
                    await ws.call("announce", "during the outage")  # local delivery only
                await anyio.to_thread.run_sync(redis.start)
                for ws in (ws1, ws2):
                    await broker_state(ws, connected=True)

                survivors = [client for client in clients if client.client.connected]
                # (a request that reached the other worker while its broker was down
                # could not be forwarded: that client was told to reconnect)
                assert survivors, "no client survived the outage"
                for client in survivors:
                    await client.call("tell-room", f"room from {client.name}", room=room)
                    await client.call("announce", f"all from {client.name}")
                # Each worker's marker comes after everything that worker broadcast.
                markers = [unique("marker"), unique("marker")]
                await ws1.call("announce", markers[0])
                await ws2.call("announce", markers[1])
                everyone: list[Peer] = [*survivors, ws1, ws2]
                with anyio.fail_after(TIMEOUT):
                    for peer in everyone:
                        for marker in markers:
                            await peer.wait_for("announced", marker)

                expected_told = sorted(f"room from {client.name}" for client in survivors)
                expected_all = sorted(f"all from {client.name}" for client in survivors)
                for client in survivors:
                    assert client.client.connected, client.name
                    fresh = [t for t in client.events["announced"] if t.startswith("all from")]
                    assert sorted(fresh) == expected_all, client.name
                    assert sorted(client.events["told"]) == expected_told, client.name
                    for marker in markers:
                        assert client.events["announced"].count(marker) == 1, client.name
                for ws in (ws1, ws2):
                    fresh = [t for t in ws.got("announced") if t.startswith("all from")]
                    assert sorted(fresh) == expected_all, ws.name
            assert min(balancer.connections.values()) > len(clients), balancer.connections
            assert cluster.alive(), "a worker died"
        finally:
            stop_cluster(cluster)


# -- cluster-wide queries -------------------------------------------------------------------


async def test_cluster_queries_see_both_workers(cluster: Cluster) -> None:
    red, blue = unique("q-red"), unique("q-blue")
    async with (
        peers(cluster.first.url, "a1", "a2") as (a1, a2),
        peers(cluster.second.url, "b1") as (b1,),
    ):
        await a1.call("join", red)
        await b1.call("join", red)
        await a2.call("join", blue)
        # The clients of the tests before may take a moment to be gone: each
        # worker waits for its own to leave.
        for peer, mine in ((a1, 2), (b1, 1)):
            answer = await peer.call("local-count", count=mine, timeout=TIMEOUT)
            assert answer["body"]["count"] == mine, (peer.name, answer)
        for peer in (a1, b1):
            answer = await peer.call("rooms")
            rooms = answer["body"]["rooms"]
            assert rooms[red] == 2 and rooms[blue] == 1, rooms
            assert a1.client.sid() not in rooms and b1.client.sid() not in rooms
            count = await peer.call("count")
            assert count["body"]["elapsed"] < 1.0, "a worker did not answer in time"
            assert count["body"]["count"] == 3, count
    assert cluster.alive()


async def test_server_side_events_reach_the_other_worker(cluster: Cluster) -> None:
    async with (
        peers(cluster.first.url, "a") as (a,),
        peers(cluster.second.url, "b") as (b,),
    ):
        first, second = await pid(a), await pid(b)
        assert first != second
        text = unique("hello")
        answer = await a.call("server-side-hello", text)
        assert answer["body"] == {"took": 1}  # the sender does not hear its own event
        with anyio.fail_after(TIMEOUT):
            await a.wait_for("announced", f"heard {text} in {second}")
            await b.wait_for("announced", f"heard {text} in {second}")
        assert f"heard {text} in {first}" not in a.events["announced"]

        text = unique("ping")
        answer = await b.call("server-side-ping", text)
        assert answer["body"] == {"answers": [[int(first), text]], "missing": 0}
    assert cluster.alive()


async def test_an_emitter_script_reaches_clients_of_both_workers(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    """npm clients on both workers; a script with gosf.BlockingEmitter (no server)
    emits to a room, then to everyone: each client gets what is meant for it, once."""
    node = shutil.which("node")
    assert node is not None, "node is required: run ./scripts/test"
    room = unique("emitted")
    clients = [node, str(JS / "emitter_clients.cjs"), cluster.first.url, cluster.second.url, room]
    script = [sys.executable, "-m", "tests.apps.emit_script", redis_server.url, room]
    with anyio.fail_after(40):
        async with await anyio.open_process(clients, stderr=subprocess.STDOUT) as process:
            assert process.stdout is not None
            output = BufferedByteReceiveStream(process.stdout)
            assert await output.receive_until(b"\n", 1 << 16) == b"ready"
            await anyio.run_process(script, cwd=ROOT)
            seen = json.loads(await output.receive_until(b"\n", 1 << 20))["clients"]
            assert await process.wait() == 0
    assert {client["worker"] for client in seen} == {"first", "second"}
    for client in seen:
        assert client["news"] == (["room", "all"] if client["joined"] else ["all"]), client
    assert cluster.alive()


async def test_cluster_commands_reach_the_owning_worker(cluster: Cluster) -> None:
    room = unique("q-room")
    async with (
        peers(cluster.first.url, "a1") as (a1,),
        peers(cluster.second.url, "b1", "b2") as (b1, b2),
    ):
        b1_sid = str((await b1.call("sid"))["text"])
        assert b1_sid == b1.client.sid()
        # a1's worker pulls b1 (on the other worker) into a room: it gets room broadcasts
        assert (await a1.call("pull-into", sid=b1_sid, room=room))["body"]["found"] is True
        assert (await a1.call("rooms"))["body"]["rooms"][room] == 1
        await a1.call("tell-room", "pulled in", room=room)
        with anyio.fail_after(TIMEOUT):
            await b1.wait_for("told", "pulled in")
        # and pushes it out again
        assert (await a1.call("push-out", sid=b1_sid, room=room))["body"]["found"] is True
        assert room not in (await a1.call("rooms"))["body"]["rooms"]
        await a1.call("tell-room", "pushed out", room=room)
        await a1.marker(a1, b1, b2)
        assert b1.got("told") == ["pulled in"]
        # unknown sids: nobody has them
        for endpoint in ("kick", "pull-into", "push-out"):
            answer = await a1.call(endpoint, sid="no-such-sid", room=room)
            assert answer["body"]["found"] is False, endpoint
        # a1's worker disconnects b1 (owned by the other worker); b2 stays
        assert (await a1.call("kick", sid=b1_sid))["body"]["found"] is True
        with anyio.fail_after(TIMEOUT):
            await b1.client.wait_disconnected()
        assert b2.client.connected
        assert (await a1.call("kick", sid=b1_sid))["body"]["found"] is False
    assert cluster.alive()


async def test_broadcast_acks_and_room_actions_span_both_workers(cluster: Cluster) -> None:
    """Issue 16.1 and 16.2: acks by sid from the clients of both workers, the
    sockets of both, socketsJoin then a room broadcast, disconnectSockets."""
    room, into = unique("ack-room"), unique("ack-into")
    async with (
        peers(cluster.first.url, "a1", "a2") as (a1, a2),
        peers(cluster.second.url, "b1") as (b1,),
    ):
        for peer in (a1, a2, b1):
            peer.client.on("poll", partial(lambda name, message: name, peer.name))
        await a1.call("join", room)
        await b1.call("join", room)
        sids = {peer.name: peer.client.sid() for peer in (a1, a2, b1)}
        polled = await a2.call("poll-room", "tea?", room=room, timeout=TIMEOUT)
        assert polled["body"] == {
            "answers": {sids["a1"]: "a1", sids["b1"]: "b1"},
            "timed_out": [],
            "disconnected": [],
        }
        fetched = (await b1.call("fetch", room))["body"]["sockets"]
        assert {s["sid"] for s in fetched} == {sids["a1"], sids["b1"]}
        assert len({s["node"] for s in fetched}) == 2, "both workers answered"
        assert all(room in s["rooms"] for s in fetched)

        joined = await a2.call("join-all", room=room, into=into)
        assert joined["body"]["count"] == 2
        await b1.call("tell-room", "to the joined", room=into)
        with anyio.fail_after(TIMEOUT):
            await a1.wait_for("told", "to the joined")
            await b1.wait_for("told", "to the joined")
        await b1.marker(a1, a2, b1)
        assert a2.got("told") == []

        kicked = await a2.call("kick-room", room=into)
        assert kicked["body"]["count"] == 2
        with anyio.fail_after(TIMEOUT):
            await a1.client.wait_disconnected()
            await b1.client.wait_disconnected()
        assert a2.client.connected
    assert cluster.alive()


@pytest.mark.parametrize(
    ("anyio_backend", "kind"),
    [("asyncio", "hypercorn-asyncio"), ("trio", "hypercorn-trio")],
    ids=["asyncio", "trio"],
)
async def test_cluster_queries_with_redis_down(anyio_backend: str, kind: str) -> None:
    """With Redis stopped a query answers for its own worker only, within its timeout."""
    with redis_fixtures.running_redis() as redis:
        cluster = start_cluster((kind, kind), redis.url)
        try:
            room = unique("q-room")
            async with (
                peers(cluster.first.url, "a1") as (a1,),
                peers(cluster.second.url, "b1") as (b1,),
            ):
                await a1.call("join", room)
                await b1.call("join", room)
                assert (await a1.call("rooms"))["body"]["rooms"][room] == 2
                b1_sid = b1.client.sid()
                await anyio.to_thread.run_sync(redis.stop)

                async def ask() -> None:
                    answer = await a1.call("rooms")
                    assert answer["body"]["rooms"] == {room: 1}, answer
                    assert answer["body"]["elapsed"] < 1.5, answer
                    count = await a1.call("count")
                    assert count["body"]["count"] == 1, count
                    assert count["body"]["elapsed"] < 1.5, count
                    kick = await a1.call("kick", sid=b1_sid)
                    assert kick["body"]["found"] is False

                await ask()  # while the brokers notice
                for peer in (a1, b1):
                    await broker_state(peer, connected=False)
                await ask()  # and once they have
                assert b1.client.connected
                assert cluster.alive()
        finally:
            stop_cluster(cluster)


# -- no sticky sessions ---------------------------------------------------------------------


def host_of(served: Served) -> str:
    return f"127.0.0.1:{served.port}"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the balancer runs beside node
@pytest.mark.parametrize("transports", ["polling", "polling,websocket"])
@pytest.mark.parametrize("version", ["v4", "v2"])
async def test_npm_clients_behind_a_round_robin_balancer(
    cluster: Cluster, version: str, transports: str
) -> None:
    """Stock clients, a new connection per request, spread over both workers in turn."""
    room = unique("room")
    async with round_robin([host_of(cluster.first), host_of(cluster.second)]) as balancer:
        url = f"http://{balancer.host}"
        scenario = partial(run_scenario, "cluster_clients.cjs", version, url, transports, room)
        seen: list[dict[str, Any]] = (await anyio.to_thread.run_sync(scenario))["clients"]
    for client in seen:
        assert client["calls"] == 10, client
        assert len(client["pids"]) == 1, client  # one session, served by its owner
        assert client["told"] == ["hello room"], client  # once, across workers
        assert client["disconnects"] == 0, client
    # Each request came on a connection of its own, and the balancer alternates:
    # every session's requests reached both workers, its owner and the other one
    # (an upgrade that lands on the other worker is relayed to the owner).
    assert min(balancer.connections.values()) >= (10 if transports == "polling" else 2)
    if "websocket" in transports:
        assert all(client["transport"] == "websocket" for client in seen), seen
    assert cluster.alive()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # python-socketio's client is asyncio
@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
async def test_python_socketio_behind_a_round_robin_balancer(
    cluster: Cluster, transports: list[str]
) -> None:
    room = unique("room")
    backends = [host_of(cluster.first), host_of(cluster.second)]
    async with (
        round_robin(backends) as balancer,
        python_socketio_per_request() as client,
        peers(cluster.second.url, "ws-peer") as (peer,),
    ):
        told: list[Any] = []
        got_told = anyio.Event()

        def on_told(message: Any) -> None:
            told.append(message)
            got_told.set()

        client.on("told", on_told)
        with anyio.fail_after(30):
            await client.connect(f"http://{balancer.host}", transports=transports, wait_timeout=5)
            await client.call("join", {"text": room}, timeout=TIMEOUT)
            await peer.call("join", room)
            pids = {
                (await client.call("whoami", {"text": ""}, timeout=TIMEOUT))["text"]
                for _ in range(10)
            }
            assert len(pids) == 1
            await peer.call("tell-room", "to both", room=room)
            await peer.wait_for("told", "to both")
            await got_told.wait()
            await peer.marker(peer)
        assert [message["text"] for message in told] == ["to both"]
        assert client.connected
        assert client.transport() == transports[-1]
    least = 5 if transports == ["polling"] else 1
    assert min(balancer.connections.values()) >= least, balancer.connections
    assert cluster.alive()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # node runs in a thread meanwhile
@pytest.mark.parametrize("kind", ["hypercorn-asyncio", "hypercorn-trio"])
def test_hypercorn_workers_need_no_sticky_sessions(
    redis_server: RedisServer, kind: str, anyio_backend: str
) -> None:
    """``hypercorn app:asgi --workers 2``: the kernel hands each connection to either worker."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOSF_BROKER", redis_server.url)
        served = start_server(kind, APP, cli=True, cli_args=("--workers", "2"))
    try:
        for transports in ("polling", "polling,websocket"):
            outcome = run_scenario(
                "cluster_clients.cjs", "v4", served.url, transports, unique("room")
            )
            for client in outcome["clients"]:
                assert client["calls"] == 10, client
                assert len(client["pids"]) == 1, client
                assert client["told"] == ["hello room"], client
                assert client["disconnects"] == 0, client
        assert served.alive()
    finally:
        stop_server(served.process)


async def forwarding(url: str) -> dict[str, int]:
    """The forwarding statistics of the worker at ``url`` (asked directly)."""
    async with peers(url, "stats") as (peer,):
        answer = await peer.call("forwarding")
    return dict(answer["body"])


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the balancer runs beside node
async def test_npm_clients_upgrading_on_the_other_worker_move_there(cluster: Cluster) -> None:
    """socket.io-client v4, default transports: every session is made on the
    first worker, every websocket reaches the second; each session moves to
    the second (upgrade_handover) and is served there, not relayed."""
    room = unique("room")
    first, second = cluster.first, cluster.second
    before = await forwarding(first.url), await forwarding(second.url)
    async with round_robin([host_of(first)], websockets_to=host_of(second)) as balancer:
        url = f"http://{balancer.host}"
        scenario = partial(
            run_scenario, "cluster_clients.cjs", "v4", url, "polling,websocket", room
        )
        seen: list[dict[str, Any]] = (await anyio.to_thread.run_sync(scenario))["clients"]
    after = await forwarding(first.url), await forwarding(second.url)
    moved = len(seen)
    async with peers(second.url, "second") as (peer,):
        second_pid = await pid(peer)
    for client in seen:
        assert client["transport"] == "websocket", client
        assert client["pids"] == [second_pid], client  # served by the second worker
        assert client["calls"] == 10 and client["told"] == ["hello room"], client
        assert client["disconnects"] == 0, client

    def grew(side: int, key: str) -> int:
        return after[side][key] - before[side][key]

    assert grew(0, "sessions_handed_over") == moved
    assert grew(1, "sessions_adopted") == grew(1, "websockets_relayed") == moved
    assert grew(0, "relays_served") == moved  # for the probe only
    assert after[0]["relays_open"] == after[1]["relays_open"] == 0
    assert cluster.alive()
