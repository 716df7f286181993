"""Instrumentation: what a :class:`gosf.SocketIOServer` tells the observers it was given.

An observer is a :class:`Observer` whose methods the server calls as things
happen: a socket connects or disconnects, joins or leaves a room, a packet
comes in or goes out, a broadcast is queued, a client acknowledges an event,
a handler ends; below the sockets, an Engine.IO session opens, upgrades or
closes, a broadcast is published to the broker, a request is forwarded to the
process holding its session. Admin dashboards, metrics and connection state
recovery are built on these calls; see docs/observing.md.

How they are called, the rules:

* Synchronously, in the task where the thing happens (a client's reader, a
  handler's worker), once per observer in the order they were registered.
  They must be cheap and must not block: the client they are called for
  waits for them.
* An observer that raises does not disturb the server: the client is served
  as if nothing had happened, and the failure is logged once per observer
  method at WARNING (its repeats at DEBUG).
* With no observer registered the server's only cost is one test per packet.
  An event goes only to the observers that override its method, and sizes
  and packets are built only for them (once for all of them); an observer
  that only counts hears ``packet_queued``, for which no packet is built.

Sizes are those of the encoded Socket.IO packet: its text part in UTF-8 plus
its binary attachments, without Engine.IO's framing (the message type,
polling's separators, websocket frame headers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._logs import WarnOnce
from ..protocol.parser import JSON_PARSER, MSGPACK_PARSER
from ..protocol.session import CloseReason
from ..protocol.socketio import Packet, PacketType
from .socket import DisconnectReason, Socket

__all__ = ("METHODS", "Observer", "Observers", "overrides", "size_of")

log = logging.getLogger("gosf")

# The packet types an observer's packets are built with, as globals: looking a
# member up on its enum class is a slow attribute lookup.
_EVENT, _BINARY_EVENT = PacketType.EVENT, PacketType.BINARY_EVENT
_ACK, _BINARY_ACK = PacketType.ACK, PacketType.BINARY_ACK

# Packets for observers are built through their slots, as the decoder builds
# them: a frozen dataclass's __init__ costs an object.__setattr__ per field,
# which was most of what reporting an ack cost.
_new_packet = object.__new__
_set_type = Packet.__dict__["type"].__set__
_set_namespace = Packet.__dict__["namespace"].__set__
_set_data = Packet.__dict__["data"].__set__
_set_id = Packet.__dict__["id"].__set__


def _packet(kind: PacketType, namespace: str, data: Any, ack_id: int | None) -> Packet:
    packet: Packet = _new_packet(Packet)
    _set_type(packet, kind)
    _set_namespace(packet, namespace)
    _set_data(packet, data)
    _set_id(packet, ack_id)
    return packet


class Observer:
    """What a server tells about itself: subclass it and override what you need.

    Every method does nothing here. Register an instance with
    :meth:`gosf.SocketIOServer.observe` (``app.server.observe`` for a
    :class:`gosf.App`). The order of the calls for one socket::

        packet_received (its CONNECT)
        room_joined (its own room, its sid) · packet_sent (CONNECT) · socket_connected
        packet_received (an EVENT) · its handler runs · packet_sent (the ack) · handler_finished
        socket_disconnected · (its handlers are cancelled, then the disconnect handlers run)
        room_left (each room, its own included)

    Its Engine.IO session's: ``session_opened`` before its first packet,
    ``session_upgraded`` when it moves from long-polling to a websocket,
    ``session_closed`` once its sockets have been told (after their
    ``socket_disconnected``).
    """

    def socket_connected(self, socket: Socket) -> None:
        """``socket`` joined its namespace: its connect handlers accepted it and its
        CONNECT is queued. Not called for a refused connection."""

    def socket_disconnected(self, socket: Socket, reason: CloseReason | DisconnectReason) -> None:
        """``socket`` left its namespace, for ``reason`` (its ``disconnect_reason``).

        Called once, at once, before its handlers are cancelled and its
        disconnect handlers run; it is still in its rooms then (``socket.rooms``,
        ``socket.state``), and leaves them after its disconnect handlers.
        """

    def room_joined(self, socket: Socket, room: str) -> None:
        """``socket`` joined ``room`` (its own room, its sid, included; not called
        when it was in the room already)."""

    def room_left(self, socket: Socket, room: str) -> None:
        """``socket`` left ``room`` (not called when it was not in the room); a
        refused socket leaves the rooms its connect handlers joined."""

    def packet_received(self, socket: Socket | None, packet: Packet, size: int) -> None:
        """A Socket.IO packet of ``size`` bytes came from a client, decoded (an
        EVENT's ``packet.data`` is ``[event, *args]``).

        Called before the packet is acted on: an EVENT's handler starts after.
        ``socket`` is ``None`` for a CONNECT to a namespace the client has not
        joined yet (``packet.namespace`` names it).
        """

    def packet_sent(self, socket: Socket | None, packet: Packet, size: int) -> None:
        """A Socket.IO packet of ``size`` bytes was queued for one client (an
        event, an ack, CONNECT, CONNECT_ERROR, DISCONNECT): called as it is
        queued, before the client reads it.

        ``socket`` is ``None`` for the CONNECT_ERROR refusing an unknown
        namespace. Broadcasts are not reported here but to
        :meth:`broadcast_sent`, once each.
        """

    def packet_queued(
        self,
        socket: Socket | None,
        namespace: str,
        kind: PacketType,
        event: str | None,
        size: int,
    ) -> None:
        """Each packet :meth:`packet_sent` reports, reported without the packet:
        its ``namespace``, its ``kind``, an event's name (``None`` for other
        kinds) and its ``size``. It costs less: the server builds an event's or
        an ack's packet only for observers of :meth:`packet_sent`. For
        observers that count; override one of the two."""

    def broadcast_sent(
        self, packet: Packet, size: int, rooms: tuple[str, ...] | None, recipients: int
    ) -> None:
        """An event of ``size`` bytes was queued for ``recipients`` sockets of this
        process, once for all of them (count ``size * recipients`` bytes out).

        ``rooms`` is ``None`` for the whole namespace (``packet.namespace``).
        Each process of a cluster reports the broadcasts it delivers to its
        own sockets, those that other processes published included, so the
        cluster's numbers are the sum of its processes'.
        """

    def ack_received(self, socket: Socket, event: str, latency: float) -> None:
        """The client acknowledged ``event``, ``latency`` seconds after
        :meth:`gosf.Socket.call` sent it (not called when the call failed)."""

    def handler_finished(self, socket: Socket, event: str, duration: float, failed: bool) -> None:
        """The handler of ``event`` (a catch-all's included) ended after
        ``duration`` seconds, its ack written or queued; ``failed``: it raised.
        Not called for a handler cancelled because its client left."""

    def session_opened(self, sid: str, transport: str) -> None:
        """The Engine.IO session ``sid`` opened on ``transport`` (``"polling"`` or
        ``"websocket"``), before its first packet is read."""

    def session_upgraded(self, sid: str) -> None:
        """The Engine.IO session ``sid`` moved from long-polling to a websocket."""

    def session_closed(self, sid: str, reason: CloseReason) -> None:
        """The Engine.IO session ``sid`` ended for ``reason`` (a client too slow to
        read is ``CloseReason.SLOW_CLIENT``), after its sockets' ``socket_disconnected``."""

    def broker_published(self, namespace: str, duration: float, failed: bool) -> None:
        """A broadcast of ``namespace`` was handed to the broker for the other
        processes in ``duration`` seconds; ``failed``: the broker raised (the
        Redis broker does not: it counts what it drops itself, its
        ``publish_failures``)."""

    def request_forwarded(self, owner: str, method: str) -> None:
        """A long-polling request (``method``: ``"GET"`` or ``"POST"``) for a
        session of the process ``owner`` arrived here and is forwarded to it."""

    def websocket_relayed(self, owner: str) -> None:
        """A websocket upgrading a session of the process ``owner`` arrived here
        and is relayed to it."""


METHODS = (
    "socket_connected",
    "socket_disconnected",
    "room_joined",
    "room_left",
    "packet_received",
    "packet_sent",
    "packet_queued",
    "broadcast_sent",
    "ack_received",
    "handler_finished",
    "session_opened",
    "session_upgraded",
    "session_closed",
    "broker_published",
    "request_forwarded",
    "websocket_relayed",
)
"""The methods of :class:`Observer`, the events it hears of."""


def overrides(observer: Observer, method: str) -> bool:
    """Whether ``observer`` does something on ``method`` (its class, or the
    instance itself, replaces the base class's no-op)."""
    return getattr(type(observer), method) is not getattr(Observer, method) or method in getattr(
        observer, "__dict__", ()
    )


_Listeners = tuple[tuple["Observer", Callable[..., None]], ...]
"""The observers of one method, each with the method bound."""


class Observers:
    """The observers of one server, seen as one: what the server and its sockets
    call (:class:`gosf._socketio.socket.SocketObserver`), fanned out to each observer.

    Each event goes only to the observers that override its method, and what
    they receive (a packet, a size) is built once, here, only when one does:
    the server holds ``None`` instead of this object while there are no
    observers at all.
    """

    __slots__ = ("_failures", "_listening", "changed", "observers")

    def __init__(self, changed: Callable[[], None]) -> None:
        self.changed = changed
        """Called after each observer is added or removed: the server that reports
        to these observers (replaced when another server takes them over)."""
        self.observers: tuple[Observer, ...] = ()
        """The registered observers, in order (replaced, never changed in place:
        a call going on meanwhile goes on with the ones it started with)."""
        # Per method, the observers that override it, with the method bound.
        self._listening: dict[str, _Listeners] = dict.fromkeys(METHODS, ())
        self._failures = WarnOnce(
            log, "observer method %s raised %r; the server goes on (repeats at DEBUG)"
        )

    def add(self, observer: Observer) -> Callable[[], None]:
        """Register ``observer``; return what removes it again (once: later calls
        do nothing). :attr:`changed` is called after each of the two."""
        self._set((*self.observers, observer))
        self.changed()
        registered = True

        def remove() -> None:
            nonlocal registered
            if registered:
                registered = False
                kept = list(self.observers)
                kept.remove(observer)
                self._set(tuple(kept))
                self.changed()

        return remove

    def _set(self, observers: tuple[Observer, ...]) -> None:
        self.observers = observers
        self._listening = {
            method: tuple(
                (observer, getattr(observer, method))
                for observer in observers
                if overrides(observer, method)
            )
            for method in METHODS
        }

    def _call(self, method: str, *args: Any) -> None:
        for observer, bound in self._listening[method]:
            try:
                bound(*args)
            except Exception as exc:
                self._failures(f"{type(observer).__qualname__}.{method}", exc)

    def connected(self, socket: Socket) -> None:
        self._call("socket_connected", socket)

    def disconnected(self, socket: Socket, reason: CloseReason | DisconnectReason) -> None:
        self._call("socket_disconnected", socket, reason)

    def joined(self, socket: Socket, room: str) -> None:
        self._call("room_joined", socket, room)

    def left(self, socket: Socket, room: str) -> None:
        self._call("room_left", socket, room)

    # The hot path's reports (every packet, every handler) call the observers
    # themselves rather than through _call: one frame less per report.

    def received(self, socket: Socket | None, packet: Packet, size: int) -> None:
        for observer, bound in self._listening["packet_received"]:
            try:
                bound(socket, packet, size)
            except Exception as exc:
                self._failures(f"{type(observer).__qualname__}.packet_received", exc)

    def _sent(self, socket: Socket | None, packet: Packet, size: int) -> None:
        for observer, bound in self._listening["packet_sent"]:
            try:
                bound(socket, packet, size)
            except Exception as exc:
                self._failures(f"{type(observer).__qualname__}.packet_sent", exc)

    def sent(self, socket: Socket | None, packet: Packet, parts: list[str | bytes]) -> None:
        listening = self._listening["packet_sent"]
        queued = self._listening["packet_queued"]
        if not listening and not queued:
            return
        size = size_of(parts)
        if queued:
            kind = packet.type
            event = packet.data[0] if kind is _EVENT or kind is _BINARY_EVENT else None
            self._queued(queued, socket, packet.namespace, kind, event, size)
        if listening:
            self._sent(socket, packet, size)

    def _queued(self, queued: _Listeners, *args: Any) -> None:
        for observer, bound in queued:
            try:
                bound(*args)
            except Exception as exc:
                self._failures(f"{type(observer).__qualname__}.packet_queued", exc)

    # An event's or an ack's packet is built only for observers of packet_sent:
    # building one costs more than what most observers do with it, so those
    # that only count hear packet_queued instead. Every event and ack a socket
    # queues comes here: size_of and the fan-out are inlined.

    def sent_event(
        self,
        socket: Socket,
        event: str,
        args: tuple[Any, ...],
        ack_id: int | None,
        parts: list[str | bytes],
    ) -> None:
        listening = self._listening["packet_sent"]
        queued = self._listening["packet_queued"]
        if not listening and not queued:
            return
        if len(parts) == 1:
            part = parts[0]
            size = len(part.encode()) if isinstance(part, str) and not part.isascii() else len(part)
            kind = _EVENT
        else:
            size = size_of(parts)
            kind = _BINARY_EVENT
        namespace = socket.namespace.name
        for observer, bound in queued:
            try:
                bound(socket, namespace, kind, event, size)
            except Exception as exc:
                self._failures(f"{type(observer).__qualname__}.packet_queued", exc)
        if listening:
            self._sent(socket, _packet(kind, namespace, [event, *args], ack_id), size)

    def sent_ack(
        self, socket: Socket, ack_id: int, args: tuple[Any, ...], parts: list[str | bytes]
    ) -> None:
        listening = self._listening["packet_sent"]
        queued = self._listening["packet_queued"]
        if not listening and not queued:
            return
        if len(parts) == 1:
            part = parts[0]
            size = len(part.encode()) if isinstance(part, str) and not part.isascii() else len(part)
            kind = _ACK
        else:
            size = size_of(parts)
            kind = _BINARY_ACK
        namespace = socket.namespace.name
        for observer, bound in queued:
            try:
                bound(socket, namespace, kind, None, size)
            except Exception as exc:
                self._failures(f"{type(observer).__qualname__}.packet_queued", exc)
        if listening:
            self._sent(socket, _packet(kind, namespace, list(args), ack_id), size)

    def broadcast(
        self,
        namespace: str,
        event: str,
        args: tuple[Any, ...],
        parts: list[str | bytes],
        rooms: tuple[str, ...] | None,
        recipients: int,
    ) -> None:
        if self._listening["broadcast_sent"]:
            kind = _EVENT if len(parts) == 1 else _BINARY_EVENT
            packet = _packet(kind, namespace, [event, *args], None)
            self._call("broadcast_sent", packet, size_of(parts), rooms, recipients)

    def delivered(
        self, parts: Sequence[str | bytes], rooms: tuple[str, ...] | None, recipients: int
    ) -> None:
        """A broadcast another process published, delivered here: decoded for the observers."""
        if self._listening["broadcast_sent"] and parts:
            # A JSON packet starts with text, a msgpack one is one binary part.
            parser = MSGPACK_PARSER if isinstance(parts[0], bytes) else JSON_PARSER
            decoder = parser.decoder(5, max_attachment_bytes=None)
            packet = None
            for part in parts:
                packet = decoder.feed(part)
            if packet is not None:
                self._call("broadcast_sent", packet, size_of(parts), rooms, recipients)

    def acked(self, socket: Socket, event: str, latency: float) -> None:
        self._call("ack_received", socket, event, latency)

    def finished(self, socket: Socket, event: str, duration: float, failed: bool) -> None:
        for observer, bound in self._listening["handler_finished"]:
            try:
                bound(socket, event, duration, failed)
            except Exception as exc:
                self._failures(f"{type(observer).__qualname__}.handler_finished", exc)

    def opened(self, sid: str, transport: str) -> None:
        self._call("session_opened", sid, transport)

    def upgraded(self, sid: str) -> None:
        self._call("session_upgraded", sid)

    def closed(self, sid: str, reason: CloseReason) -> None:
        self._call("session_closed", sid, reason)

    def published(self, namespace: str, duration: float, failed: bool) -> None:
        self._call("broker_published", namespace, duration, failed)

    def forwarded(self, owner: str, method: str) -> None:
        self._call("request_forwarded", owner, method)

    def relayed(self, owner: str) -> None:
        self._call("websocket_relayed", owner)


def size_of(parts: Iterable[str | bytes]) -> int:
    """Bytes of an encoded packet's parts: text in UTF-8, attachments as they are."""
    size = 0
    for part in parts:
        if isinstance(part, str) and not part.isascii():
            size += len(part.encode())
        else:
            size += len(part)
    return size
