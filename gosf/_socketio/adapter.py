"""Rooms and delivery: who is in which room of a namespace, and what reaches them.

One :class:`Adapter` per namespace holds every piece of room state there is:
the namespace's sockets by sid, the members of each room, the rooms of each
socket; it queues broadcasts for this process's members, and the broker is
its transport to the other processes (it publishes a broadcast to them, and
delivers theirs here). socketioxide's ``CoreAdapter`` and python-socketio's
``BaseManager`` are the models: the socket and the namespace ask it, they
keep no room state of their own.

The own-room rule lives here and nowhere else: a socket is in the room named
by its sid from the moment it is attached, until it leaves it (it may, and
join it again). That membership costs no set: the room's owner is found by
its sid among the attached sockets, and :attr:`Adapter.rooms` holds only the
others, those who joined a room named by someone else's sid among them. So
a room named by a sid holds its owner (while in it) and whoever joined it.

Delivery's filters, applied to this process's members as each process
applies them to its own: ``skip`` (one sid: a client broadcast's sender),
``skip_rooms`` (Node's ``except``: a member of any of these rooms is left
out, whichever of the target rooms it is in) and ``volatile`` (a member whose
session cannot take the packets at once does not get them: they are dropped
and counted in :attr:`Adapter.volatile_dropped`, never queued).

The adapter knows its members only as :class:`Member`: a sid, whether it is
connected, and a session to queue packets on (:class:`gosf.Socket` is one).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, Protocol, TypeVar

from ..brokers import Broadcast
from ..protocol.engineio import Packet as EnginePacket
from ..protocol.engineio import message
from .recovery import SessionStore

__all__ = ("Adapter", "Member", "Publish", "RoomObserver", "to_engine")

Publish = Callable[[Broadcast], Awaitable[None]]
"""Hands a broadcast to the broker, for the other processes (set by the server)."""


def to_engine(parts: list[str | bytes]) -> list[EnginePacket]:
    """Wrap encoded Socket.IO parts (text packet + attachments) in Engine.IO messages."""
    if len(parts) == 1:  # no attachments, the usual case
        return [message(parts[0])]
    return [message(part) for part in parts]


class Outlet(Protocol):
    """Where a member's packets are queued (its Engine.IO session)."""

    def send_nowait(self, packets: list[EnginePacket]) -> bool: ...

    @property
    def writable(self) -> bool:
        """Whether it can take a packet now, behind nothing (for volatile ones)."""
        ...


class Member(Protocol):
    """What the adapter needs of a socket."""

    @property
    def sid(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    @property
    def session(self) -> Outlet: ...


M = TypeVar("M", bound=Member)
M_contra = TypeVar("M_contra", bound=Member, contravariant=True)


class RoomObserver(Protocol[M_contra]):
    """Who hears of joins, leaves and publishes (the server's observers)."""

    def joined(self, socket: M_contra, room: str) -> None: ...

    def left(self, socket: M_contra, room: str) -> None: ...

    def published(self, namespace: str, duration: float, failed: bool) -> None: ...


class Adapter(Generic[M]):
    """The rooms of one namespace and delivery to their members (see the module)."""

    __slots__ = (
        "_joined",
        "_own",
        "_publish",
        "name",
        "observer",
        "recovery",
        "rooms",
        "sockets",
        "volatile_dropped",
    )

    def __init__(self, name: str, publish: Publish | None = None) -> None:
        self.name = name
        self._publish = publish
        self.observer: RoomObserver[M] | None = None
        """Told of every join and leave; ``None`` while the server has no observers."""
        self.sockets: dict[str, M] = {}
        """The attached sockets by sid (python-socketio's room ``None``)."""
        self.rooms: dict[str, set[M]] = {}
        """Members of each room joined, but for the sockets' own rooms (see the module)."""
        # The rooms each socket joined besides its own (an entry from its first
        # such join), and the sids of the sockets in their own rooms.
        self._joined: dict[M, set[str]] = {}
        self._own: set[str] = set()
        self.volatile_dropped = 0
        """Volatile packets dropped for members that could not take them at once
        (broadcasts, and :meth:`gosf.Socket.emit` with ``volatile``)."""
        self.recovery: SessionStore | None = None
        """The log and parked sessions of connection state recovery (``None``: off)."""

    # -- membership ---------------------------------------------------------------

    def attach(self, socket: M) -> None:
        """Add a socket that joined the namespace, in its own room."""
        self.sockets[socket.sid] = socket
        self.add(socket, socket.sid)

    def detach(self, socket: M) -> bool:
        """Forget ``socket`` (no longer found by its sid); its rooms stay until
        :meth:`remove_all`. Whether it was attached."""
        if self.sockets.get(socket.sid) is not socket:
            return False
        del self.sockets[socket.sid]
        return True

    def add(self, socket: M, room: str) -> None:
        """Put ``socket`` in ``room`` (observers hear of it unless it was there)."""
        if room == socket.sid:
            if room in self._own:
                return
            self._own.add(room)
        else:
            joined = self._joined.get(socket)
            if joined is None:
                joined = self._joined[socket] = set()
            elif room in joined:
                return
            joined.add(room)
            self.rooms.setdefault(room, set()).add(socket)
        if self.observer is not None:
            self.observer.joined(socket, room)

    def remove(self, socket: M, room: str) -> None:
        """Take ``socket`` out of ``room`` (observers hear of it if it was there)."""
        if room == socket.sid:
            if room not in self._own:
                return
            self._own.discard(room)
        else:
            joined = self._joined.get(socket)
            if joined is not None:
                joined.discard(room)
            members = self.rooms.get(room)
            if members is None or socket not in members:
                return
            members.discard(socket)
            if not members:
                del self.rooms[room]
        if self.observer is not None:
            self.observer.left(socket, room)

    def remove_joined(self, socket: M, room: str) -> None:
        """:meth:`remove`, but never from its own room (what a command from
        another process may do: the socket stays reachable by its sid)."""
        if room != socket.sid:
            self.remove(socket, room)

    def remove_all(self, socket: M) -> None:
        """Take ``socket`` out of every room, its own first."""
        self.remove(socket, socket.sid)
        for room in list(self._joined.get(socket, ())):
            self.remove(socket, room)
        self._joined.pop(socket, None)

    def rooms_of(self, socket: M) -> frozenset[str]:
        """The rooms ``socket`` is in (a snapshot)."""
        joined = self._joined.get(socket, ())
        if socket.sid in self._own:
            return frozenset((socket.sid, *joined))
        return frozenset(joined)

    def members(self, room: str | None = None) -> list[M]:
        """The connected sockets in ``room`` (all of the namespace's for ``None``)."""
        return [socket for socket in self._targets(room) if socket.connected]

    def room_counts(self) -> dict[str, int]:
        """Every room with connected members and their number, but the rooms
        named by an attached socket's sid (its own, whoever joined it)."""
        counts: dict[str, int] = {}
        for room, members in self.rooms.items():
            if room in self.sockets:
                continue
            count = sum(1 for socket in members if socket.connected)
            if count:
                counts[room] = count
        return counts

    # -- delivery -------------------------------------------------------------------

    def deliver(
        self,
        packets: list[EnginePacket],
        rooms: tuple[str, ...] | None,
        skip: str | None,
        *,
        skip_rooms: tuple[str, ...] = (),
        volatile: bool = False,
    ) -> int:
        """Queue ``packets`` for this process's sockets in ``rooms`` (all: ``None``)
        but ``skip`` and the members of ``skip_rooms``, and with ``volatile`` but
        those that cannot take them now (see the module); never waits.
        Returns how many sockets got them."""
        targets = self._targets(rooms)
        if skip_rooms or volatile:
            targets = self._filter(targets, skip, skip_rooms, volatile)
        sent = 0
        for socket in targets:
            if socket.sid != skip and socket.connected and socket.session.send_nowait(packets):
                sent += 1
        return sent

    def broadcast(
        self,
        parts: list[str | bytes],
        rooms: tuple[str, ...] | None,
        skip: str | None,
        *,
        skip_rooms: tuple[str, ...] = (),
        volatile: bool = False,
        offset: str | None = None,
    ) -> int:
        """:meth:`deliver` an encoded event sent without an ack; with recovery
        on, it is logged first, and goes out with its offset (a volatile one
        is neither: it may be dropped, so it is not owed to anyone).
        ``offset``: the one its origin gave a broadcast of another process."""
        store = self.recovery
        if store is None or volatile:
            packets = to_engine(parts)
        else:
            packets = store.record(parts, rooms, skip, skip_rooms, offset=offset, shared=True)
        return self.deliver(packets, rooms, skip, skip_rooms=skip_rooms, volatile=volatile)

    def _filter(
        self, targets: Iterable[M], skip: str | None, skip_rooms: tuple[str, ...], volatile: bool
    ) -> list[M]:
        """``targets`` but the members of ``skip_rooms`` and, when ``volatile``,
        the connected ones whose session cannot take a packet now (counted)."""
        left_out: set[M] = set()
        for room in skip_rooms:
            left_out.update(self._room(room))
        kept: list[M] = []
        for socket in targets:
            if socket in left_out or socket.sid == skip:
                continue
            if volatile and socket.connected and not socket.session.writable:
                self.volatile_dropped += 1
                continue
            kept.append(socket)
        return kept

    async def publish(
        self,
        parts: list[str | bytes],
        rooms: tuple[str, ...] | None,
        skip: str | None,
        *,
        skip_rooms: tuple[str, ...] = (),
        volatile: bool = False,
    ) -> None:
        """Hand a broadcast (encoded ``parts``) to the other processes, through the broker."""
        if self._publish is None:
            return
        # The offset :meth:`broadcast` just gave it (no wait in between):
        # every process logs it under that one (gosf._socketio.handover).
        store = self.recovery
        offset = None if store is None or volatile else store.position()
        broadcast = Broadcast(
            self.name,
            tuple(parts),
            rooms,
            skip,
            skip_rooms=skip_rooms,
            volatile=volatile,
            offset=offset,
        )
        observer = self.observer
        if observer is None:
            await self._publish(broadcast)
            return
        started = time.perf_counter()
        try:
            await self._publish(broadcast)
        except Exception:
            observer.published(self.name, time.perf_counter() - started, True)
            raise
        observer.published(self.name, time.perf_counter() - started, False)

    def receive(self, broadcast: Broadcast) -> int:
        """Deliver a broadcast another process published; how many sockets got it."""
        return self.broadcast(
            list(broadcast.parts),
            broadcast.rooms,
            broadcast.skip,
            skip_rooms=broadcast.skip_rooms,
            volatile=broadcast.volatile,
            offset=broadcast.offset,
        )

    def _targets(self, to: str | Iterable[str] | None) -> Iterable[M]:
        if to is None:
            return list(self.sockets.values())
        if isinstance(to, str):
            return self._room(to)
        if isinstance(to, tuple) and len(to) == 1:
            return self._room(to[0])
        members: set[M] = set()
        for room in to:
            members.update(self._room(room))
        return members

    def _room(self, room: str) -> list[M]:
        """The sockets in ``room``: those that joined it, and its owner while in it."""
        members = self.rooms.get(room)
        owner = self.sockets.get(room)
        if owner is not None and room in self._own:
            return [owner, *members] if members else [owner]
        return list(members) if members else []
