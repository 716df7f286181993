"""Reaching an app's clients: broadcasts, the members of a room, and the whole cluster.

:class:`Broadcasting` is a base class of :class:`gosf.App` that carries these
methods of its public API; it is also what a :class:`gosf.Client` needs of its
app (a :class:`ClientHost`: ``to_wire`` and ``broadcast``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._config import Config
from .._socketio.acks import BroadcastAcks
from .._socketio.server import SocketIOServer
from ..brokers import DEFAULT_QUERY_TIMEOUT, SocketInfo
from .client import Client
from .hooks import Hooks
from .message import Message

__all__ = ("Broadcasting",)


class Broadcasting:
    """The part of :class:`gosf.App` that reaches its clients, here and in the cluster.

    It works on the app's server, configuration, hooks and clients, which
    :class:`gosf.App` sets; they are declared here so that each method's use
    of them is checked.
    """

    server: SocketIOServer
    config: Config
    hooks: Hooks
    clients: dict[str, Client]

    def members(self, room: str = "") -> list[Client]:
        """The clients in ``room`` (``""``: every client) in this process."""
        clients = self.clients
        return [
            client
            for socket in self.server.namespace(self.config.namespace).members(room or None)
            if (client := clients.get(socket.sid)) is not None
        ]

    # -- the whole cluster ----------------------------------------------------------
    #
    # Each asks every process of the cluster through the broker and waits for their
    # answers, at most ``timeout`` seconds; a process that does not answer in time
    # (Redis down, a process that went away) is left out, and none of them raises
    # because the broker cannot reach the others.

    async def cluster_rooms(
        self,
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> dict[str, int]:
        """Every room in the whole cluster with its number of clients.

        Clients' own rooms (their sids) are left out; so are processes that
        do not answer within ``timeout`` seconds.

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        return await self.server.cluster_rooms(self.config.namespace, timeout=timeout)

    async def cluster_client_count(
        self,
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> int:
        """The number of clients connected to the whole cluster (see :meth:`cluster_rooms`).

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        return await self.server.cluster_socket_count(self.config.namespace, timeout=timeout)

    async def disconnect_client(
        self,
        sid: str,
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> bool:
        """Disconnect the client ``sid``, wherever in the cluster it is connected.

        Returns whether some process had it (``False`` also when the process
        that has it did not answer within ``timeout`` seconds).

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        return await self.server.command_socket(
            "disconnect", sid, namespace=self.config.namespace, timeout=timeout
        )

    async def join_client(
        self,
        sid: str,
        room: str,
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> bool:
        """Have the client ``sid`` join ``room``, wherever in the cluster it is connected.

        Returns whether some process had it (see :meth:`disconnect_client`).

        Raises:
            ValueError: ``room`` is empty, or ``timeout`` is not positive.
        """
        return await self.server.command_socket(
            "join", sid, room, namespace=self.config.namespace, timeout=timeout
        )

    async def leave_client(
        self,
        sid: str,
        room: str,
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> bool:
        """Have the client ``sid`` leave ``room``, wherever in the cluster it is connected.

        Returns whether some process had it (see :meth:`disconnect_client`).

        Raises:
            ValueError: ``room`` is empty, or ``timeout`` is not positive.
        """
        return await self.server.command_socket(
            "leave", sid, room, namespace=self.config.namespace, timeout=timeout
        )

    # Many clients at once, chosen by room (``""``: every client), but those in
    # ``skip_rooms``: Node's fetchSockets, socketsJoin, socketsLeave and
    # disconnectSockets, across the cluster (see SocketIOServer.fetch_sockets).

    async def cluster_clients(
        self,
        room: str = "",
        *,
        skip_rooms: str | Iterable[str] | None = None,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> list[SocketInfo]:
        """The clients in ``room`` in the whole cluster, this process's first: each
        one's sid, rooms, handshake (headers, query, auth, address), process
        (``node``) and the entries of its ``state`` JSON can carry.

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        return await self.server.fetch_sockets(
            room or None, skip_rooms=skip_rooms, namespace=self.config.namespace, timeout=timeout
        )

    async def join_clients(
        self,
        room: str,
        into: str,
        *,
        skip_rooms: str | Iterable[str] | None = None,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> int:
        """Have every client of the cluster in ``room`` join the room ``into``; how many.

        Raises:
            ValueError: ``into`` is empty, or ``timeout`` is not positive.
        """
        if not into:
            raise ValueError("a room to join is needed")
        namespace = self.config.namespace
        return await self.server.sockets_join(
            into, rooms=room or None, skip_rooms=skip_rooms, namespace=namespace, timeout=timeout
        )

    async def leave_clients(
        self,
        room: str,
        out_of: str,
        *,
        skip_rooms: str | Iterable[str] | None = None,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> int:
        """Have every client of the cluster in ``room`` leave the room ``out_of``; how many.

        Raises:
            ValueError: ``out_of`` is empty, or ``timeout`` is not positive.
        """
        if not out_of:
            raise ValueError("a room to leave is needed")
        namespace = self.config.namespace
        return await self.server.sockets_leave(
            out_of, rooms=room or None, skip_rooms=skip_rooms, namespace=namespace, timeout=timeout
        )

    async def disconnect_clients(
        self,
        room: str = "",
        *,
        close: bool = False,
        skip_rooms: str | Iterable[str] | None = None,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> int:
        """Disconnect every client of the cluster in ``room``; how many. With
        ``close`` their connections close too (Node's ``disconnectSockets(true)``).

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        return await self.server.disconnect_sockets(
            room or None,
            close=close,
            skip_rooms=skip_rooms,
            namespace=self.config.namespace,
            timeout=timeout,
        )

    # -- broadcasts ---------------------------------------------------------------

    async def broadcast(
        self,
        room: str,
        endpoint: str,
        message: Message,
        *,
        sender: Client | None = None,
        skip_rooms: str | Iterable[str] | None = None,
    ) -> None:
        """Send ``message`` as an ``endpoint`` event to everyone in ``room`` (``""``: everyone).

        Clients in any of the rooms ``skip_rooms`` are left out, in every
        process of the cluster (Node's ``except``).

        Runs the ``on_before_broadcast``/``on_after_broadcast`` hooks with
        ``(endpoint, room, message)``. With a ``sender`` (what
        :meth:`Client.broadcast` does) that client is left out, and the
        ``on_before_client_broadcast``/``on_after_client_broadcast`` hooks
        run instead, with ``(sender, endpoint, room, message)``.

        Raises:
            TypeError: ``message`` is not a :class:`gosf.Message`.
        """
        hooks = self.hooks
        if sender is None:
            await hooks.run("on_before_broadcast", endpoint, room, message)
        else:
            await hooks.run("on_before_client_broadcast", sender, endpoint, room, message)
        await self.server.emit(
            endpoint,
            self.to_wire(message),
            to=room or None,
            namespace=self.config.namespace,
            skip=None if sender is None else sender.socket,
            skip_rooms=skip_rooms,
        )
        if sender is None:
            await hooks.run("on_after_broadcast", endpoint, room, message)
        else:
            await hooks.run("on_after_client_broadcast", sender, endpoint, room, message)

    async def broadcast_with_ack(
        self,
        room: str,
        endpoint: str,
        message: Message,
        *,
        timeout: float,  # noqa: ASYNC109 - bounds the collection
        skip_rooms: str | Iterable[str] | None = None,
    ) -> BroadcastAcks:
        """Send ``message`` as an ``endpoint`` event to everyone in ``room`` (``""``:
        everyone) in the cluster, asking each for an ack; every answer by sid,
        and who gave none within ``timeout`` seconds (see
        :meth:`gosf.SocketIOServer.emit_with_ack`). Runs the broadcast hooks
        as :meth:`broadcast` does, the after hook once the answers are in.

        Raises:
            TypeError: ``message`` is not a :class:`gosf.Message`.
            ValueError: ``timeout`` is not positive.
        """
        hooks = self.hooks
        await hooks.run("on_before_broadcast", endpoint, room, message)
        result = await self.server.emit_with_ack(
            endpoint,
            self.to_wire(message),
            timeout=timeout,
            to=room or None,
            skip_rooms=skip_rooms,
            namespace=self.config.namespace,
        )
        await hooks.run("on_after_broadcast", endpoint, room, message)
        return result

    def to_wire(self, message: Message, client: Client | None = None) -> dict[str, Any]:
        """``message`` as sent to ``client``: its ``meta`` kept or stripped as the
        client's ``expose_meta`` says, else as the app's (``None``: a broadcast,
        which follows the app's setting).

        Raises:
            TypeError: ``message`` is not a :class:`gosf.Message`.
        """
        if not isinstance(message, Message):
            raise TypeError(f"expected a gosf.Message, got {type(message).__name__}")
        expose = self.config.expose_meta
        if client is not None and client.expose_meta is not None:
            expose = client.expose_meta
        return message.to_wire(meta=expose)
