"""What a server's metrics count: an :class:`~gosf.Observer` that adds plain ints.

:class:`ServerMetrics` is the counting half of :class:`gosf.PrometheusMetrics`
(``gosf/_socketio/prometheus.py`` exports what it counts). It is called on
the hot path, in the client's own task, so each call does the least it can:
a dict lookup and an addition, no lock, no label objects, nothing of
``prometheus_client``. A histogram is a list of bucket counts. The exporter
reads these numbers when Prometheus scrapes, and what the server holds
anyway (its sockets, its sessions and their outbound queues) is read then
too, not counted as it changes.

Label values stay bounded whatever clients send: an event is named by its
label only when the server knows the name (a handler of its namespace, or an
endpoint of the app), the rest count as ``"other"``; the names of events the
server sends are kept up to :data:`MAX_SENT_EVENT_NAMES` per namespace; a
namespace the server does not have is ``"other"``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from ..protocol.session import CloseReason
from ..protocol.socketio import Packet, PacketType
from .observer import Observer
from .socket import DisconnectReason, Socket

if TYPE_CHECKING:
    from .server import SocketIOServer

__all__ = (
    "DURATION_BUCKETS",
    "MAX_SENT_EVENT_NAMES",
    "OTHER",
    "Histogram",
    "ServerMetrics",
)

OTHER = "other"
"""The label of an event (or namespace) the server does not know by name."""

MAX_SENT_EVENT_NAMES = 100
"""Event names the server sends that get a label of their own, per namespace;
the rest are counted as ``"other"``."""

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds, in seconds, of the duration histograms' buckets (``+Inf`` after them)."""

_EVENT, _BINARY_EVENT = PacketType.EVENT, PacketType.BINARY_EVENT

Key = tuple[Any, ...]
"""Label values: strings (a lookup may be made with a client's value, any JSON)."""


class Histogram:
    """Counts of observed values per bucket (each bound inclusive, the last
    bucket unbounded), and their sum: what a Prometheus histogram exports."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        """The buckets as Prometheus has them: ``(le, count of values <= le)``."""
        total = 0
        result = []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            total += count
            result.append((bound, total))
        return result


def _add(counter: dict[Key, int], key: Key, amount: int = 1) -> None:
    counter[key] = counter.get(key, 0) + amount


def _observe(histograms: dict[Key, Histogram], key: Key, value: float) -> None:
    histogram = histograms.get(key)
    if histogram is None:
        histogram = histograms[key] = Histogram()
    histogram.observe(value)


class ServerMetrics(Observer):
    """Counts what one :class:`gosf.SocketIOServer` reports (see the module).

    ``endpoints``: event names known besides the namespaces' handlers (a
    :class:`gosf.App`'s endpoints, which its catch-all serves), read as they
    are when an event arrives.
    """

    def __init__(self, endpoints: Collection[str] = ()) -> None:
        self.endpoints = endpoints
        self.server: SocketIOServer | None = None
        """The server observed (:meth:`attach`), whose state is read at scrape time."""
        self._stop: Callable[[], None] | None = None
        self.connects: dict[Key, int] = {}  # (namespace,)
        self.disconnects: dict[Key, int] = {}  # (namespace, reason)
        self.events_in: dict[Key, int] = {}  # (namespace, event)
        self.events_out: dict[Key, int] = {}  # (namespace, event)
        self.bytes_in: dict[str, int] = {}  # by namespace
        self.bytes_out: dict[str, int] = {}  # by namespace
        self.broadcasts: dict[Key, int] = {}  # (namespace,)
        self.handler_seconds: dict[Key, Histogram] = {}  # (namespace, event)
        self.handler_failures: dict[Key, int] = {}  # (namespace, event)
        self.ack_seconds: dict[Key, Histogram] = {}  # (namespace, event)
        self.sessions_opened: dict[Key, int] = {}  # (transport,)
        self.sessions_closed: dict[Key, int] = {}  # (reason,)
        self.upgrades = 0
        self.publish_seconds: dict[Key, Histogram] = {}  # (namespace,)
        self.publish_failures: dict[Key, int] = {}  # (namespace,)
        self.forwarded: dict[Key, int] = {}  # (method,)
        self.relayed = 0
        self._sent_names: dict[str, set[str]] = {}

    # -- attaching ---------------------------------------------------------------------

    def attach(self, server: SocketIOServer) -> None:
        """Count what ``server`` reports from now on (instead of the server
        attached before, if any); the counts go on from where they are."""
        self.detach()
        self._stop = server.observe(self)
        self.server = server

    def detach(self) -> None:
        """Stop counting (the counts stay)."""
        if self._stop is not None:
            self._stop()
            self._stop = None
        self.server = None

    # -- labels ------------------------------------------------------------------------

    def _namespace(self, name: str) -> str:
        server = self.server
        return name if server is not None and name in server.namespaces else OTHER

    def _event_in(self, namespace: str, event: object) -> str:
        """``event``'s label when a client sends it: its name if the server knows it."""
        if not isinstance(event, str):
            return OTHER
        if event in self.endpoints:
            return event
        server = self.server
        ns = server.namespaces.get(namespace) if server is not None else None
        return event if ns is not None and event in ns.handlers else OTHER

    def _event_out(self, namespace: str, event: object) -> str:
        """``event``'s label when the server sends it: its name while names are
        left (those the server knows always have one)."""
        if not isinstance(event, str):
            return OTHER
        names = self._sent_names.get(namespace)
        if names is None:
            names = self._sent_names[namespace] = set()
        if event in names:
            return event
        if self._event_in(namespace, event) != OTHER or len(names) < MAX_SENT_EVENT_NAMES:
            names.add(event)
            return event
        return OTHER

    # -- what the server reports ----------------------------------------------------------

    def socket_connected(self, socket: Socket) -> None:
        _add(self.connects, (socket.namespace.name,))

    def socket_disconnected(self, socket: Socket, reason: CloseReason | DisconnectReason) -> None:
        _add(self.disconnects, (socket.namespace.name, str(reason)))

    # The hot path's methods: a key already counted is a label already checked
    # (counts are only ever kept under labels), so they look it up first and
    # work a label out only for a key not seen yet.

    def packet_received(self, socket: Socket | None, packet: Packet, size: int) -> None:
        namespace = packet.namespace if socket is not None else self._namespace(packet.namespace)
        sizes = self.bytes_in
        sizes[namespace] = sizes.get(namespace, 0) + size
        kind = packet.type
        if kind is _EVENT or kind is _BINARY_EVENT:
            event = packet.data[0]  # a str: the decoder checked it
            key = (namespace, event)
            counts = self.events_in
            count = counts.get(key)
            if count is not None:
                counts[key] = count + 1
            else:
                _add(counts, (namespace, self._event_in(namespace, event)))

    def packet_queued(
        self,
        socket: Socket | None,
        namespace: str,
        kind: PacketType,
        event: str | None,
        size: int,
    ) -> None:
        if socket is None:
            namespace = self._namespace(namespace)
        sizes = self.bytes_out
        sizes[namespace] = sizes.get(namespace, 0) + size
        if event is not None:
            key = (namespace, event)
            counts = self.events_out
            count = counts.get(key)
            if count is not None:
                counts[key] = count + 1
            else:
                _add(counts, (namespace, self._event_out(namespace, event)))

    def broadcast_sent(
        self, packet: Packet, size: int, rooms: tuple[str, ...] | None, recipients: int
    ) -> None:
        namespace = self._namespace(packet.namespace)
        _add(self.broadcasts, (namespace,))
        self.bytes_out[namespace] = self.bytes_out.get(namespace, 0) + size * recipients
        event = self._event_out(namespace, packet.data[0])
        _add(self.events_out, (namespace, event), recipients)

    def ack_received(self, socket: Socket, event: str, latency: float) -> None:
        namespace = socket.namespace.name
        _observe(self.ack_seconds, (namespace, self._event_out(namespace, event)), latency)

    def handler_finished(self, socket: Socket, event: str, duration: float, failed: bool) -> None:
        namespace = socket.namespace.name
        key = (namespace, event)
        histogram = self.handler_seconds.get(key)
        if histogram is None:
            key = (namespace, self._event_in(namespace, event))
            histogram = self.handler_seconds.get(key)
            if histogram is None:
                histogram = self.handler_seconds[key] = Histogram()
        histogram.counts[bisect_left(histogram.bounds, duration)] += 1
        histogram.sum += duration
        if failed:
            _add(self.handler_failures, key)

    def session_opened(self, sid: str, transport: str) -> None:
        _add(self.sessions_opened, (str(transport),))

    def session_upgraded(self, sid: str) -> None:
        self.upgrades += 1

    def session_closed(self, sid: str, reason: CloseReason) -> None:
        _add(self.sessions_closed, (str(reason),))

    def broker_published(self, namespace: str, duration: float, failed: bool) -> None:
        _observe(self.publish_seconds, (namespace,), duration)
        if failed:
            _add(self.publish_failures, (namespace,))

    def request_forwarded(self, owner: str, method: str) -> None:
        _add(self.forwarded, (method if method in ("GET", "POST") else OTHER,))

    def websocket_relayed(self, owner: str) -> None:
        self.relayed += 1
