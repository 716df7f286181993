"""The GOSF application: what is registered on it (endpoints, hooks, plugins,
microservices), and its life (running, draining, serving ASGI).

:class:`App` is the class users see; its parts live beside it, each in a module
of its own:

* the request/response cycle, with the routes and the connected clients:
  :class:`~gosf._application.cycle.RequestCycle` (``_application/cycle.py``), whose handlers the app
  registers with the Socket.IO server, and which sees the app only as a
  :class:`~gosf._application.cycle.CycleHost`;
* broadcasts, room members and the cluster-wide queries and commands:
  :class:`~gosf._application.broadcasting.Broadcasting` (``_application/broadcasting.py``), a base
  class of :class:`App`;
* the hooks (``_application/hooks.py``), microservices (``_application/microservice.py``), stop
  signals (``_application/signals.py``) and serving (``_application/startup.py``);
* what it answers beside Socket.IO, the root page and the health endpoint:
  :class:`~gosf._application.pages.Pages` (``_application/pages.py``), in front of ``other_app``;
* what describes it, the declared broadcasts and the AsyncAPI document:
  :class:`~gosf._application.asyncapi.Documented` (``_application/asyncapi.py``), a base
  class of :class:`App`; the body models its controllers declare are read by the cycle
  (``_application/typed.py``).

:class:`Plugin` lives here, with :class:`App`, because each names the other.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

import anyio
from anyio.abc import TaskGroup

from .. import brokers
from .._config import Config
from .._engineio.asgi import serve_lifespan
from .._socketio.prometheus import PrometheusMetrics
from .._socketio.server import SocketIOServer
from ..admin import AdminUI, instrument_from_config
from ..types import ASGIApp, Receive, Scope, Send
from .asyncapi import Documented
from .broadcasting import Broadcasting
from .client import Client
from .cycle import Controller, RequestCycle
from .hooks import (
    AfterRequestHookRegistrar,
    BroadcastHookRegistrar,
    ClientBroadcastHookRegistrar,
    ClientHookRegistrar,
    Hooks,
    ResponseHookRegistrar,
)
from .microservice import Microservice
from .pages import Pages, Status
from .signals import drain_first
from .startup import serve

__all__ = ("App", "Plugin", "plugin_name")

log = logging.getLogger("gosf")

P = TypeVar("P")
C = TypeVar("C", bound=Controller)

PLUGIN_DEACTIVATE_TIMEOUT = 10.0
"""Seconds one plugin's ``deactivate`` may take at shutdown."""


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

    def activate(self, app: App) -> Any:
        """Called when ``app`` starts, in registration order (may be a coroutine):
        register hooks, start background tasks with ``app.start_soon``."""
        ...

    def deactivate(self, app: App) -> Any:
        """Called when ``app`` stops, in the reverse order (may be a coroutine);
        bounded by ``PLUGIN_DEACTIVATE_TIMEOUT`` seconds, a failure is logged."""
        ...


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


class App(Broadcasting, Documented):
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
        """The validated configuration (:meth:`configure` replaces it)."""
        self.pages = Pages(self, other_app)
        """The root page and the health endpoint (``pages.links``: what the root
        page links to), in front of ``other_app``."""
        # What the server hands every request off the Socket.IO path.
        self._other_app: ASGIApp = self.pages
        self._draining = False
        self._broker: brokers.Broker | None = broker
        self.hooks = Hooks()
        """The registered hooks (``app.hooks.add``/``remove``, as plugins use them)."""
        # The request/response cycle, and the server's handlers _make_server
        # registers: those of the cycle, which keeps the routes and clients.
        self._cycle = RequestCycle(self, self.hooks)
        self._dispatch = self._cycle.dispatch
        self._connected = self._cycle.connected
        self._disconnected = self._cycle.disconnected
        self._recovered = self._cycle.recovered
        self.server = self._make_server()
        """The Socket.IO server underneath (rebuilt by :meth:`configure`)."""
        self.endpoints: dict[str, Controller] = self._cycle.endpoints
        """The routed endpoints: name to controller."""
        self.metrics: PrometheusMetrics | None = None
        """The app's Prometheus metrics, with ``metrics_endpoint`` in its config."""
        self._configure_metrics()
        self.plugins: dict[str, Plugin] = {}
        """The registered plugins by name."""
        self.clients: dict[str, Client] = self._cycle.clients
        """The connected clients by sid (this process's)."""
        self.microservices: dict[str, Microservice] = {}
        """The registered microservices by name (GOSF's ``App.Microservices``)."""
        self._tg: TaskGroup | None = None
        self.declared_broadcasts = {}
        """What :meth:`broadcasts` declared, by endpoint (for the AsyncAPI document)."""
        self.info = {"title": "gosf app", "version": "0.0.0"}
        """The AsyncAPI document's ``title``, ``version`` and ``description``."""

    def _make_server(self) -> SocketIOServer:
        admin = self.config.admin
        other_app = self._other_app
        if admin is not None and admin.ui_path is not None:
            other_app = AdminUI(self.config.path + admin.ui_path, other_app)
        server = SocketIOServer(
            self.config.server_options(),
            other_app=other_app,
            broker=self._broker or brokers.from_url(self.config.broker),
        )
        if admin is not None:
            instrument_from_config(server, admin)
        namespace = self.config.namespace
        server.on_any(self._dispatch, namespace=namespace)
        server.on_connect(self._connected, namespace=namespace)
        server.on_disconnect(self._disconnected, namespace=namespace)
        server.on_recover(self._recovered, namespace=namespace)
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
        replaced = self.server
        self.server = self._make_server()
        # Observers registered on the app's server so far go on hearing it.
        self.server.take_observers(replaced)
        self._configure_metrics()

    def _configure_metrics(self) -> None:
        """Count for ``metrics_endpoint`` (the counts survive :meth:`configure`), or stop."""
        if self.config.metrics_endpoint is None:
            if self.metrics is not None:
                self.metrics.detach()
                self.metrics = None
            return
        if self.metrics is None:
            self.metrics = PrometheusMetrics(self.endpoints)
        self.metrics.attach(self.server)

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
        self._cycle.route(endpoint, controller)
        return controller

    on_connect: ClientHookRegistrar = _hook("on_connect", "(client, request)")
    """Register a hook called when a client connects: ``hook(client, request)``; raising
    :class:`gosf.ConnectionRefused` refuses it."""
    on_disconnect: ClientHookRegistrar = _hook("on_disconnect", "(client, request)")
    """Register a hook called when a client has left and its requests were cancelled:
    ``hook(client, request)``."""
    on_before_request: ClientHookRegistrar = _hook("on_before_request", "(client, request)")
    """Register a hook called before the controller: ``hook(client, request)``."""
    on_after_request: AfterRequestHookRegistrar = _hook(
        "on_after_request", "(client, request, response)"
    )
    """Register a hook called after the controller: ``hook(client, request, response)``
    (``response`` is ``None`` when the controller returned nothing)."""
    on_before_response: ResponseHookRegistrar = _hook(
        "on_before_response", "(client, request, response)"
    )
    """Register a hook called before the response is sent: ``hook(client, request, response)``."""
    on_after_response: ResponseHookRegistrar = _hook(
        "on_after_response", "(client, request, response)"
    )
    """Register a hook called after the response was sent: ``hook(client, request, response)``."""
    on_before_broadcast: BroadcastHookRegistrar = _hook(
        "on_before_broadcast", "(endpoint, room, message)"
    )
    """Register a hook called before an app broadcast: ``hook(endpoint, room, message)``."""
    on_after_broadcast: BroadcastHookRegistrar = _hook(
        "on_after_broadcast", "(endpoint, room, message)"
    )
    """Register a hook called after an app broadcast: ``hook(endpoint, room, message)``."""
    on_before_client_broadcast: ClientBroadcastHookRegistrar = _hook(
        "on_before_client_broadcast", "(client, endpoint, room, message)"
    )
    """Register a hook called before a client's broadcast:
    ``hook(client, endpoint, room, message)``."""
    on_after_client_broadcast: ClientBroadcastHookRegistrar = _hook(
        "on_after_client_broadcast", "(client, endpoint, room, message)"
    )
    """Register a hook called after a client's broadcast:
    ``hook(client, endpoint, room, message)``."""

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
        """Whether the app runs (between its startup and the end of its shutdown)."""
        return self._tg is not None

    @property
    def status(self) -> Status:
        """``"ok"`` while the app serves, ``"draining"`` once it shuts down,
        ``"stopped"`` while it does not run: what the health endpoint says."""
        if self._tg is None:
            return "stopped"
        return "draining" if self._draining else "ok"

    async def drain(self) -> None:
        """Shut down gracefully while still running: refuse new connections, give
        in-flight requests ``shutdown_grace`` seconds, disconnect every client."""
        self._draining = True  # the health endpoint turns load balancers away first
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
            self._draining = False
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
        """Serve the app with hypercorn or uvicorn (``config.server``) until
        Ctrl-C/SIGTERM; see :func:`gosf.startup`."""
        serve(self, self.config)


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value
