"""gosf: Socket.IO APIs with structured concurrency, on asyncio and trio.

A Python port of GOSF, the Go Socket.IO Framework::

    import gosf

    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(request.message.text)

    gosf.listen("echo", echo)
    gosf.startup({"port": 9999})

Public names are re-exported here; the modules behind them are private.
"""

from __future__ import annotations

from ._application.app import App, Plugin
from ._application.client import Client, Request
from ._application.cycle import Controller
from ._application.default import (
    app,
    broadcast,
    deregister_microservice,
    get_microservice,
    listen,
    on_after_broadcast,
    on_after_client_broadcast,
    on_after_request,
    on_after_response,
    on_before_broadcast,
    on_before_client_broadcast,
    on_before_request,
    on_before_response,
    on_connect,
    on_disconnect,
    register_microservice,
    register_plugin,
    startup,
)
from ._application.message import (
    Message,
    map_to_struct,
    new_failure_message,
    new_success_message,
    struct_to_map,
)
from ._application.microservice import Microservice
from ._client.client import SocketIOClient
from ._client.engineio import ClientDisconnectReason
from ._config import AdminConfig, Config
from ._engineio.session import CloseReason
from ._errors import (
    ConnectionRefused,
    Disconnected,
    GosfError,
    HandshakeError,
    MessageError,
    MicroserviceError,
    MicroserviceTimeout,
    MicroserviceUnavailable,
    ServerNotRunning,
)
from ._options import Recovery, ServerOptions
from ._socketio.acks import AckStream, BroadcastAcks
from ._socketio.dynamic import ParentNamespace
from ._socketio.emitter import BlockingEmitter, Emitter
from ._socketio.namespace import Namespace
from ._socketio.observer import Observer
from ._socketio.prometheus import PrometheusMetrics
from ._socketio.queries import SocketInfo
from ._socketio.server import SocketIOServer
from ._socketio.serverside import ServerSideAcks
from ._socketio.socket import DisconnectReason, Socket
from .types import ASGIApp, Receive, Scope, Send

__version__ = "0.1.0.dev0"  # the one source of the version (pyproject reads it)

__all__ = (
    "ASGIApp",
    "AckStream",
    "AdminConfig",
    "App",
    "BlockingEmitter",
    "BroadcastAcks",
    "Client",
    "ClientDisconnectReason",
    "CloseReason",
    "Config",
    "ConnectionRefused",
    "Controller",
    "DisconnectReason",
    "Disconnected",
    "Emitter",
    "GosfError",
    "HandshakeError",
    "Message",
    "MessageError",
    "Microservice",
    "MicroserviceError",
    "MicroserviceTimeout",
    "MicroserviceUnavailable",
    "Namespace",
    "Observer",
    "ParentNamespace",
    "Plugin",
    "PrometheusMetrics",
    "Receive",
    "Request",
    "ServerNotRunning",
    "Recovery",
    "ServerOptions",
    "ServerSideAcks",
    "Scope",
    "Send",
    "Socket",
    "SocketIOClient",
    "SocketInfo",
    "SocketIOServer",
    "__version__",
    "app",
    "broadcast",
    "deregister_microservice",
    "get_microservice",
    "listen",
    "map_to_struct",
    "new_failure_message",
    "new_success_message",
    "on_after_broadcast",
    "on_after_client_broadcast",
    "on_after_request",
    "on_after_response",
    "on_before_broadcast",
    "on_before_client_broadcast",
    "on_before_request",
    "on_before_response",
    "on_connect",
    "on_disconnect",
    "register_microservice",
    "register_plugin",
    "startup",
    "struct_to_map",
)
