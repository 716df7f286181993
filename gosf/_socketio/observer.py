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

from ..protocol.session import CloseReason
from ..protocol.socketio import Packet, PacketType
from .socket import DisconnectReason, Socket

__all__ = ("METHODS", "Observer", "overrides")

log = logging.getLogger("gosf")


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
