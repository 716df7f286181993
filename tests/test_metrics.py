"""Prometheus metrics (gosf.PrometheusMetrics, an App's ``metrics_endpoint``): a known
workload, then a scrape: the counts match it, the gauges are back to zero once the
clients left, label values stay bounded under a flood of unknown event names, and an
upgrade, a broker's publishes and a forwarded request are counted. Both backends;
in memory, and over loopback for the polling → websocket upgrade."""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import gosf
import gosf.testing
from gosf._application.pages import root_page
from gosf.brokers import Broadcast, LocalBroker
from gosf.protocol.session import Session
from gosf.protocol.socketio import Packet, PacketType
from gosf.testing import asgi_connector
from gosf.types import ASGIApp
from tests.harness import RawWebSocket, sessions_end, watch_attribute
from tests.test_engineio_server import Polling, echo_works, running, upgraded
from tests.test_forwarding import Hopping, http_client, pair

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(asgi: ASGIApp, path: str = "/metrics") -> Samples:
    """GET ``path`` of ``asgi`` in memory: every sample by name and labels."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
    }
    with anyio.fail_after(5):
        await asgi(scope, receive, send)
    assert sent[0]["status"] == 200, sent
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"].startswith(b"text/plain")
    text = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def labels_of(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(key)[label] for sample, key in samples if sample == name and label in dict(key)}


def echo_app(**config: Any) -> gosf.App:
    app = gosf.App(metrics_endpoint="metrics", **config)

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(request.message.text)

    @app.listen("boom")
    async def boom(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        raise RuntimeError("boom")

    return app


async def test_an_apps_workload_then_a_scrape(anyio_backend: str) -> None:
    app = echo_app()
    async with gosf.testing.serve(app) as server:
        async with server.client() as one, server.client() as two, server.client() as three:
            for client in (one, two, three):
                for n in range(4):
                    await client.request("echo", {"text": f"hi {n}"})
            failure = await one.request("boom", {})
            assert failure is not None and not failure.success
            samples = await scrape(app)
            connected = value(
                samples, "gosf_connected_sockets", namespace="/", transport="websocket"
            )
            assert connected == 3
            assert value(samples, "gosf_engineio_sessions", transport="websocket") == 3
        await sessions_end(app.server.engine)
        after = await scrape(app)
    assert value(after, "gosf_connected_sockets", namespace="/", transport="websocket") == 0
    assert value(after, "gosf_connected_sockets", namespace="/", transport="polling") == 0
    assert value(after, "gosf_engineio_sessions", transport="websocket") == 0
    assert value(after, "gosf_connects_total", namespace="/") == 3
    assert (
        value(after, "gosf_disconnects_total", namespace="/", reason="client namespace disconnect")
        == 3
    )
    assert value(after, "gosf_events_received_total", namespace="/", event="echo") == 12
    assert value(after, "gosf_events_received_total", namespace="/", event="boom") == 1
    # A response is an event and an ack: 12 echo events out, and the failure's.
    assert value(after, "gosf_events_sent_total", namespace="/", event="echo") == 12
    assert value(after, "gosf_events_sent_total", namespace="/", event="boom") == 1
    duration = "gosf_handler_duration_seconds_count"
    assert value(after, duration, namespace="/", event="echo") == 12
    assert (
        value(after, "gosf_handler_duration_seconds_bucket", namespace="/", event="echo", le="+Inf")
        == 12
    )
    assert value(after, "gosf_handler_failures_total", namespace="/", event="boom") == 0  # answered
    assert value(after, "gosf_received_bytes_total", namespace="/") > 0
    assert value(after, "gosf_sent_bytes_total", namespace="/") > value(
        after, "gosf_received_bytes_total", namespace="/"
    )
    assert value(after, "gosf_engineio_sessions_opened_total", transport="websocket") == 3
    assert value(after, "gosf_engineio_sessions_closed_total", reason="transport close") == 3
    assert value(after, "gosf_outbound_buffered_packets") == 0


async def test_unknown_event_names_do_not_make_labels(anyio_backend: str) -> None:
    app = echo_app()
    flood = 300
    async with gosf.testing.serve(app) as server, server.client() as client:
        for n in range(flood):
            await client.send(f"made-up-{n}", {"text": "x"})
        await client.request("echo", {"text": "last"})  # in order: the flood is counted
        samples = await scrape(app)
    for name in (
        "gosf_events_received_total",
        "gosf_events_sent_total",
        "gosf_handler_duration_seconds_count",
    ):
        assert labels_of(samples, name, "event") <= {"echo", "boom", "other"}, name
    assert value(samples, "gosf_events_received_total", namespace="/", event="other") == flood
    assert (
        value(samples, "gosf_handler_duration_seconds_count", namespace="/", event="other") == flood
    )


async def test_a_socketio_servers_metrics_mounted_beside_it(anyio_backend: str) -> None:
    metrics = gosf.PrometheusMetrics()
    server = gosf.SocketIOServer(other_app=metrics.app("/metrics"))
    metrics.attach(server)

    @server.on("echo")
    async def echo(socket: gosf.Socket, *args: Any) -> Any:
        return args

    @server.on("ask")
    async def ask(socket: gosf.Socket) -> Any:
        return await socket.call("question", timeout=5)

    sio = gosf.SocketIOClient()
    sio.on("question", lambda: "answer")
    async with server:
        async with sio.connect("http://testserver", connector=asgi_connector(server)):
            for _ in range(5):
                assert await sio.call("echo", "hi", timeout=5) == "hi"
            assert await sio.call("ask", timeout=5) == "answer"
            for n in range(20):
                await sio.emit(f"nobody-handles-{n}")
            await sio.call("echo", "flushed", timeout=5)
        await sessions_end(server.engine)
        samples = await scrape(server.asgi)
    assert value(samples, "gosf_events_received_total", namespace="/", event="echo") == 6
    assert value(samples, "gosf_events_received_total", namespace="/", event="other") == 20
    assert value(samples, "gosf_events_sent_total", namespace="/", event="question") == 1
    assert value(samples, "gosf_ack_latency_seconds_count", namespace="/", event="question") == 1
    assert value(samples, "gosf_connected_sockets", namespace="/", transport="websocket") == 0


async def test_upgrades_over_loopback(anyio_backend: str) -> None:
    metrics = gosf.PrometheusMetrics()
    async with running() as (server, host, http):
        metrics.attach(server)
        client = Polling(http)
        await client.connect()
        samples = await scrape(metrics.app())
        assert value(samples, "gosf_connected_sockets", namespace="/", transport="polling") == 1
        with anyio.fail_after(10):
            async with upgraded(host, client) as ws:
                await echo_works(ws)
                samples = await scrape(metrics.app())
                connected = value(
                    samples, "gosf_connected_sockets", namespace="/", transport="websocket"
                )
                assert connected == 1
                assert (
                    value(samples, "gosf_connected_sockets", namespace="/", transport="polling")
                    == 0
                )
        await sessions_end(server.engine)
        after = await scrape(metrics.app())
    assert value(after, "gosf_engineio_sessions_opened_total", transport="polling") == 1
    assert value(after, "gosf_engineio_upgrades_total") == 1
    assert value(after, "gosf_connected_sockets", namespace="/", transport="websocket") == 0
    assert value(after, "gosf_engineio_sessions", transport="websocket") == 0


class FailingBroker(LocalBroker):
    """Publishes every other broadcast, raises at the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def publish(self, broadcast: Broadcast) -> None:
        self.calls += 1
        if self.calls % 2 == 0:
            raise ConnectionError("the broker is away")


async def test_broker_publishes_and_their_failures(anyio_backend: str) -> None:
    metrics = gosf.PrometheusMetrics()
    server = gosf.SocketIOServer(broker=FailingBroker())
    metrics.attach(server)
    async with server:
        for _ in range(4):
            try:
                await server.emit("news", "hello")
            except ConnectionError:
                pass
        samples = await scrape(metrics.app())
    assert value(samples, "gosf_broker_publish_duration_seconds_count", namespace="/") == 4
    assert value(samples, "gosf_broker_publish_failures_total", namespace="/") == 2
    assert value(samples, "gosf_broadcasts_total", namespace="/") == 4


async def test_configure_keeps_the_observers_registered_before(anyio_backend: str) -> None:
    app = echo_app()
    heard: list[str] = []

    class Connects(gosf.Observer):
        def socket_connected(self, socket: gosf.Socket) -> None:
            heard.append(socket.sid)

    stop = app.server.observe(Connects())
    app.configure(metrics_endpoint="metrics", ping_interval=5)
    async with gosf.testing.serve(app) as server:
        async with server.client() as client:
            assert heard == [client.sid]
        stop()  # removes it from the server configure made
        async with server.client():
            pass
        samples = await scrape(app)
    assert heard == [heard[0]]
    assert value(samples, "gosf_connects_total", namespace="/") == 2  # counted once each


async def test_metrics_over_http_with_other_app(anyio_backend: str) -> None:
    async def other(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = gosf.App(metrics_endpoint="metrics", other_app=other)
    async with gosf.testing.serve(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            scraped = await http.get("/metrics")
            assert scraped.status_code == 200
            assert "gosf_connected_sockets" in scraped.text
            assert (await http.head("/metrics")).content == b""
            assert (await http.post("/metrics")).status_code == 405
            assert (await http.get("/elsewhere")).status_code == 204


def test_no_endpoint_no_metrics() -> None:
    assert gosf.App().metrics is None


async def test_forwarded_requests_and_relayed_websockets(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    transports = watch_attribute(monkeypatch, Session, "transport")
    async with pair() as cluster, http_client() as http:
        owner, other = cluster.hosts
        at_owner, at_other = gosf.PrometheusMetrics(), gosf.PrometheusMetrics()
        at_owner.attach(cluster.servers[0])
        at_other.attach(cluster.servers[1])
        client = Hopping(http, [other])
        await client.handshake(owner)
        await client.post("40")  # forwarded: a POST
        (connect,) = await client.get()  # and a GET
        assert connect.startswith("40{")
        target = f"/socket.io/?EIO=4&transport=websocket&sid={client.sid}"
        with anyio.fail_after(10):
            async with RawWebSocket.connect(other, target) as ws:
                await ws.send("2probe")
                assert await ws.receive() == "3probe"
                assert await client.get() == ["6"]  # the pending GET, forwarded too
                await ws.send("5")
                session = cluster.servers[0].engine.sessions[client.sid]
                await transports.until(lambda: session.transport == "websocket")
                await ws.send('421["echo","over the relay"]')
                assert await ws.receive() == '431["over the relay"]'
            await session.wait_finished()
        edge = await scrape(at_other.app())
        held = await scrape(at_owner.app())
    assert value(edge, "gosf_forwarded_requests_total", method="POST") == 1
    assert value(edge, "gosf_forwarded_requests_total", method="GET") == 2
    assert value(edge, "gosf_relayed_websockets_total") == 1
    assert value(edge, "gosf_engineio_sessions_opened_total", transport="polling") == 0
    assert value(held, "gosf_forwarded_requests_total", method="GET") == 0
    assert value(held, "gosf_engineio_upgrades_total") == 1  # the owner's session upgraded
    assert value(held, "gosf_events_received_total", namespace="/", event="echo") == 1


def test_without_the_extra_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'gosf\[metrics\]'"):
        gosf.App(metrics_endpoint="metrics")
    assert gosf.App().metrics is None  # nothing imported without the endpoint


def test_the_root_page_names_the_metrics_endpoint() -> None:
    page = root_page(gosf.Config(metrics_endpoint="metrics"), [])
    assert "<p>Metrics: <code>/metrics</code></p>" in page
    assert "Metrics" not in root_page(gosf.Config(), [])


async def test_a_slow_client_dropped_and_the_queues_depth(anyio_backend: str) -> None:
    server = gosf.SocketIOServer(max_outbound_buffer=4)
    metrics = gosf.PrometheusMetrics()
    metrics.attach(server)

    @server.on("shout")
    async def shout(socket: gosf.Socket, count: int) -> int:
        for i in range(count):
            await server.emit("news", i)
        return count

    async with running(server) as (_, _, http):
        slow, fast = Polling(http), Polling(http)
        for client in (slow, fast):
            await client.handshake()
            await client.post("40")
            await client.get()
        await fast.post('421["shout",3]')  # `slow` never polls: 3 news wait for it
        assert len(await fast.get()) == 4
        samples = await scrape(metrics.app())
        assert value(samples, "gosf_outbound_buffered_packets") == 3
        assert value(samples, "gosf_outbound_buffered_packets_max") == 3
        await fast.post('422["shout",3]')  # one more than its queue holds
        assert len(await fast.get()) == 4
        assert (await http.get(slow.url)).json()["code"] == 1  # dropped
        samples = await scrape(metrics.app())
    assert value(samples, "gosf_slow_client_disconnects_total") == 1
    assert value(samples, "gosf_engineio_sessions_closed_total", reason="slow client") == 1
    assert value(samples, "gosf_events_sent_total", namespace="/", event="news") == 6 + 4
    assert value(samples, "gosf_broadcasts_total", namespace="/") == 6


async def test_packet_queued_reports_what_packet_sent_does(anyio_backend: str) -> None:
    app = echo_app()
    sent: list[tuple[Any, ...]] = []
    queued: list[tuple[Any, ...]] = []

    class Both(gosf.Observer):
        def packet_sent(self, socket: gosf.Socket | None, packet: Packet, size: int) -> None:
            event = (
                packet.data[0]
                if packet.type in (PacketType.EVENT, PacketType.BINARY_EVENT)
                else None
            )
            sent.append((packet.namespace, packet.type, event, size))

        def packet_queued(
            self,
            socket: gosf.Socket | None,
            namespace: str,
            kind: PacketType,
            event: str | None,
            size: int,
        ) -> None:
            queued.append((namespace, kind, event, size))

    app.server.observe(Both())
    async with gosf.testing.serve(app) as server, server.client() as client:
        await client.request("echo", {"text": "héllo"})  # not ASCII: sizes in UTF-8
        await client.send("nope", {})
        await client.request("echo", {"text": "again"})
    kinds = [entry[1] for entry in sent]
    assert PacketType.CONNECT in kinds and PacketType.EVENT in kinds and PacketType.ACK in kinds
    assert queued == sent
