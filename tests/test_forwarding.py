"""No sticky sessions: polling requests that land on a process without the session.

Two servers in one process share a MemoryBus (the seam a RedisBroker plugs
into), each served by its own hypercorn on its own port. A polling client
makes its handshake on one and sends its GETs and POSTs to the other (or to
either, in turn): the owner of the session answers them through the broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import orjson
import pytest

import gosf
from gosf._cluster.forward import Forwarder, ForwardingStatistics
from gosf._cluster.relay import WINDOW
from gosf._cluster.wire import decode_forward, encode_forward
from gosf._engineio.server import owner_of
from gosf.brokers import MemoryBus
from gosf.protocol.engineio import Packet, PacketType, decode_payload, encode_payload
from gosf.protocol.session import Session
from tests.harness import RawWebSocket, serve_app, watch_attribute
from tests.proxy import python_socketio_per_request, round_robin

pytestmark = pytest.mark.anyio


def make_server(bus: MemoryBus, **options: Any) -> gosf.SocketIOServer:
    # Most tests here are about the relay: a young session is handed over
    # (tests/test_handover.py) only where a test asks for it.
    options.setdefault("upgrade_handover", 0)
    server = gosf.SocketIOServer(broker=bus.broker(), **options)

    @server.on("echo")
    async def echo(socket: gosf.Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @server.on("later")
    async def later(socket: gosf.Socket, text: str) -> None:
        await anyio.sleep(0.2)
        await socket.emit("news", text)

    return server


def forwarding(server: gosf.SocketIOServer) -> ForwardingStatistics:
    """What went through ``server``'s forwarder so far."""
    forwarder = server.engine.forwarder
    assert isinstance(forwarder, Forwarder)
    return forwarder.statistics()


class Pair:
    def __init__(self, servers: tuple[gosf.SocketIOServer, ...], hosts: tuple[str, ...]) -> None:
        self.servers = servers
        self.hosts = hosts


@asynccontextmanager
async def pair(**options: Any) -> AsyncIterator[Pair]:
    bus = MemoryBus()
    first, second = make_server(bus, **options), make_server(bus, **options)
    async with serve_app(first.asgi) as host1, serve_app(second.asgi) as host2:
        yield Pair((first, second), (host1, host2))


@asynccontextmanager
async def pending_get(client: Hopping, host: str, session: Any) -> AsyncIterator[list[str]]:
    """A GET through ``host`` waiting at the owner (``session``) for the block;
    yields the list its packets go to once it is answered (bounded: 5 s)."""
    got: list[str] = []

    async def long_poll() -> None:
        got.extend(await client.get(host=host))

    with anyio.fail_after(5), pytest.MonkeyPatch.context() as patch:
        polls = watch_attribute(patch, Session, "get_pending")
        async with anyio.create_task_group() as tg:
            tg.start_soon(long_poll)
            await polls.until(lambda: session.machine.get_pending)
            yield got


class Hopping:
    """An Engine.IO polling client whose requests go to the hosts in turn (after the handshake)."""

    def __init__(self, http: httpx.AsyncClient, hosts: list[str], eio: int = 4) -> None:
        self.http = http
        self.hosts = hosts
        self.eio = eio
        self.sid = ""
        self.turn = 0

    def url(self, host: str | None = None) -> str:
        if host is None:
            host = self.hosts[self.turn % len(self.hosts)]
            self.turn += 1
        return f"http://{host}/socket.io/?EIO={self.eio}&transport=polling&sid={self.sid}"

    async def handshake(self, host: str) -> dict[str, Any]:
        response = await self.http.get(f"http://{host}/socket.io/?EIO={self.eio}&transport=polling")
        assert response.status_code == 200, response.text
        (packet,) = decode_payload(response.content, self.eio)
        assert packet.type is PacketType.OPEN and isinstance(packet.data, str)
        info: dict[str, Any] = orjson.loads(packet.data)
        self.sid = info["sid"]
        return info

    async def get(self, host: str | None = None) -> list[str]:
        response = await self.http.get(self.url(host))
        assert response.status_code == 200, response.text
        packets = decode_payload(response.content, self.eio)
        return [f"{p.type.value}{p.data!s}" for p in packets if isinstance(p.data, str)]

    async def post(self, *packets: str, host: str | None = None) -> httpx.Response:
        body, content_type = encode_payload(
            [Packet(PacketType(int(p[0])), p[1:]) for p in packets], self.eio
        )
        return await self.http.post(
            self.url(host), content=body, headers={"content-type": content_type}
        )


@asynccontextmanager
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def test_a_sid_names_its_owner() -> None:
    assert owner_of("5f0c3a9e21b7.abcdefghijklmnopqrst") == "5f0c3a9e21b7"
    assert owner_of("no-dot-here") is None
    assert owner_of(".abc") is None
    assert owner_of("abc.") is None
    assert owner_of("a.b.c") == "a.b"  # the random part never holds a dot


def test_forwarding_messages_round_trip_and_bad_ones_are_refused() -> None:
    head = {"k": "post", "f": "n1", "r": 7, "s": "n2.x", "c": "text/plain"}
    data = encode_forward(head, b"\x00b")
    head, body = decode_forward(data)
    assert head["k"] == "post" and head["r"] == 7 and body == b"\x00b"
    for bad in (b"", b"{}", b'{"v":1,"k":"get","r":1}\n', b'{"v":2,"k":"reply","r":1}\n', b"x\n"):
        with pytest.raises(ValueError):
            decode_forward(bad)


async def test_sids_carry_the_node_id_of_their_process(anyio_backend: str) -> None:
    async with pair() as cluster, http_client() as http:
        client = Hopping(http, list(cluster.hosts))
        await client.handshake(cluster.hosts[0])
        assert owner_of(client.sid) == cluster.servers[0].broker.node_id


async def test_every_request_on_the_other_process(anyio_backend: str) -> None:
    async with pair() as cluster, http_client() as http:
        owner, other = cluster.hosts
        client = Hopping(http, [other])
        await client.handshake(owner)
        assert (await client.post("40")).text == "ok"
        (connect,) = await client.get()
        assert connect.startswith('40{"sid":"')
        await client.post('421["echo","hi",{"n":1}]')
        assert await client.get() == ['431["hi",{"n":1}]']
        # A long poll through the other process waits for what the owner queues later.
        await client.post('42["later","soon"]')
        with anyio.fail_after(5):
            assert await client.get() == ['42["news","soon"]']
        assert cluster.servers[1].engine.sessions == {}
        # Every request but the handshake went through the broker, none relayed.
        owned, asked = forwarding(cluster.servers[0]), forwarding(cluster.servers[1])
        assert asked.requests_forwarded == owned.requests_served == 6
        assert (asked.requests_served, owned.requests_forwarded) == (0, 0)
        assert asked.websockets_relayed == owned.relays_served == 0


async def test_requests_alternating_between_processes(anyio_backend: str) -> None:
    async with pair() as cluster, http_client() as http:
        client = Hopping(http, list(cluster.hosts))
        await client.handshake(cluster.hosts[1])
        await client.post("40")
        await client.get()
        seen: list[str] = []
        with anyio.fail_after(10):
            for n in range(10):
                await client.post(f'42{n}["echo",{n}]')
                seen.extend(await client.get())
        assert seen == [f"43{n}[{n}]" for n in range(10)]


async def test_a_forwarded_get_waits_while_a_post_goes_elsewhere(anyio_backend: str) -> None:
    async with pair() as cluster, http_client() as http:
        owner, other = cluster.hosts
        client = Hopping(http, [other])
        await client.handshake(owner)
        await client.post("40", host=owner)
        await client.get(host=other)
        session = cluster.servers[0].engine.sessions[client.sid]
        async with pending_get(client, other, session) as got:
            await client.post('427["echo","x"]', host=owner)
        assert got == ['437["x"]']


async def test_a_client_leaving_a_forwarded_get_leaves_its_packets_queued(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = watch_attribute(monkeypatch, Session, "get_pending")
    async with pair() as cluster, http_client() as http:
        owner, other = cluster.hosts
        client = Hopping(http, [other])
        await client.handshake(owner)
        await client.post("40")
        await client.get()
        session = cluster.servers[0].engine.sessions[client.sid]
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.get)
                await polls.until(lambda: session.machine.get_pending)
                tg.cancel_scope.cancel()  # httpx drops the connection: the client left
            await polls.until(lambda: not session.machine.get_pending)
            await client.post('421["echo","kept"]', host=owner)
            assert await client.get(host=owner) == ['431["kept"]']


async def test_a_forwarded_request_for_a_gone_process_fails_at_once(anyio_backend: str) -> None:
    bus = MemoryBus()
    survivor = make_server(bus)
    async with serve_app(survivor.asgi) as other, http_client() as http:
        client = Hopping(http, [other])
        async with serve_app(make_server(bus).asgi) as owner:
            await client.handshake(owner)
        with anyio.fail_after(3):
            response = await http.get(client.url())
        assert response.status_code == 400
        assert response.json()["code"] == 1


async def test_bad_input_through_the_other_process_closes_that_session_only(
    anyio_backend: str,
) -> None:
    async with pair(max_payload=2048) as cluster, http_client() as http:
        owner, other = cluster.hosts
        offender, bystander = Hopping(http, [other]), Hopping(http, [other])
        await offender.handshake(owner)
        await bystander.handshake(owner)
        await bystander.post("40")
        await bystander.get()
        response = await offender.post("4" + "x" * 4096)
        assert response.status_code == 413
        assert (await http.get(offender.url(owner))).json()["code"] == 1

        await offender.handshake(owner)
        plain = {"content-type": "text/plain"}
        bad = await http.post(offender.url(), content=b"\x1e\x1e", headers=plain)
        assert bad.status_code == 400
        assert (await http.get(offender.url(owner))).json()["code"] == 1

        await offender.handshake(owner)
        put = await http.put(offender.url())
        assert put.status_code == 400

        await bystander.post('421["echo","fine"]')
        assert await bystander.get() == ['431["fine"]']


async def test_overlapping_forwarded_gets_close_the_session(anyio_backend: str) -> None:
    async with pair() as cluster, http_client() as http:
        owner, other = cluster.hosts
        client = Hopping(http, [other])
        await client.handshake(owner)
        session = cluster.servers[0].engine.sessions[client.sid]
        async with pending_get(client, other, session) as first:
            second = await http.get(client.url(other))
            assert second.status_code == 400
        assert first == ["1"]


async def test_an_upgrade_on_the_other_process_is_relayed_to_the_owner(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    transports = watch_attribute(monkeypatch, Session, "transport")
    async with pair() as cluster, http_client() as http:
        owner, other = cluster.hosts
        session_server = cluster.servers[0]
        client = Hopping(http, [other])
        await client.handshake(owner)
        await client.post("40")
        (connect,) = await client.get()
        assert connect.startswith("40{")
        target = f"/socket.io/?EIO=4&transport=websocket&sid={client.sid}"
        with anyio.fail_after(10):
            async with RawWebSocket.connect(other, target) as ws:
                assert ws.status == 101
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                assert await client.get() == ["6"]  # the pending GET is released
                await ws.send("5")
                session = session_server.engine.sessions[client.sid]
                await transports.until(lambda: session.transport == "websocket")
                edge, owned = forwarding(cluster.servers[1]), forwarding(session_server)
                assert (edge.websockets_relayed, edge.relays_open) == (1, 1)
                assert (owned.relays_served, owned.relays_open) == (1, 1)
                assert (edge.relays_served, owned.websockets_relayed) == (0, 0)
                await ws.send('421["echo","over the relay"]')
                assert await ws.receive() == '431["over the relay"]'
                await ws.send('42["later","pushed"]')
                assert await ws.receive() == '42["news","pushed"]'
                blob = bytes(range(256))
                await ws.send('451-2["echo",{"_placeholder":true,"num":0}]')
                await ws.send(b"\x04" + blob)  # EIO4 websocket: binary frames as they are
                assert await ws.receive() == '461-2[{"_placeholder":true,"num":0}]'
                assert await ws.receive() == b"\x04" + blob
            # The client closed its websocket: the owner's session ends.
            await session.wait_finished()
            assert client.sid not in session_server.engine.sessions
        assert cluster.servers[1].engine.sessions == {}


async def test_a_relayed_session_closed_by_the_owner_closes_the_client_s_websocket(
    anyio_backend: str,
) -> None:
    async with pair() as cluster, http_client() as http:
        owner, other = cluster.hosts
        client = Hopping(http, [other])
        await client.handshake(owner)
        with anyio.fail_after(10):
            async with upgrade_through(other, client.sid) as ws:
                cluster.servers[0].engine.sessions[client.sid].close(
                    gosf.CloseReason.SERVER_DISCONNECT
                )
                assert await ws.receive() == "1"  # CLOSE, then the websocket closes
                closed = await ws.receive()
                assert getattr(closed, "code", None) == 1000


async def test_relayed_upgrades_that_cannot_be_served_are_refused(anyio_backend: str) -> None:
    bus = MemoryBus()
    survivor = make_server(bus)
    async with serve_app(survivor.asgi) as other, http_client() as http:
        client = Hopping(http, [other])
        async with serve_app(make_server(bus).asgi) as owner:
            await client.handshake(owner)
            unknown = client.sid.rpartition(".")[0] + ".nosuchsession"
            target = f"/socket.io/?EIO=4&transport=websocket&sid={unknown}"
            async with RawWebSocket.connect(other, target) as ws:
                assert ws.status == 400
                assert orjson.loads(ws.body)["code"] == 1
        target = f"/socket.io/?EIO=4&transport=websocket&sid={client.sid}"
        with anyio.fail_after(3):
            async with RawWebSocket.connect(other, target) as ws:
                assert ws.status == 400
                assert b"not reachable" in ws.body


async def test_raw_requests_through_a_round_robin_balancer(anyio_backend: str) -> None:
    """A new connection per request: the balancer sends each to the next process."""
    async with pair() as cluster, round_robin(list(cluster.hosts)) as balancer:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=10, limits=limits) as http:
            client = Hopping(http, [balancer.host])
            await client.handshake(balancer.host)
            await client.post("40")
            await client.get()
            with anyio.fail_after(10):
                for n in range(10):
                    await client.post(f'42{n}["echo",{n}]')
                    assert await client.get() == [f"43{n}[{n}]"]
    assert all(count >= 10 for count in balancer.connections.values()), balancer.connections


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # python-socketio's client is asyncio
@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
async def test_python_socketio_behind_a_round_robin_balancer(
    anyio_backend: str, transports: list[str]
) -> None:
    """python-socketio's client, a connection per request, default transports too."""
    async with (
        pair() as cluster,
        round_robin(list(cluster.hosts)) as balancer,
        python_socketio_per_request() as client,
    ):
        news: list[Any] = []
        heard = anyio.Event()

        def on_news(data: Any) -> None:
            news.append(data)
            heard.set()

        client.on("news", on_news)
        with anyio.fail_after(20):
            await client.connect(f"http://{balancer.host}", transports=transports, wait_timeout=5)
            for n in range(20):
                assert await client.call("echo", n, timeout=5) == n
            await client.emit("later", "broadcast-free")
            await heard.wait()
            assert news == ["broadcast-free"]
            assert client.connected
            # The upgrade may land on either process: it works on both.
            assert client.transport() == transports[-1]
    # Polling only: every other request went through the other process. With the
    # upgrade, the websocket (the second connection) went to the other process.
    least = 5 if transports == ["polling"] else 1
    assert min(balancer.connections.values()) >= least, balancer.connections


@asynccontextmanager
async def upgrade_through(host: str, sid: str) -> AsyncIterator[RawWebSocket]:
    """Open a websocket for ``sid`` on ``host``, finish the upgrade, join ``/``."""
    target = f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
    async with RawWebSocket.connect(host, target) as ws:
        await ws.send("2probe")
        assert await ws.receive() == "3probe"
        await ws.send("5")
        await ws.send("40")
        assert str(await ws.receive()).startswith("40{")
        yield ws


async def test_many_frames_through_a_relay_to_a_busy_owner_all_arrive(anyio_backend: str) -> None:
    """More frames than the relay's window while the owner runs one handler at a time."""
    async with pair(max_concurrent_handlers=1) as cluster, http_client() as http:
        owner, other = cluster.hosts
        client = Hopping(http, [other])
        await client.handshake(owner)
        count = 300
        with anyio.fail_after(20):
            async with upgrade_through(other, client.sid) as ws:
                for n in range(count):
                    await ws.send(f'42{n}["echo",{n}]')
                acks = [await ws.receive() for _ in range(count)]
        assert acks == [f"43{n}[{n}]" for n in range(count)]


async def test_the_owner_ends_a_session_whose_relaying_process_went_away(
    anyio_backend: str,
) -> None:
    bus = MemoryBus()
    owner_server = make_server(bus, ping_interval=0.3, ping_timeout=0.3)
    edge_server = make_server(bus)
    async with (
        serve_app(owner_server.asgi) as owner,
        serve_app(edge_server.asgi) as other,
        http_client() as http,
    ):
        client = Hopping(http, [owner])
        await client.handshake(owner)
        with anyio.fail_after(10):
            async with upgrade_through(other, client.sid) as ws:
                session = owner_server.engine.sessions[client.sid]
                assert session.transport == "websocket"
                # The relaying process drops off the bus without a word (it died,
                # or lost Redis): the owner's next ping cannot reach it.
                bus._inboxes.pop(edge_server.broker.node_id)
                await session.wait_finished()
                assert session.close_reason == "transport error"
                # It comes back: its client's next frame is answered with a close.
                forwarder = edge_server.engine.forwarder
                assert isinstance(forwarder, Forwarder)
                bus._inboxes[edge_server.broker.node_id] = forwarder.inbox
                await ws.send('421["echo","anyone?"]')
                closed = await ws.receive()
                assert getattr(closed, "code", None) == 1011


async def test_an_edge_gives_up_on_an_owner_that_takes_no_frames(anyio_backend: str) -> None:
    """The owner stays subscribed but never takes a frame: the edge's wait is bounded."""
    bus = MemoryBus()
    owner_server = make_server(bus)
    edge_server = make_server(bus, ping_interval=0.3, ping_timeout=0.3)
    async with (
        serve_app(owner_server.asgi) as owner,
        serve_app(edge_server.asgi) as other,
        http_client() as http,
    ):
        client = Hopping(http, [owner])
        await client.handshake(owner)
        with anyio.fail_after(10):
            async with upgrade_through(other, client.sid) as ws:
                bus._inboxes[owner_server.broker.node_id] = lambda data: None  # a black hole
                for n in range(WINDOW + 1):
                    await ws.send(f'42["echo",{n}]')
                closed = await ws.receive()
                assert getattr(closed, "code", None) == 1011
