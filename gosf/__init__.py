"""gosf: Socket.IO APIs with structured concurrency, on asyncio and trio.

A Python port of GOSF, the Go Socket.IO Framework. Public names are
re-exported here; the modules behind them are private.
"""

from __future__ import annotations

from ._config import ServerOptions
from ._errors import ConnectionRefused, Disconnected, GosfError
from ._namespace import Namespace
from ._server import SocketIOServer
from ._socket import Socket
from ._transport._engine import ServerNotRunning

__version__ = "0.1.0.dev0"

__all__ = (
    "ConnectionRefused",
    "Disconnected",
    "GosfError",
    "Namespace",
    "ServerNotRunning",
    "ServerOptions",
    "Socket",
    "SocketIOServer",
    "__version__",
)
