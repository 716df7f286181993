"""This process as one node of a cluster: what it asks the others, and answers them.

The broker carries three things between the processes of a cluster
(``gosf.brokers``): broadcasts, which each namespace's adapter publishes
(``Broker.publish``) and :meth:`ClusterNode.deliver` hands to the adapter
here; queries about rooms and sockets, which :meth:`ClusterNode.answer`
answers for this process's sockets; and commands for one socket
(disconnect, join, leave), carried as queries too, answered by whichever
process has the socket. Server-side events (events between the processes
themselves) travel as queries too, and their answers as direct messages
(``gosf._socketio.serverside``). Queries of many sockets at once, selected
by rooms (``gosf._socketio.queries``), and broadcasts with acks
(``gosf._socketio.acks``, whose acks come back as direct messages too) are
answered here as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import assert_never

from ..brokers import (
    AckBroadcast,
    AckRecipients,
    AnyAnswer,
    AnyQuery,
    Broadcast,
    Broker,
    CommandResult,
    CountQuery,
    FetchSockets,
    RoomCounts,
    RoomsCommand,
    RoomsQuery,
    ServerSideEvent,
    SocketCommand,
    SocketCount,
    SocketInfo,
    SocketList,
    TakeSession,
)
from .acks import Acks
from .acks_wire import ACK_MESSAGE
from .handover import hand_over
from .namespace import Namespace
from .observers import Observers
from .queries import act, describe, select
from .serverside import ServerSideEvents

__all__ = ("ClusterNode",)


class ClusterNode:
    """The server's side of its cluster, over its ``broker``, for its ``namespaces``."""

    __slots__ = ("acks", "broker", "forward", "namespaces", "observer", "server_side")

    def __init__(self, broker: Broker, namespaces: Mapping[str, Namespace]) -> None:
        self.broker = broker
        self.namespaces = namespaces
        self.observer: Observers | None = None
        """The server's observers, ``None`` while it has none (set by the server)."""
        self.server_side = ServerSideEvents(broker)
        """The server-side event handlers, and the calls waiting for answers."""
        self.acks = Acks(broker)
        """Broadcasts with acks, this process's and its part in the others'."""
        self.forward: Callable[[bytes], None] | None = None
        """Where the other direct messages go (the forwarder's inbox, set by the server)."""

    def inbox(self, data: bytes) -> None:
        """A direct message from another process: a broadcast's ack, a server-side
        event's answer, or else one for the forwarder."""
        if data.startswith(ACK_MESSAGE):
            self.acks.inbox(data)
        elif not self.server_side.receive(data) and self.forward is not None:
            self.forward(data)

    def deliver(self, broadcast: Broadcast) -> None:
        """A broadcast from another process: deliver it to this process's sockets."""
        ns = self.namespaces.get(broadcast.namespace)
        if ns is not None:
            sent = ns.adapter.receive(broadcast)
            if self.observer is not None:
                self.observer.delivered(broadcast.parts, broadcast.rooms, sent)

    async def rooms(self, namespace: str, timeout: float) -> dict[str, int]:  # noqa: ASYNC109
        """Every room of ``namespace`` in the cluster with its number of members
        (see ``SocketIOServer.cluster_rooms``)."""
        rooms: dict[str, int] = {}
        for answer in await self.broker.query(RoomsQuery(namespace), timeout):
            for room, count in answer.rooms.items():
                rooms[room] = rooms.get(room, 0) + count
        return rooms

    async def socket_count(self, namespace: str, timeout: float) -> int:  # noqa: ASYNC109
        """The number of sockets connected to ``namespace`` in the cluster."""
        answers = await self.broker.query(CountQuery(namespace), timeout)
        return sum(answer.count for answer in answers)

    async def command(self, command: SocketCommand, timeout: float) -> bool:  # noqa: ASYNC109
        """Carry out ``command`` in whichever process has its socket; whether one had it."""
        if self.answer(command) == CommandResult(True):
            return True  # most often here: no need to ask the others
        answers = await self.broker.query(command, timeout)
        return any(answer.found for answer in answers)

    async def fetch_sockets(self, query: FetchSockets, timeout: float) -> list[SocketInfo]:  # noqa: ASYNC109
        """The sockets of the cluster ``query`` selects, this process's first."""
        answers = await self.broker.query(query, timeout)
        return [socket for answer in answers for socket in answer.sockets]

    async def rooms_command(self, command: RoomsCommand, timeout: float) -> int:  # noqa: ASYNC109
        """Carry out ``command`` in every process; how many sockets it acted on."""
        answers = await self.broker.query(command, timeout)
        return sum(answer.count for answer in answers)

    def answer(self, query: AnyQuery) -> AnyAnswer | None:
        """Answer a cluster query for this process's sockets (``None``: no answer)."""
        ns = self.namespaces.get(query.namespace)
        match query:
            case RoomsQuery():
                return RoomCounts({} if ns is None else ns.adapter.room_counts())
            case CountQuery():
                return SocketCount(0 if ns is None else len(ns.members()))
            case SocketCommand(op=op, sid=sid, room=room):
                socket = ns.sockets.get(sid) if ns is not None else None
                if ns is None or socket is None or not socket.connected:
                    return CommandResult(False)
                if op == "disconnect":
                    socket.disconnect()
                elif op == "join" and room is not None:
                    socket.join(room)
                elif op == "leave" and room is not None:
                    ns.adapter.remove_joined(socket, room)
                return CommandResult(True)
            case ServerSideEvent():
                return self.server_side.answer(query)
            case FetchSockets(rooms=rooms, skip_rooms=skip_rooms):
                if ns is None:
                    return SocketList(())
                node = self.broker.node_id
                chosen = select(ns.adapter, rooms, skip_rooms)
                return SocketList(tuple(describe(socket, node) for socket in chosen))
            case RoomsCommand():
                return SocketCount(0 if ns is None else act(ns.adapter, query))
            case AckBroadcast():
                if ns is None:
                    return AckRecipients(self.broker.node_id, ())
                return self.acks.answer(ns.adapter, ns.parser, query)
            case TakeSession():
                return hand_over(None if ns is None else ns.adapter.recovery, query)
            case _:
                assert_never(query)
