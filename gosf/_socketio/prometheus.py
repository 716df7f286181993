"""Prometheus metrics of a Socket.IO server, and the ASGI endpoint that serves them.

:class:`PrometheusMetrics` counts with a :class:`~gosf._socketio.metrics.ServerMetrics`
(plain ints, on the hot path) and turns the counts into Prometheus metric
families only when scraped (a custom collector of ``prometheus_client``, in a
registry of its own). What the server holds anyway is read then too: the
sockets connected per namespace and transport, the Engine.IO sessions, the
packets waiting in their outbound queues. docs/metrics.md lists every metric.

``prometheus_client`` is the ``gosf[metrics]`` extra: it is imported when a
:class:`PrometheusMetrics` is made, not with gosf.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

from .._engineio.http import send_response
from ..protocol.session import CloseReason
from ..types import ASGIApp, Receive, Scope, Send
from .metrics import OTHER, Histogram, Key, ServerMetrics

if TYPE_CHECKING:
    pass

__all__ = ("MISSING", "PrometheusMetrics")

MISSING = (
    "Prometheus metrics need prometheus-client, which is not installed: pip install 'gosf[metrics]'"
)

_TRANSPORTS = ("polling", "websocket")


class PrometheusMetrics(ServerMetrics):
    """Prometheus metrics of a :class:`gosf.SocketIOServer`.

    >>> metrics = PrometheusMetrics()        # doctest: +SKIP
    >>> metrics.attach(server)               # counts what the server does from now on
    >>> asgi = metrics.app("/metrics", other_app)   # serves them at /metrics

    A :class:`gosf.App` makes one itself when its config has
    ``metrics_endpoint``. ``endpoints``: event names that get labels of their
    own besides the namespaces' handlers (an app's endpoints). ``registry``:
    the ``prometheus_client.CollectorRegistry`` to register with (default: a
    new one, holding these metrics alone).

    Raises:
        ImportError: ``prometheus_client`` is not installed.
    """

    def __init__(self, endpoints: Collection[str] = (), *, registry: Any = None) -> None:
        try:
            import prometheus_client
        except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
            raise ImportError(MISSING) from exc
        super().__init__(endpoints)
        self.registry: Any = (
            registry if registry is not None else prometheus_client.CollectorRegistry()
        )
        """The ``prometheus_client.CollectorRegistry`` these metrics are in."""
        self.registry.register(_Collector(self))

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry's metrics in the format ``accept`` (an HTTP ``Accept``
        header) asks for, with its content type: Prometheus's text format, or
        OpenMetrics."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def app(self, path: str = "/metrics", other_app: ASGIApp | None = None) -> ASGIApp:
        """An ASGI app answering GET and HEAD at ``path`` with the metrics and
        passing everything else to ``other_app`` (none: 404): the ``other_app``
        of a :class:`gosf.SocketIOServer`, for instance."""
        return _MetricsApp(self, path, other_app)


class _MetricsApp:
    def __init__(self, metrics: PrometheusMetrics, path: str, other_app: ASGIApp | None) -> None:
        self._metrics = metrics
        self._path = path
        self._other_app = other_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == self._path:
            method = scope["method"]
            if method not in ("GET", "HEAD"):
                allow = [(b"allow", b"GET, HEAD")]
                await send_response(send, 405, b"Method Not Allowed", headers=allow)
                return
            accept = None
            for name, value in scope.get("headers", ()):
                if name == b"accept":
                    accept = value.decode("latin-1")
            body, content_type = self._metrics.exposition(accept)
            await send_response(
                send, 200, b"" if method == "HEAD" else body, content_type=content_type.encode()
            )
        elif self._other_app is not None:
            await self._other_app(scope, receive, send)
        elif scope["type"] == "http":
            await send_response(send, 404, b"Not Found")
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})


class _Collector:
    """Builds the metric families from the counts, at each scrape."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Any]:
        return []  # no duplicate checks of the names at registration: they are gosf's

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        m = self._metrics

        def counter(name: str, doc: str, labels: tuple[str, ...], counts: dict[Key, int]) -> Any:
            family = CounterMetricFamily(name, doc, labels=labels)
            for key, value in sorted(counts.items()):
                family.add_metric(list(key), value)
            return family

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], histograms: dict[Key, Histogram]
        ) -> Any:
            family = HistogramMetricFamily(name, doc, labels=labels)
            for key, h in sorted(histograms.items()):
                family.add_metric(list(key), h.cumulative(), h.sum)
            return family

        ns, ev = ("namespace",), ("namespace", "event")
        connected: dict[Key, int] = {}
        sessions: dict[Key, int] = {(transport,): 0 for transport in _TRANSPORTS}
        buffered = deepest = 0
        broker_failures = 0
        server = m.server
        if server is not None:
            # Copies first: a scrape may come from another thread (a registry
            # served by prometheus_client's own HTTP server).
            for namespace in list(server.namespaces.values()):
                for transport in _TRANSPORTS:
                    connected[(namespace.name, transport)] = 0
                for socket in list(namespace.adapter.sockets.values()):
                    if socket.connected:
                        _bump(connected, (namespace.name, str(socket.transport)))
            for session in list(server.engine.sessions.values()):
                if not session.closed:
                    _bump(sessions, (str(session.transport),))
                    queued = session.machine.queued
                    buffered += queued
                    deepest = max(deepest, queued)
            broker_failures = getattr(server.broker, "publish_failures", 0)
        yield _gauge(
            GaugeMetricFamily,
            "gosf_connected_sockets",
            "Sockets connected, per namespace and transport",
            ("namespace", "transport"),
            connected,
        )
        yield counter("gosf_connects", "Sockets that joined a namespace", ns, m.connects)
        yield counter(
            "gosf_disconnects",
            "Sockets that left a namespace, by reason",
            ("namespace", "reason"),
            m.disconnects,
        )
        yield counter(
            "gosf_events_received", "Events received from clients, by name", ev, m.events_in
        )
        yield counter(
            "gosf_events_sent",
            "Events queued for clients, by name (a broadcast counts once per recipient)",
            ev,
            m.events_out,
        )
        bytes_in = {(name,): count for name, count in m.bytes_in.items()}
        bytes_out = {(name,): count for name, count in m.bytes_out.items()}
        yield counter("gosf_received_bytes", "Bytes of Socket.IO packets received", ns, bytes_in)
        yield counter(
            "gosf_sent_bytes", "Bytes of Socket.IO packets queued for clients", ns, bytes_out
        )
        yield counter("gosf_broadcasts", "Broadcasts delivered in this process", ns, m.broadcasts)
        yield histogram(
            "gosf_handler_duration_seconds",
            "Time handlers (controllers) ran, their ack queued",
            ev,
            m.handler_seconds,
        )
        yield counter(
            "gosf_handler_failures", "Handlers (controllers) that raised", ev, m.handler_failures
        )
        yield histogram(
            "gosf_ack_latency_seconds",
            "Time clients took to acknowledge the server's calls",
            ev,
            m.ack_seconds,
        )
        yield _gauge(
            GaugeMetricFamily,
            "gosf_engineio_sessions",
            "Engine.IO sessions open, per transport",
            ("transport",),
            sessions,
        )
        yield counter(
            "gosf_engineio_sessions_opened",
            "Engine.IO sessions opened, by first transport",
            ("transport",),
            m.sessions_opened,
        )
        yield counter(
            "gosf_engineio_sessions_closed",
            "Engine.IO sessions closed, by reason",
            ("reason",),
            m.sessions_closed,
        )
        yield counter(
            "gosf_engineio_upgrades", "Sessions upgraded to a websocket", (), {(): m.upgrades}
        )
        slow = m.sessions_closed.get((str(CloseReason.SLOW_CLIENT),), 0)
        yield counter(
            "gosf_slow_client_disconnects",
            "Sessions closed because the client did not read what was queued for it",
            (),
            {(): slow},
        )
        yield _gauge(
            GaugeMetricFamily,
            "gosf_outbound_buffered_packets",
            "Packets queued for clients, all sessions together",
            (),
            {(): buffered},
        )
        yield _gauge(
            GaugeMetricFamily,
            "gosf_outbound_buffered_packets_max",
            "Packets queued for the client with the most queued",
            (),
            {(): deepest},
        )
        yield histogram(
            "gosf_broker_publish_duration_seconds",
            "Time handing a broadcast to the broker took",
            ns,
            m.publish_seconds,
        )
        failures = dict(m.publish_failures)
        if broker_failures:
            _bump(failures, (OTHER,), broker_failures)
        yield counter(
            "gosf_broker_publish_failures",
            "Broadcasts that did not reach the broker",
            ns,
            failures,
        )
        yield counter(
            "gosf_forwarded_requests",
            "Long-polling requests forwarded to the process holding their session",
            ("method",),
            m.forwarded,
        )
        yield counter(
            "gosf_relayed_websockets",
            "Websockets relayed to the process holding their session",
            (),
            {(): m.relayed},
        )


def _bump(counts: dict[Key, int], key: Key, amount: int = 1) -> None:
    counts[key] = counts.get(key, 0) + amount


def _gauge(kind: Any, name: str, doc: str, labels: tuple[str, ...], values: dict[Key, int]) -> Any:
    family = kind(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family
