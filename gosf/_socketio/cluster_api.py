"""The cluster-wide methods of :class:`gosf.SocketIOServer`: what a server
asks of, or does to, the sockets of every process of its cluster.

Room counts and socket counts, commands to one socket wherever it is
connected, socket queries and room actions (Node's ``fetchSockets``,
``socketsJoin``, ``socketsLeave``, ``disconnectSockets``), server-side
events between the processes (``serverSideEmit``) and broadcasts that
collect every recipient's ack. Each is a thin, typed front on the server's
:class:`~gosf._socketio.node.ClusterNode`, which answers this process's
part and asks the others through the broker (``queries.py``, ``acks.py``
and ``serverside.py`` hold the rules). :class:`ClusterMethods` is mixed
into the server; it needs only the three attributes it declares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar

from ..brokers import (
    DEFAULT_QUERY_TIMEOUT,
    FetchSockets,
    RoomsCommand,
    SocketCommand,
    SocketInfo,
)
from ..protocol.parser import Parser
from .acks import AckStream, BroadcastAcks
from .adapter import Adapter
from .namespace import Namespace
from .node import ClusterNode
from .queries import room_names
from .serverside import ServerSideAcks
from .socket import Socket

__all__ = ("ClusterMethods",)

F = TypeVar("F", bound=Callable[..., Any])


class ClusterMethods:
    """The server's methods on the sockets of the whole cluster (see the module)."""

    # What the server gives these methods (gosf._socketio.server.SocketIOServer).
    _node: ClusterNode
    namespaces: dict[str, Namespace]
    parser: Parser

    # -- counts and one socket (gosf._socketio.node) ------------------------------------------

    async def cluster_rooms(
        self,
        namespace: str = "/",
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> dict[str, int]:
        """Every room of ``namespace`` in the cluster with its number of members.

        Sockets' own rooms (their sids) are left out. Processes that do not
        answer within ``timeout`` seconds are left out too (see
        :meth:`gosf.brokers.Broker.query`).

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        return await self._node.rooms(namespace, timeout)

    async def cluster_socket_count(
        self,
        namespace: str = "/",
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """The number of sockets connected to ``namespace`` in the cluster.

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        return await self._node.socket_count(namespace, timeout)

    async def command_socket(
        self,
        op: str,
        sid: str,
        room: str | None = None,
        *,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> bool:
        """``disconnect``, ``join`` or ``leave`` (``room``) the socket ``sid`` of
        ``namespace``, in whichever process it is connected; whether one had it.

        Raises:
            ValueError: an unknown ``op``, ``join``/``leave`` without a room,
                or ``timeout`` is not positive.
        """
        command = SocketCommand(op, sid, room, namespace)  # type: ignore[arg-type]  # checked there
        return await self._node.command(command, timeout)

    def on_server_side(self, event: str, *, namespace: str = "/") -> Callable[[F], F]:
        """Decorator: register ``async def handler(*args)`` for the server-side
        event ``event`` that *other* processes of the cluster send
        (:meth:`server_side_emit`); its return value answers
        :meth:`server_side_emit_with_ack`.

        Raises:
            ValueError: the event already has a handler.
            TypeError: ``handler`` is not an ``async def`` function.
        """

        def register(handler: F) -> F:
            self._node.server_side.on(namespace, event, handler)
            return handler

        return register

    async def server_side_emit(
        self,
        event: str,
        *args: Any,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """Send ``event`` with ``args`` (JSON-serialisable) to the server-side
        handlers of every *other* process of the cluster (Node's
        ``serverSideEmit``); how many processes took it (have a handler).

        Returns once every process has said whether it took it, or after
        ``timeout`` seconds; it does not wait for the handlers.

        Raises:
            ValueError: ``timeout`` is not positive.
            TypeError: ``args`` cannot be encoded to cross processes.
        """
        return await self._node.server_side.emit(namespace, event, args, timeout)

    async def server_side_emit_with_ack(
        self,
        event: str,
        *args: Any,
        timeout: float,  # noqa: ASYNC109
        namespace: str = "/",
    ) -> ServerSideAcks:
        """Like :meth:`server_side_emit`, and gather what each other process's
        handler returns (Node's ``serverSideEmitWithAck``), for at most
        ``timeout`` seconds in all: the answers by node id, and how many
        processes took the event but did not answer in time.

        Raises:
            ValueError: ``timeout`` is not positive.
            TypeError: ``args`` cannot be encoded to cross processes.
        """
        return await self._node.server_side.emit_with_ack(namespace, event, args, timeout)

    # -- many sockets at once, here and in the cluster (queries.py, acks.py) ------------------

    def _adapter(self, namespace: str) -> Adapter[Socket]:
        """The adapter of ``namespace``; an empty one when this process has not
        made it (the other processes may have)."""
        ns = self.namespaces.get(namespace)
        return ns.adapter if ns is not None else Adapter(namespace)

    async def fetch_sockets(
        self,
        rooms: str | Iterable[str] | None = None,
        *,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> list[SocketInfo]:
        """The connected sockets of the cluster in any of ``rooms`` (``None``: all)
        but those in any of ``skip_rooms``, this process's first (Node's
        ``fetchSockets``); processes that do not answer within ``timeout``
        seconds are left out.

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        query = FetchSockets(namespace, room_names(rooms), room_names(skip_rooms) or ())
        return await self._node.fetch_sockets(query, timeout)

    async def sockets_join(
        self,
        room: str | Iterable[str],
        *,
        rooms: str | Iterable[str] | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """Put the sockets of the cluster that ``rooms`` and ``skip_rooms`` select
        (as :meth:`fetch_sockets`) in ``room`` (one or several); how many
        (Node's ``socketsJoin``).

        Raises:
            ValueError: no room to join, or ``timeout`` is not positive.
        """
        return await self._rooms_command(
            "sockets-join", room, rooms, skip_rooms, namespace, timeout
        )

    async def sockets_leave(
        self,
        room: str | Iterable[str],
        *,
        rooms: str | Iterable[str] | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """Take the sockets of the cluster that ``rooms`` and ``skip_rooms`` select
        out of ``room`` (one or several; never their own); how many (Node's
        ``socketsLeave``).

        Raises:
            ValueError: no room to leave, or ``timeout`` is not positive.
        """
        return await self._rooms_command(
            "sockets-leave", room, rooms, skip_rooms, namespace, timeout
        )

    async def disconnect_sockets(
        self,
        rooms: str | Iterable[str] | None = None,
        *,
        close: bool = False,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109
    ) -> int:
        """Disconnect the sockets of the cluster that ``rooms`` and ``skip_rooms``
        select from ``namespace`` or, with ``close``, close their clients'
        whole connections; how many (Node's ``disconnectSockets``).

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        command = RoomsCommand(
            "sockets-disconnect",
            namespace,
            room_names(rooms),
            room_names(skip_rooms) or (),
            close=close,
        )
        return await self._node.rooms_command(command, timeout)

    async def _rooms_command(
        self,
        op: Literal["sockets-join", "sockets-leave"],
        to: str | Iterable[str],
        rooms: str | Iterable[str] | None,
        skip_rooms: str | Iterable[str] | None,
        namespace: str,
        timeout: float,  # noqa: ASYNC109
    ) -> int:
        targets = room_names(to) or ()
        command = RoomsCommand(
            op, namespace, room_names(rooms), room_names(skip_rooms) or (), targets
        )
        return await self._node.rooms_command(command, timeout)

    def stream_acks(
        self,
        event: str,
        *args: Any,
        timeout: float,
        to: str | Iterable[str] | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
    ) -> AbstractAsyncContextManager[AckStream]:
        """Broadcast ``event`` to the cluster's sockets in ``to`` (``None``: all) but
        those in ``skip_rooms``, asking each for an ack within ``timeout``
        seconds; ``async with`` it for the :class:`AckStream` of their answers,
        ``(sid, answer)`` as they come. Leaving the block stops the collection.

        Raises:
            ValueError: ``timeout`` is not positive.
            LocalProtocolError: the parser cannot carry ``args`` (nothing was sent).
        """
        rooms = room_names(to)
        adapter = self._adapter(namespace)
        return self._node.acks.stream(
            adapter, self.parser, event, args, rooms, room_names(skip_rooms) or (), timeout
        )

    async def emit_with_ack(
        self,
        event: str,
        *args: Any,
        timeout: float,  # noqa: ASYNC109
        to: str | Iterable[str] | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        namespace: str = "/",
    ) -> BroadcastAcks:
        """:meth:`stream_acks`, gathered: every answer by sid, and who did not answer,
        once all have answered (or disconnected) or ``timeout`` has passed.

        Raises:
            ValueError: ``timeout`` is not positive.
            LocalProtocolError: the parser cannot carry ``args`` (nothing was sent).
        """
        rooms = room_names(to)
        adapter = self._adapter(namespace)
        return await self._node.acks.collect(
            adapter, self.parser, event, args, rooms, room_names(skip_rooms) or (), timeout
        )
