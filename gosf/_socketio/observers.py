"""The fan-out of a server's observers: :class:`Observers`, what the server and
its sockets call, seen as one observer, and passed on to each
:class:`~gosf._socketio.observer.Observer` registered (``observer.py`` has
the rules they are called by).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._logs import WarnOnce
from ..protocol.parser import JSON_PARSER, MSGPACK_PARSER
from ..protocol.session import CloseReason
from ..protocol.socketio import Packet, PacketType
from .observer import METHODS, Observer, overrides
from .socket import DisconnectReason, Socket

__all__ = ("Observers", "size_of")

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
