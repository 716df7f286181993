"""A Socket.IO namespace: its handlers, and its sockets through its adapter."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..protocol.parser import JSON_PARSER, Parser
from .adapter import Adapter, Publish
from .observers import Observers
from .socket import Dispatcher, EventHandler, Socket

__all__ = (
    "ConnectHandler",
    "DisconnectHandler",
    "Dispatcher",
    "EventHandler",
    "Namespace",
    "RecoverHandler",
    "as_rooms",
    "check_catch_all",
    "check_handler",
)

log = logging.getLogger("gosf")

ConnectHandler = Callable[[Socket, dict[str, Any]], Awaitable[None]]
"""``async def on_connect(socket, auth)``; raise :class:`gosf.ConnectionRefused` to refuse."""

DisconnectHandler = Callable[[Socket, str], Awaitable[None]]
"""``async def on_disconnect(socket, reason)``."""

RecoverHandler = Callable[[Socket], Awaitable[None]]
"""``async def on_recover(socket)``: a socket came back (``socket.recovered``)."""


def as_rooms(rooms: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """One room, several or ``None``, as the adapter takes them."""
    if rooms is None:
        return None
    return (rooms,) if isinstance(rooms, str) else tuple(rooms)


def check_handler(
    handlers: dict[str, EventHandler], event: str, handler: EventHandler, where: str
) -> None:
    """Whether ``handler`` may be registered for ``event`` in ``handlers`` (of
    ``where``, for the message): the rules a namespace and a parent share.

    Raises:
        ValueError: ``event`` already has a handler, or is reserved.
        TypeError: ``handler`` is not an ``async def`` function.
    """
    if event in ("connect", "disconnect", "connect_error"):
        raise ValueError(f"{event!r} is reserved: use on_connect/on_disconnect")
    if event in handlers:
        raise ValueError(f"event {event!r} already has a handler in {where}")
    if not inspect.iscoroutinefunction(handler):
        raise TypeError(f"the handler of {event!r} must be an async function")


def check_catch_all(current: Dispatcher | None, handler: Dispatcher, where: str) -> None:
    """Whether ``handler`` may be the catch-all of ``where`` (which has ``current``).

    Raises:
        ValueError: it has one already.
        TypeError: ``handler`` is not an ``async def`` function.
    """
    if current is not None:
        raise ValueError(f"{where} already has a catch-all handler")
    if not inspect.iscoroutinefunction(handler):
        raise TypeError("the catch-all handler must be an async function")


class Namespace:
    """Handlers and live state of one namespace (``"/"`` is the default one).

    Its sockets and rooms are its :attr:`adapter`'s (``gosf._socketio.adapter``).
    """

    def __init__(
        self, name: str, publish: Publish | None = None, parser: Parser = JSON_PARSER
    ) -> None:
        if not name.startswith("/"):
            raise ValueError(f"a namespace starts with '/': {name!r}")
        self.name = name
        """The namespace's name, such as ``"/"`` or ``"/chat"``."""
        self.parser = parser
        """The server's codec (``gosf.protocol.parser``): its sockets' packets are encoded so."""
        self.adapter: Adapter[Socket] = Adapter(name, publish)
        """Its rooms and their members, and delivery to them (here and, with
        ``publish``, the broker's other processes)."""
        self.handlers: dict[str, EventHandler] = {}
        """The event handlers by event name."""
        self.connect_handlers: list[ConnectHandler] = []
        """Called in order when a socket connects; one may refuse it."""
        self.disconnect_handlers: list[DisconnectHandler] = []
        """Called in order when a socket disconnects."""
        self.recover_handlers: list[RecoverHandler] = []
        """Called in order, instead of the connect handlers, when a socket is
        recovered and ``Recovery.skip_connect_handlers`` is on."""
        self.catch_all: Dispatcher | None = None
        """What takes the events that have no handler (see :meth:`on_any`)."""
        self.observer: Observers | None = None
        """The server's observers, ``None`` while it has none (see :meth:`observe`)."""
        self.emptied: Callable[[Namespace], None] | None = None
        """Told when its last socket has left (a dynamic namespace's parent:
        ``gosf._socketio.dynamic``); ``None`` for a namespace that stays."""

    def observe(self, observer: Observers | None) -> None:
        """Report to ``observer`` from now on (the server's observers, ``None``
        while it has none), the adapter's joins and leaves included."""
        self.observer = observer
        self.adapter.observer = observer

    @property
    def sockets(self) -> dict[str, Socket]:
        """The namespace's sockets by sid (its adapter's)."""
        return self.adapter.sockets

    @property
    def rooms(self) -> dict[str, set[Socket]]:
        """Members of each room joined, but for the sockets' own rooms (its adapter's)."""
        return self.adapter.rooms

    def on(self, event: str, handler: EventHandler) -> None:
        """Register ``handler`` for ``event``.

        Raises:
            ValueError: ``event`` already has a handler, or is reserved.
            TypeError: ``handler`` is not an ``async def`` function.
        """
        check_handler(self.handlers, event, handler, f"namespace {self.name!r}")
        self.handlers[event] = handler

    def on_any(self, handler: Dispatcher) -> None:
        """Register ``async def handler(socket, event, args, ack_id)`` for every event
        that has no handler of its own (see :meth:`gosf.SocketIOServer.on_any`).

        Raises:
            ValueError: the namespace has one already.
            TypeError: ``handler`` is not an ``async def`` function.
        """
        check_catch_all(self.catch_all, handler, f"namespace {self.name!r}")
        self.catch_all = handler

    async def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        skip: Socket | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        volatile: bool = False,
    ) -> int:
        """Send an event to every socket of the namespace, or of the room(s) ``to``,
        in this process and (through the server's broker) in the others.

        ``skip`` is left out (a client broadcast's sender), and so is every
        socket in any of the rooms ``skip_rooms`` (Node's ``except``; a sid
        is a room, so sids work too). ``volatile``: a socket that cannot take
        the event at once (see :attr:`gosf.protocol.session.Session.writable`)
        does not get it; it is dropped, not queued, and counted
        (:attr:`gosf._socketio.adapter.Adapter.volatile_dropped`).

        The packet is encoded once. A recipient whose outbound buffer is full
        is disconnected rather than waited for. Returns the number of this
        process's sockets the event was queued for.
        """
        parts = self.parser.encode_event(self.name, event, args)
        rooms = as_rooms(to)
        left_out = as_rooms(skip_rooms) or ()
        skip_sid = None if skip is None else skip.sid
        adapter = self.adapter
        sent = adapter.broadcast(parts, rooms, skip_sid, skip_rooms=left_out, volatile=volatile)
        if self.observer is not None:
            self.observer.broadcast(self.name, event, args, parts, rooms, sent)
        await adapter.publish(parts, rooms, skip_sid, skip_rooms=left_out, volatile=volatile)
        return sent

    def members(self, room: str | None = None) -> list[Socket]:
        """The connected sockets in ``room`` (all of the namespace's for ``None``)."""
        return self.adapter.members(room)

    async def _socket_closed(self, socket: Socket) -> None:
        if not self.adapter.detach(socket):
            return
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
            if self.emptied is not None and not self.adapter.sockets:
                self.emptied(self)
