"""GOSF's request/response cycle: one request, from the client's event to the response.

The cycle, in the order a request lives it::

    client emits  endpoint, payload[, ack]
    ├─ unknown endpoint      → ack NOT_FOUND (when an ack was asked for)
    ├─ payload not a Message → BAD_REQUEST failure, as event and ack
    ├─ body not the declared model → BAD_REQUEST failure with the error list
    └─ on_before_request(client, request)
       controller(client, request) → Message | None   (INTERNAL_ERROR if it raises,
                                                      or returns anything else)
                                  → its declared model: a successful Message
                                    (INTERNAL_ERROR if it does not fit)
       on_after_request(client, request, response)
       ├─ None    → an empty ack, no event
       └─ Message → id/guid/uuid copied from the request unless set;
                    on_before_response; event ``endpoint`` + ack (meta stripped),
                    INTERNAL_ERROR instead when JSON cannot carry it;
                    on_after_response once both were written out

The declared models (``typed.py``) are read when the endpoint is routed.

Everything above runs in the client's own task group: when it disconnects, the
request is cancelled, hooks included, and ``on_disconnect`` runs after.

:class:`RequestCycle` is what :class:`gosf.App` hands the Socket.IO server:
its ``dispatch`` serves every event of namespace ``"/"``, its ``connected`` and
``disconnected`` keep the app's clients. It holds the routes (endpoint →
controller) and sees the app only as a :class:`CycleHost`, since the app
module builds the cycle and this one cannot import it back.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
from pydantic import BaseModel, ValidationError

from .._errors import MessageError
from .._socketio.server import SocketIOServer
from .._socketio.socket import Socket
from ..protocol.errors import LocalProtocolError
from .client import Client, ClientHost, Request
from .hooks import Hooks, check_signature
from .message import Message
from .typed import EndpointTypes, ResponseError, endpoint_types, invalid_body, typed_response

__all__ = (
    "BAD_REQUEST",
    "INTERNAL_ERROR",
    "NOT_FOUND",
    "RESERVED_ENDPOINTS",
    "Controller",
    "CycleHost",
    "RequestCycle",
)

log = logging.getLogger("gosf")

Controller = Callable[
    [Client, Request[Any]],
    Awaitable[Message | BaseModel | None] | Message | BaseModel | None,
]
"""``async def controller(client, request) -> Message | None``.

A plain ``def`` controller runs in a worker thread. ``request: Request[Model]``
declares the body's model, a return annotation ``-> Model | Message`` the
response body's (``typed.py``)."""

CONTROLLER_ARGUMENTS = ("client", "request")
"""What a controller is called with, by position."""

RESERVED_ENDPOINTS = frozenset(
    {"connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"}
)

NOT_FOUND = "NOT_FOUND"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL_ERROR = "INTERNAL_ERROR"


class CycleHost(ClientHost, Protocol):
    """What the cycle needs of its app (:class:`gosf.App` is one): what a
    :class:`Client` needs (``to_wire``, ``broadcast``), and the server, which
    logs the responses JSON cannot carry."""

    @property
    def server(self) -> SocketIOServer:
        """The app's Socket.IO server (replaced when the app is configured again)."""
        ...


class RequestCycle:
    """The app's routes and connected clients, and the cycle that serves a request.

    ``endpoints`` and ``clients`` are the app's own (:attr:`gosf.App.endpoints`,
    :attr:`gosf.App.clients`); ``hooks`` are shared with it.
    """

    def __init__(self, host: CycleHost, hooks: Hooks) -> None:
        self._host = host
        self.hooks = hooks
        self.endpoints: dict[str, Controller] = {}
        self.clients: dict[str, Client] = {}
        self._threaded: set[str] = set()  # endpoints whose controller is a plain def
        self.types: dict[str, EndpointTypes] = {}
        """What each endpoint's controller declares (its body models)."""
        # The endpoints that declare a model, by what they declare: looked up per request.
        self._bodies: dict[str, EndpointTypes] = {}

    def route(self, endpoint: str, controller: Controller) -> None:
        """Route ``endpoint`` to ``controller`` (see :meth:`gosf.App.listen`).

        Raises:
            ValueError: ``endpoint`` already has a controller, or is a name
                Socket.IO reserves.
            TypeError: ``controller`` is not callable, or cannot be called as
                ``controller(client, request)``, or declares a body that is
                not a model (see :func:`~gosf._application.typed.endpoint_types`).
        """
        if not isinstance(endpoint, str) or not endpoint:
            raise ValueError(f"an endpoint is a non-empty string, got {endpoint!r}")
        if endpoint in RESERVED_ENDPOINTS:
            raise ValueError(f"{endpoint!r} is reserved by Socket.IO; pick another endpoint name")
        if endpoint in self.endpoints:
            raise ValueError(f"endpoint {endpoint!r} already has a controller")
        if not callable(controller):
            raise TypeError(f"the controller of {endpoint!r} must be callable")
        check_signature(
            controller,
            CONTROLLER_ARGUMENTS,
            f"the controller of {endpoint!r}",
            "async def controller(client, request) -> gosf.Message | None",
        )
        declared = endpoint_types(endpoint, controller)
        self.endpoints[endpoint] = controller
        self.types[endpoint] = declared
        if declared.body is not None or declared.response is not None:
            self._bodies[endpoint] = declared
        if not _is_async(controller):
            self._threaded.add(endpoint)

    async def dispatch(
        self, socket: Socket, endpoint: str, args: list[Any], ack_id: int | None
    ) -> None:
        """Serve one event of ``socket``: the whole cycle drawn above."""
        client = self.clients.get(socket.sid)
        if client is None:  # disconnected meanwhile
            return
        controller = self.endpoints.get(endpoint)
        if controller is None:
            if ack_id is not None:
                await socket.ack(ack_id, self._host.to_wire(Message.failure(NOT_FOUND)))
            return
        payload = args[0] if args else None
        try:
            message = Message.parse(payload)
        except MessageError as exc:
            failure = Message.failure(BAD_REQUEST, {"reason": exc.reason})
            if isinstance(payload, dict) and type(payload.get("id")) is int:
                failure.id = payload["id"]
            await socket.emit_and_ack(endpoint, self._host.to_wire(failure, client), ack_id)
            return
        declared = self._bodies.get(endpoint)
        body: Any = message.body
        if declared is not None and declared.body is not None:
            try:
                body = declared.body.validate(body)
            except ValidationError as exc:
                # At the edge: neither the hooks nor the controller see it.
                failure = _with_request_ids(invalid_body(exc), message)
                await socket.emit_and_ack(endpoint, self._host.to_wire(failure, client), ack_id)
                return
        request: Request[Any] = Request(
            endpoint, message, client, ack_id is not None, tuple(args[1:]), body=body
        )
        hooks = self.hooks
        registered = hooks.registered  # a hook without callbacks is skipped, not run
        response: Message | None = None
        returned: object
        try:
            if registered["on_before_request"]:
                await hooks.run("on_before_request", client, request)
            if endpoint in self._threaded:
                returned = await anyio.to_thread.run_sync(controller, client, request)
                if not socket.connected:
                    # The client left while the thread ran (a thread cannot be
                    # cancelled): its late result, and the hooks, are dropped.
                    return
            else:
                returned = await controller(client, request)  # type: ignore[misc]
            if returned is not None:
                if declared is not None and declared.response is not None:
                    response = typed_response(endpoint, declared.response, returned, message)
                elif isinstance(returned, Message):
                    response = returned
                else:
                    raise _NotAMessage(endpoint, returned)
                response = _with_request_ids(response, message)
            if registered["on_after_request"]:
                await hooks.run("on_after_request", client, request, response)
        except (_NotAMessage, ResponseError) as exc:
            # The controller's mistake, the same at every call: the line says
            # what to return instead; a traceback would point into gosf.
            log.error("%s (client %s); the client got %s", exc, socket.sid, INTERNAL_ERROR)
            response = _with_request_ids(Message.failure(INTERNAL_ERROR), message)
        except Exception:
            log.exception("request to %r failed (client %s)", endpoint, socket.sid)
            response = _with_request_ids(Message.failure(INTERNAL_ERROR), message)
        if response is None:
            if ack_id is not None:
                await socket.ack(ack_id)
            return
        if registered["on_before_response"]:
            await hooks.run("on_before_response", client, request, response)
        wire = self._host.to_wire(response, client)
        try:
            await socket.emit_and_ack(endpoint, wire, ack_id)  # GOSF: as an event and as the ack
        except LocalProtocolError as exc:
            # JSON cannot carry the response (a set, a Decimal, a client's
            # body nested too deeply, echoed): nothing was sent, so the
            # client gets the failure instead of waiting for an answer.
            self._host.server.log_unencodable("response", endpoint, socket.sid, exc, INTERNAL_ERROR)
            response = _with_request_ids(Message.failure(INTERNAL_ERROR), message)
            await socket.emit_and_ack(endpoint, self._host.to_wire(response, client), ack_id)
        if registered["on_after_response"]:
            await socket.flush()  # "after the response was sent" means written out
            await hooks.run("on_after_response", client, request, response)

    async def connected(self, socket: Socket, auth: dict[str, Any]) -> None:
        """A client connected: run ``on_connect``, then count it among the clients.

        Raises:
            gosf.ConnectionRefused: an ``on_connect`` hook refused the client.
        """
        client = Client(self._host, socket)
        request = Request("connect", Message(), client)
        await self.hooks.run("on_connect", client, request)  # may raise ConnectionRefused
        self.clients[socket.sid] = client

    async def recovered(self, socket: Socket) -> None:
        """A client took back its session (``Recovery.skip_connect_handlers``:
        ``on_connect`` does not run again); its state is the session's."""
        self.clients[socket.sid] = Client(self._host, socket)

    async def disconnected(self, socket: Socket, reason: str) -> None:
        """A client disconnected: forget it, then run ``on_disconnect``."""
        client = self.clients.pop(socket.sid, None)
        if client is not None:
            request = Request("disconnect", Message(), client, reason=reason)
            await self.hooks.run("on_disconnect", client, request)


class _NotAMessage(Exception):
    """A controller returned something other than a :class:`Message` or ``None``.

    A plain dict is refused too, not taken for a message: it could as well be
    meant as the body, and a response is a GOSF message (docs/guide.md).
    """

    def __init__(self, endpoint: str, response: object) -> None:
        super().__init__(
            f"the controller of {endpoint!r} returned a {type(response).__name__}: "
            "a gosf.Message is required (gosf.Message.success(text, body), "
            "gosf.Message.failure(text, body)), or None for no response"
        )


def _with_request_ids(response: Message, request: Message) -> Message:
    """``response`` with the request's id/guid/uuid where the controller set none.

    A copy when anything changes, so a Message the controller reuses (a
    module-level constant, say) stays as it is.
    """
    fields = response.__dict__
    ids: dict[str, Any] = {}
    if fields["id"] is None and request.id is not None:
        ids["id"] = request.id
    if not fields["guid"] and request.guid:
        ids["guid"] = request.guid
    if not fields["uuid"] and request.uuid:
        ids["uuid"] = request.uuid
    return response.model_copy(update=ids) if ids else response


def _is_async(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
