"""A Socket.IO namespace: its handlers, its sockets and its rooms."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ._observer import Observers
from ._socket import Dispatcher, EventHandler, Socket, to_engine
from .brokers import Broadcast
from .protocol.engineio import Packet as EnginePacket
from .protocol.socketio import encode_event

__all__ = ("ConnectHandler", "DisconnectHandler", "Dispatcher", "EventHandler", "Namespace")

log = logging.getLogger("gosf")

ConnectHandler = Callable[[Socket, dict[str, Any]], Awaitable[None]]
"""``async def on_connect(socket, auth)``; raise :class:`gosf.ConnectionRefused` to refuse."""

DisconnectHandler = Callable[[Socket, str], Awaitable[None]]
"""``async def on_disconnect(socket, reason)``."""

Publish = Callable[[Broadcast], Awaitable[None]]
"""Hands a broadcast to the broker (set by the server)."""


class Namespace:
    """Handlers and live state of one namespace (``"/"`` is the default one)."""

    def __init__(self, name: str, publish: Publish | None = None) -> None:
        if not name.startswith("/"):
            raise ValueError(f"a namespace starts with '/': {name!r}")
        self.name = name
        self._publish = publish
        self.handlers: dict[str, EventHandler] = {}
        self.connect_handlers: list[ConnectHandler] = []
        self.disconnect_handlers: list[DisconnectHandler] = []
        self._catch_all: Dispatcher | None = None
        self.observer: Observers | None = None
        """The server's observers, ``None`` while it has none (set by the server)."""
        self.sockets: dict[str, Socket] = {}
        self.rooms: dict[str, set[Socket]] = {}
        """Members of each room joined, but for the sockets' own rooms (see :meth:`_room`)."""

    def on(self, event: str, handler: EventHandler) -> None:
        """Register ``handler`` for ``event``.

        Raises:
            ValueError: ``event`` already has a handler, or is reserved.
            TypeError: ``handler`` is not an ``async def`` function.
        """
        if event in ("connect", "disconnect", "connect_error"):
            raise ValueError(f"{event!r} is reserved: use on_connect/on_disconnect")
        if event in self.handlers:
            raise ValueError(f"event {event!r} already has a handler in namespace {self.name!r}")
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"the handler of {event!r} must be an async function")
        self.handlers[event] = handler

    def on_any(self, handler: Dispatcher) -> None:
        """Register ``async def handler(socket, event, args, ack_id)`` for every event
        that has no handler of its own (see :meth:`gosf.SocketIOServer.on_any`).

        Raises:
            ValueError: the namespace has one already.
            TypeError: ``handler`` is not an ``async def`` function.
        """
        if self._catch_all is not None:
            raise ValueError(f"namespace {self.name!r} already has a catch-all handler")
        if not inspect.iscoroutinefunction(handler):
            raise TypeError("the catch-all handler must be an async function")
        self._catch_all = handler

    async def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        skip: Socket | None = None,
    ) -> int:
        """Send an event to every socket of the namespace, or of the room(s) ``to``,
        in this process and (through the server's broker) in the others.

        The packet is encoded once. A recipient whose outbound buffer is full
        is disconnected rather than waited for. Returns the number of this
        process's sockets the event was queued for.
        """
        parts = encode_event(self.name, event, args)
        rooms = None if to is None else (to,) if isinstance(to, str) else tuple(to)
        sent = self.deliver(to_engine(parts), rooms, None if skip is None else skip.sid)
        if self.observer is not None:
            self.observer.broadcast(self.name, event, args, parts, rooms, sent)
        if self._publish is not None:
            skip_sid = None if skip is None else skip.sid
            await self._publish(Broadcast(self.name, tuple(parts), rooms, skip_sid))
        return sent

    def deliver(
        self, packets: list[EnginePacket], rooms: tuple[str, ...] | None, skip: str | None
    ) -> int:
        """Queue ``packets`` for this process's sockets in ``rooms`` (all: ``None``)
        except ``skip``; never waits. Returns how many sockets got them."""
        sent = 0
        for socket in self._targets(rooms):
            if socket.sid != skip and socket.connected and socket.session.send_nowait(packets):
                sent += 1
        return sent

    def members(self, room: str | None = None) -> list[Socket]:
        """The connected sockets in ``room`` (all of the namespace's for ``None``)."""
        return [socket for socket in self._targets(room) if socket.connected]

    def _targets(self, to: str | Iterable[str] | None) -> Iterable[Socket]:
        if to is None:
            return list(self.sockets.values())
        if isinstance(to, str):
            return self._room(to)
        if isinstance(to, tuple) and len(to) == 1:
            return self._room(to[0])
        members: set[Socket] = set()
        for room in to:
            members.update(self._room(room))
        return members

    def _room(self, room: str) -> list[Socket]:
        """The sockets in ``room``: those that joined it, and the socket whose
        own room it is (not in :attr:`rooms`, to save a set per socket)."""
        members = self.rooms.get(room)
        owner = self.sockets.get(room)
        if owner is not None and owner._own_room:
            return [owner, *members] if members else [owner]
        return list(members) if members else []

    async def _socket_closed(self, socket: Socket) -> None:
        if self.sockets.get(socket.sid) is not socket:
            return
        del self.sockets[socket.sid]
        reason = socket.disconnect_reason
        assert reason is not None, "a socket gets its reason when it is closed, before this"
        try:
            # Handlers still see the rooms the socket was in; it no longer
            # receives anything (it is not connected any more).
            for handler in self.disconnect_handlers:
                try:
                    await handler(socket, reason)
                except Exception:
                    log.exception(
                        "disconnect handler of namespace %s failed for %s", self.name, socket.sid
                    )
        finally:
            socket.leave_all()
