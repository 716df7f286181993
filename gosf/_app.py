"""The GOSF application: endpoints, the request/response cycle, broadcasts, plugins.

The request/response cycle, in the order a request lives it::

    client emits  endpoint, payload[, ack]
    ├─ unknown endpoint      → ack NOT_FOUND (when an ack was asked for)
    ├─ payload not a Message → BAD_REQUEST failure, as event and ack
    └─ on_before_request(client, request)
       controller(client, request) → Message | None   (INTERNAL_ERROR if it raises)
       on_after_request(client, request, response)
       ├─ None    → an empty ack, no event
       └─ Message → id/guid/uuid copied from the request unless set;
                    on_before_response; event ``endpoint`` + ack (meta stripped),
                    INTERNAL_ERROR instead when JSON cannot carry it;
                    on_after_response once both were written out

Everything above runs in the client's own task group: when it disconnects, the
request is cancelled, hooks included, and ``on_disconnect`` runs after.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

import anyio
from anyio.abc import TaskGroup

from . import brokers
from ._client import Client, Request
from ._config import Config
from ._errors import MessageError
from ._hooks import (
    AfterRequestHookRegistrar,
    BroadcastHookRegistrar,
    ClientBroadcastHookRegistrar,
    ClientHookRegistrar,
    Hooks,
    ResponseHookRegistrar,
)
from ._message import Message
from ._microservice import Microservice
from ._server import SocketIOServer
from ._signals import drain_first
from ._socket import Socket
from ._startup import serve
from ._transport._asgi import serve_lifespan
from .brokers import DEFAULT_QUERY_TIMEOUT
from .protocol.errors import LocalProtocolError
from .types import ASGIApp, Receive, Scope, Send

__all__ = ("App", "Controller", "Plugin", "plugin_name")

log = logging.getLogger("gosf")

Controller = Callable[[Client, Request], Awaitable[Message | None] | Message | None]
"""``async def controller(client, request) -> Message | None``.

A plain ``def`` controller runs in a worker thread."""

P = TypeVar("P")
C = TypeVar("C", bound=Controller)

RESERVED_ENDPOINTS = frozenset(
    {"connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"}
)
PLUGIN_DEACTIVATE_TIMEOUT = 10.0
"""Seconds one plugin's ``deactivate`` may take at shutdown."""

NOT_FOUND = "NOT_FOUND"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL_ERROR = "INTERNAL_ERROR"


@runtime_checkable
class Plugin(Protocol):
    """What :meth:`App.register_plugin` accepts: an object that registers hooks
    and offers methods to apps.

    A plugin has a ``name`` (defaults to its class name), ``activate(app)`` and
    ``deactivate(app)``; both may be coroutines. Plugins are activated in
    registration order when the app starts (inside the app's task group, so
    they may start background tasks with ``app.start_soon``) and deactivated
    in the reverse order when it stops.

    It lives with :class:`App` because each names the other.
    """

    def activate(self, app: App) -> Any: ...

    def deactivate(self, app: App) -> Any: ...


def plugin_name(plugin: Plugin) -> str:
    """The plugin's ``name``, or its class name when it has none."""
    name = getattr(plugin, "name", None)
    return name if isinstance(name, str) and name else type(plugin).__name__


def _hook(name: str, signature: str) -> Any:
    def register(self: App, callback: Callable[..., Any]) -> Callable[..., Any]:
        self.hooks.add(name, callback)
        return callback

    register.__name__ = name
    register.__doc__ = f"Register a ``{name}`` hook: ``callback{signature}`` (also a decorator)."
    return register


class App:
    """A GOSF application: what ``gosf.listen``, ``gosf.broadcast`` & co. act on.

    ``App`` is an ASGI application (``hypercorn module:app``); :meth:`startup`
    serves it directly. The module-level functions of :mod:`gosf` use a
    default instance, ``gosf.app``.

    ``broker`` (a :class:`gosf.brokers.Broker`, or a ``redis://`` URL as in
    the config) links the app to the other processes of a cluster.

    Raises:
        pydantic.ValidationError: ``config`` has unknown keys or wrong types.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | Config | None = None,
        *,
        other_app: ASGIApp | None = None,
        **options: Any,
    ) -> None:
        broker = options.pop("broker", None)
        if isinstance(broker, str):  # a URL: part of the configuration
            options["broker"] = broker
            broker = None
        self.config = Config.from_mapping(config, **options)
        self._other_app = other_app
        self._broker: brokers.Broker | None = broker
        self.server = self._make_server()
        self.endpoints: dict[str, Controller] = {}
        self.hooks = Hooks()
        self.plugins: dict[str, Plugin] = {}
        self.clients: dict[str, Client] = {}
        """The connected clients by sid (this process's)."""
        self.microservices: dict[str, Microservice] = {}
        """The registered microservices by name (GOSF's ``App.Microservices``)."""
        self._tg: TaskGroup | None = None
        self._threaded: set[str] = set()  # endpoints whose controller is a plain def

    def _make_server(self) -> SocketIOServer:
        server = SocketIOServer(
            self.config.server_options(),
            other_app=self._other_app,
            broker=self._broker or brokers.from_url(self.config.broker),
        )
        server.on_any(self._dispatch)
        server.on_connect(self._connected)
        server.on_disconnect(self._disconnected)
        return server

    def configure(self, config: Mapping[str, Any] | Config | None = None, **options: Any) -> None:
        """Replace the configuration (GOSF-style keys) before the app starts.

        Raises:
            pydantic.ValidationError: bad keys or values.
            RuntimeError: the app is running.
        """
        if self._tg is not None:
            raise RuntimeError("configure the app before it starts")
        self.config = Config.from_mapping(config, **options)
        self.server = self._make_server()

    def __repr__(self) -> str:
        return f"<gosf.App endpoints={sorted(self.endpoints)} plugins={sorted(self.plugins)}>"

    # -- registration -------------------------------------------------------------

    @overload
    def listen(self, endpoint: str) -> Callable[[C], C]: ...
    @overload
    def listen(self, endpoint: str, controller: C) -> C: ...

    def listen(self, endpoint: str, controller: C | None = None) -> Any:
        """Route ``endpoint`` to ``controller``.

        ``app.listen("echo", echo)``, or as a decorator: ``@app.listen("echo")``.

        Raises:
            ValueError: ``endpoint`` already has a controller, or is a name
                Socket.IO reserves.
            TypeError: ``controller`` is not callable.
        """
        if controller is None:
            return partial(self.listen, endpoint)
        if not isinstance(endpoint, str) or not endpoint:
            raise ValueError(f"an endpoint is a non-empty string, got {endpoint!r}")
        if endpoint in RESERVED_ENDPOINTS:
            raise ValueError(f"{endpoint!r} is reserved by Socket.IO; pick another endpoint name")
        if endpoint in self.endpoints:
            raise ValueError(f"endpoint {endpoint!r} already has a controller")
        if not callable(controller):
            raise TypeError(f"the controller of {endpoint!r} must be callable")
        self.endpoints[endpoint] = controller
        if not _is_async(controller):
            self._threaded.add(endpoint)
        return controller

    on_connect: ClientHookRegistrar = _hook("on_connect", "(client, request)")
    on_disconnect: ClientHookRegistrar = _hook("on_disconnect", "(client, request)")
    on_before_request: ClientHookRegistrar = _hook("on_before_request", "(client, request)")
    on_after_request: AfterRequestHookRegistrar = _hook(
        "on_after_request", "(client, request, response)"
    )
    on_before_response: ResponseHookRegistrar = _hook(
        "on_before_response", "(client, request, response)"
    )
    on_after_response: ResponseHookRegistrar = _hook(
        "on_after_response", "(client, request, response)"
    )
    on_before_broadcast: BroadcastHookRegistrar = _hook(
        "on_before_broadcast", "(endpoint, room, message)"
    )
    on_after_broadcast: BroadcastHookRegistrar = _hook(
        "on_after_broadcast", "(endpoint, room, message)"
    )
    on_before_client_broadcast: ClientBroadcastHookRegistrar = _hook(
        "on_before_client_broadcast", "(client, endpoint, room, message)"
    )
    on_after_client_broadcast: ClientBroadcastHookRegistrar = _hook(
        "on_after_client_broadcast", "(client, endpoint, room, message)"
    )

    def register_plugin(self, plugin: Plugin) -> Plugin:
        """Register ``plugin``; it is activated when the app starts.

        Raises:
            TypeError: ``plugin`` has no ``activate``/``deactivate``.
            ValueError: a plugin of that name is registered already.
            RuntimeError: the app is already running (register plugins before
                starting, as GOSF asks).
        """
        if not isinstance(plugin, Plugin):
            raise TypeError(
                f"{plugin!r} is not a plugin: it needs activate(app) and deactivate(app)"
            )
        name = plugin_name(plugin)
        if name in self.plugins:
            raise ValueError(f"a plugin named {name!r} is registered already")
        if self._tg is not None:
            raise RuntimeError("register plugins before the app starts")
        self.plugins[name] = plugin
        return plugin

    def plugin(self, name: str, kind: type[P]) -> P:
        """The registered plugin ``name``, checked to be a ``kind``.

        Raises:
            KeyError: no plugin has that name.
            TypeError: it is not a ``kind``.
        """
        plugin = self.plugins[name]
        if not isinstance(plugin, kind):
            raise TypeError(f"plugin {name!r} is a {type(plugin).__name__}, not a {kind.__name__}")
        return plugin

    def members(self, room: str = "") -> list[Client]:
        """The clients in ``room`` (``""``: every client) in this process."""
        clients = self.clients
        return [
            client
            for socket in self.server.namespace("/").members(room or None)
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
        return await self.server.cluster_rooms(timeout=timeout)

    async def cluster_client_count(
        self,
        *,
        timeout: float = DEFAULT_QUERY_TIMEOUT,  # noqa: ASYNC109 - bounds gathering answers
    ) -> int:
        """The number of clients connected to the whole cluster (see :meth:`cluster_rooms`).

        Raises:
            ValueError: ``timeout`` is not positive.
        """
        return await self.server.cluster_socket_count(timeout=timeout)

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
        return await self.server.command_socket("disconnect", sid, timeout=timeout)

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
        return await self.server.command_socket("join", sid, room, timeout=timeout)

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
        return await self.server.command_socket("leave", sid, room, timeout=timeout)

    # -- microservices ------------------------------------------------------------

    def register_microservice(
        self, name: str, host: str, port: int, secure: bool = False, **options: Any
    ) -> Microservice:
        """Register the Socket.IO service at ``host:port`` as ``name`` (GOSF's
        ``RegisterMicroservice``); it connects when the app runs (at once if it is
        running) and reconnects by itself. ``options`` go to :class:`Microservice`.

        Raises:
            ValueError: a microservice of that name is registered already.
        """
        if name in self.microservices:
            raise ValueError(f"a microservice named {name!r} is registered already")
        service = Microservice(name, host, port, secure, **options)
        self.microservices[name] = service
        if self._tg is not None:
            service._attach(self._tg)
        return service

    def deregister_microservice(self, name: str) -> None:
        """Disconnect and forget the microservice ``name``; an unknown name is ignored."""
        service = self.microservices.pop(name, None)
        if service is not None:
            service.disconnect()

    def get_microservice(self, name: str) -> Microservice | None:
        """The microservice registered as ``name``, or ``None`` (GOSF's ``GetMicroservice``)."""
        return self.microservices.get(name)

    # -- broadcasts ---------------------------------------------------------------

    async def broadcast(
        self, room: str, endpoint: str, message: Message, *, sender: Client | None = None
    ) -> None:
        """Send ``message`` as an ``endpoint`` event to everyone in ``room`` (``""``: everyone).

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
            skip=None if sender is None else sender.socket,
        )
        if sender is None:
            await hooks.run("on_after_broadcast", endpoint, room, message)
        else:
            await hooks.run("on_after_client_broadcast", sender, endpoint, room, message)

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

    # -- the request/response cycle ---------------------------------------------------

    async def _dispatch(
        self, socket: Socket, endpoint: str, args: list[Any], ack_id: int | None
    ) -> None:
        client = self.clients.get(socket.sid)
        if client is None:  # disconnected meanwhile
            return
        controller = self.endpoints.get(endpoint)
        if controller is None:
            if ack_id is not None:
                await socket.ack(ack_id, self.to_wire(Message.failure(NOT_FOUND)))
            return
        payload = args[0] if args else None
        try:
            message = Message.parse(payload)
        except MessageError as exc:
            failure = Message.failure(BAD_REQUEST, {"reason": exc.reason})
            if isinstance(payload, dict) and type(payload.get("id")) is int:
                failure.id = payload["id"]
            await socket.emit_and_ack(endpoint, self.to_wire(failure, client), ack_id)
            return
        request = Request(endpoint, message, client, ack_id is not None, tuple(args[1:]))
        hooks = self.hooks
        response: Message | None
        try:
            await hooks.run("on_before_request", client, request)
            if endpoint in self._threaded:
                response = await anyio.to_thread.run_sync(controller, client, request)  # type: ignore[arg-type]
                if not socket.connected:
                    # The client left while the thread ran (a thread cannot be
                    # cancelled): its late result, and the hooks, are dropped.
                    return
            else:
                response = await controller(client, request)  # type: ignore[misc]
            if response is not None:
                if not isinstance(response, Message):
                    raise TypeError(
                        f"controller of {endpoint!r} returned {type(response).__name__}, "
                        "not a gosf.Message or None"
                    )
                response = _with_request_ids(response, message)
            await hooks.run("on_after_request", client, request, response)
        except Exception:
            log.exception("request to %r failed (client %s)", endpoint, socket.sid)
            response = _with_request_ids(Message.failure(INTERNAL_ERROR), message)
        if response is None:
            if ack_id is not None:
                await socket.ack(ack_id)
            return
        await hooks.run("on_before_response", client, request, response)
        wire = self.to_wire(response, client)
        try:
            await socket.emit_and_ack(endpoint, wire, ack_id)  # GOSF: as an event and as the ack
        except LocalProtocolError as exc:
            # JSON cannot carry the response (a set, a Decimal, a client's
            # body nested too deeply, echoed): nothing was sent, so the
            # client gets the failure instead of waiting for an answer.
            self.server.log_unencodable("response", endpoint, socket.sid, exc, INTERNAL_ERROR)
            response = _with_request_ids(Message.failure(INTERNAL_ERROR), message)
            await socket.emit_and_ack(endpoint, self.to_wire(response, client), ack_id)
        if hooks.has("on_after_response"):
            await socket.flush()  # "after the response was sent" means written out
            await hooks.run("on_after_response", client, request, response)

    async def _connected(self, socket: Socket, auth: dict[str, Any]) -> None:
        client = Client(self, socket)
        request = Request("connect", Message(), client)
        await self.hooks.run("on_connect", client, request)  # may raise ConnectionRefused
        self.clients[socket.sid] = client

    async def _disconnected(self, socket: Socket, reason: str) -> None:
        client = self.clients.pop(socket.sid, None)
        if client is not None:
            request = Request("disconnect", Message(), client, reason=reason)
            await self.hooks.run("on_disconnect", client, request)

    # -- running --------------------------------------------------------------------

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run ``func(*args)`` in the app's task group (for plugins' background work).

        Raises:
            RuntimeError: the app is not running.
        """
        if self._tg is None:
            raise RuntimeError("the app is not running")
        self._tg.start_soon(func, *args)

    @property
    def running(self) -> bool:
        return self._tg is not None

    async def drain(self) -> None:
        """Shut down gracefully while still running: refuse new connections, give
        in-flight requests ``shutdown_grace`` seconds, disconnect every client."""
        await self.server.shutdown(self.config.shutdown_grace)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[App]:
        """Run the app for the duration of the block (the ASGI lifespan does this).

        On the way out: new connections are refused, in-flight requests get
        ``shutdown_grace`` seconds to finish, clients are disconnected cleanly,
        then plugins are deactivated in reverse order.

        The way out starts at the process's SIGINT or SIGTERM (or at
        hypercorn's supervisor's stop), before the ASGI server closes the
        connections itself; the server's own shutdown follows the drain.
        """
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.server.running())
            tg = await stack.enter_async_context(anyio.create_task_group())
            self._tg = tg
            try:
                for service in self.microservices.values():
                    service._attach(tg)
                activated: list[Plugin] = []
                try:
                    for plugin in self.plugins.values():
                        await _maybe_await(plugin.activate(self))
                        activated.append(plugin)
                    # A stop signal drains before the server cuts connections.
                    if self.config.drain_on_signal:
                        async with drain_first(tg, self.drain, grace=self.config.shutdown_grace):
                            yield self
                    else:
                        yield self
                    await self.drain()
                finally:
                    for plugin in reversed(activated):
                        with anyio.CancelScope(shield=True) as scope:
                            scope.deadline = anyio.current_time() + PLUGIN_DEACTIVATE_TIMEOUT
                            try:
                                await _maybe_await(plugin.deactivate(self))
                            except Exception:
                                log.exception("plugin %s failed to deactivate", plugin_name(plugin))
                        if scope.cancelled_caught:
                            log.error("plugin %s did not deactivate in time", plugin_name(plugin))
                    for service in self.microservices.values():
                        service.disconnect()
                    tg.cancel_scope.cancel()
            finally:
                self._tg = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send, self.run)
        else:
            await self.server.route(scope, receive, send)

    @property
    def asgi(self) -> App:
        """The ASGI application (the app itself)."""
        return self

    def startup(self) -> None:
        """Serve the app with hypercorn until Ctrl-C/SIGTERM; see :func:`gosf.startup`."""
        serve(self, self.config)


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


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value
