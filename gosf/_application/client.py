"""A connected client and a request, as GOSF controllers and hooks see them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol

import anyio.from_thread
from typing_extensions import TypeVar

from .._engineio.http import query_params
from .._socketio.socket import Socket
from .message import Message

__all__ = ("Body", "Client", "ClientHost", "Request")

Body = TypeVar("Body", default=dict[str, Any])
"""What ``request.body`` is: the model a controller declares with
``gosf.Request[Model]``; by default the message's body, a dict."""


class ClientHost(Protocol):
    """What a :class:`Client` needs of its app (:class:`gosf.App` is one).

    A protocol rather than the app itself: the app module builds clients, so
    this module cannot import it back.
    """

    def to_wire(self, message: Message, client: Client | None = None) -> dict[str, Any]:
        """``message`` as sent to ``client`` (``None``: as broadcast to every client)."""
        ...

    async def broadcast(
        self,
        room: str,
        endpoint: str,
        message: Message,
        *,
        sender: Client | None = None,
        skip_rooms: str | Iterable[str] | None = None,
    ) -> None:
        """Send ``message`` to every client in ``room``; ``sender`` and the
        clients in ``skip_rooms`` are left out."""
        ...


class Client:
    """One connected client, for the life of its connection.

    The same object is handed to every controller and hook of that client, so
    room membership and :attr:`state` persist across requests (GOSF rebuilt it
    per request and lost both).
    """

    __slots__ = ("_app", "_loop_thread", "_socket", "expose_meta", "state")

    def __init__(self, app: ClientHost, socket: Socket) -> None:
        self._app = app
        self._socket = socket
        # Made on the event loop's thread (the app's connect handler): a call
        # from any other thread is a sync controller's, carried over to it.
        self._loop_thread = threading.get_ident()
        self.state: dict[str, Any] = socket.state
        """Anything the app wants to keep for this client (user id, ...): the
        socket's own state, so a recovered connection has it back."""
        self.expose_meta: bool | None = None
        """Send ``meta`` to this client (e.g. a trusted service, decided in
        ``on_connect``); ``None`` follows the app's ``expose_meta``. Broadcasts
        always follow the app's setting (they are encoded once for all)."""

    def __repr__(self) -> str:
        return f"<gosf.Client sid={self.sid!r}>"

    @property
    def sid(self) -> str:
        """The client's Socket.IO id (what ``socket.id`` is in the browser)."""
        return self._socket.sid

    @property
    def socket(self) -> Socket:
        """The low-level socket, for what GOSF has no word for."""
        return self._socket

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """The peer's ``(host, port)`` as the ASGI server saw it (``None`` when unknown)."""
        return self._socket.remote_address

    @property
    def headers(self) -> dict[str, str]:
        """Headers of the request that opened the connection (lower-case names)."""
        return self._socket.headers

    @property
    def query(self) -> dict[str, str]:
        """Query parameters of the request that opened the connection."""
        return query_params(self._socket.session.scope)

    @property
    def auth(self) -> Mapping[str, Any]:
        """The connect payload (Socket.IO 5 ``auth``; the query for socket.io 2.x clients)."""
        return self._socket.auth

    @property
    def transport(self) -> str:
        """``"websocket"`` or ``"polling"``: the transport the client uses now."""
        return self._socket.transport

    @property
    def connected(self) -> bool:
        """Whether the client is still connected."""
        return self._socket.connected

    @property
    def recovered(self) -> bool:
        """Whether this connection took back a session that dropped, with its
        rooms, state and the events it missed (see :class:`gosf.Recovery`)."""
        return self._socket.recovered

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this client has joined."""
        sid = self._socket.sid
        return frozenset(room for room in self._socket.rooms if room != sid)

    # join, leave, leave_all and disconnect change the server's shared state: a
    # plain-def controller runs in a worker thread, so from there they are
    # carried out on the event loop's thread (anyio.from_thread).

    def join(self, room: str) -> None:
        """Join ``room`` (GOSF's ``Client.Join``); safe from a sync controller's thread."""
        self._on_loop(self._socket.join, room)

    def leave(self, room: str) -> None:
        """Leave ``room``; leaving a room one is not in does nothing."""
        if room != self._socket.sid:
            self._on_loop(self._socket.leave, room)

    def leave_all(self) -> None:
        """Leave every room joined (GOSF's ``Client.LeaveAll``)."""
        self._on_loop(self._leave_all)

    def _leave_all(self) -> None:
        for room in self.rooms:
            self._socket.leave(room)

    async def emit(self, endpoint: str, message: Message) -> None:
        """Send ``message`` to this client as an ``endpoint`` event."""
        await self._socket.emit(endpoint, self._app.to_wire(message, self))

    async def broadcast(
        self,
        room: str,
        endpoint: str,
        message: Message,
        *,
        skip_rooms: str | Iterable[str] | None = None,
    ) -> None:
        """Send to every client in ``room`` but this one (``""``: every client but this one)
        and those in any of the rooms ``skip_rooms``.

        Runs the ``on_before_client_broadcast`` and ``on_after_client_broadcast`` hooks.
        """
        await self._app.broadcast(room, endpoint, message, sender=self, skip_rooms=skip_rooms)

    def disconnect(self) -> None:
        """Disconnect this client (its in-flight requests are cancelled)."""
        self._on_loop(self._socket.disconnect)

    def _on_loop(self, func: Callable[..., None], *args: Any) -> None:
        """Call ``func(*args)`` on the event loop's thread, from it or from a
        worker thread of ``anyio.to_thread`` (where a sync controller runs)."""
        if threading.get_ident() == self._loop_thread:
            func(*args)
        else:
            anyio.from_thread.run_sync(func, *args)


@dataclass(slots=True)
class Request(Generic[Body]):
    """What a controller is asked: the endpoint and the parsed :class:`Message`.

    ``request: gosf.Request[OrderIn]`` declares the body's model: the body is
    validated before the controller is called, and ``request.body`` is the
    ``OrderIn`` (``gosf/_application/typed.py``).

    Connect and disconnect hooks get a request whose ``endpoint`` is
    ``"connect"``/``"disconnect"``; the disconnect one carries ``reason``.
    """

    endpoint: str
    """The event the client emitted (``"connect"``/``"disconnect"`` for those hooks)."""
    message: Message
    """The request's message, parsed and validated."""
    client: Client
    """The client that sent it."""
    ack: bool = False
    """Whether the client asked for an acknowledgement."""
    args: tuple[Any, ...] = ()
    """Arguments after the message, if the client sent more than one."""
    reason: str | None = None
    """Why the client left, for ``on_disconnect``: a :class:`gosf.CloseReason` or
    :class:`gosf.DisconnectReason` (each a string); ``None`` otherwise."""
    state: dict[str, Any] = field(default_factory=dict)
    """Per-request scratch space for hooks and controllers."""
    body: Body = field(default_factory=dict)  # type: ignore[assignment]
    """The body: validated into the declared model (``gosf.Request[Model]``),
    else ``message.body`` itself."""
