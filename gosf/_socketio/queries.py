"""Sockets selected by rooms, described and acted on: Node's ``fetchSockets``,
``socketsJoin``, ``socketsLeave`` and ``disconnectSockets``, in this process.

A selection is the connected sockets of a namespace in any of ``rooms``
(``None``: every one) but those in any of ``skip_rooms``. The same
selection answers this process's own calls and the queries of the other
processes (:class:`gosf.brokers.FetchSockets`, :class:`gosf.brokers.RoomsCommand`,
answered by ``gosf._socketio.node``), so a socket is chosen the same way
whichever process asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from .._engineio.http import query_params
from ..brokers import RoomsCommand, SocketInfo
from ..protocol.session import CloseReason
from .adapter import Adapter
from .socket import Socket

__all__ = ("SocketInfo", "act", "describe", "room_names", "select")


def room_names(rooms: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """``rooms`` as a query carries them: ``None`` (every socket) or a tuple of names."""
    if rooms is None:
        return None
    return (rooms,) if isinstance(rooms, str) else tuple(rooms)


def select(
    adapter: Adapter[Socket], rooms: tuple[str, ...] | None, skip_rooms: tuple[str, ...] = ()
) -> list[Socket]:
    """The connected sockets in any of ``rooms`` (``None``: all) but those in any
    of ``skip_rooms``, each once, in no particular order."""
    if rooms is None:
        chosen = adapter.members(None)
    else:
        seen: dict[str, Socket] = {}
        for room in rooms:
            for socket in adapter.members(room):
                seen[socket.sid] = socket
        chosen = list(seen.values())
    if not skip_rooms:
        return chosen
    excluded = {socket.sid for room in skip_rooms for socket in adapter.members(room)}
    return [socket for socket in chosen if socket.sid not in excluded]


def _serialisable(state: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``state`` that JSON can carry (string keys, encodable
    values), as JSON carries them: a ``datetime`` reads as its string here too,
    so a socket reads the same whichever process asks."""
    kept: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            continue
        try:
            kept[key] = orjson.loads(orjson.dumps(value))
        except TypeError:
            continue
    return kept


def describe(socket: Socket, node: str) -> SocketInfo:
    """A snapshot of ``socket`` (held by the process ``node``) for a socket query."""
    session = socket.session
    return SocketInfo(
        sid=socket.sid,
        namespace=socket.namespace.name,
        rooms=socket.rooms,
        node=node,
        headers=socket.headers,
        query=query_params(session.scope),
        auth=dict(socket.auth),
        address=socket.remote_address,
        data=_serialisable(socket.state),
    )


def act(adapter: Adapter[Socket], command: RoomsCommand) -> int:
    """Carry out ``command`` on this process's sockets it selects; how many.

    A leave never takes a socket out of its own room (it stays reachable by
    its sid, as with ``SocketCommand``). A disconnection with ``close``
    closes the client's whole connection, its other namespaces included
    (Node's ``disconnectSockets(true)``); without, it leaves this namespace.
    """
    sockets = select(adapter, command.rooms, command.skip_rooms)
    for socket in sockets:
        if command.op == "sockets-join":
            for room in command.to:
                socket.join(room)
        elif command.op == "sockets-leave":
            for room in command.to:
                adapter.remove_joined(socket, room)
        else:
            socket.disconnect()
            if command.close:
                socket.session.close(CloseReason.SERVER_DISCONNECT)
    return len(sockets)
