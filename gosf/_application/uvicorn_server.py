"""Serving with uvicorn: ``server: "uvicorn"`` for ``gosf.startup`` and ``gosf run``.

gosf drives uvicorn rather than handing it the process: it binds the socket
(``_application/startup.py``, with the same one-line errors as under
hypercorn), runs the event loop with anyio (on uvloop when it is installed,
as uvicorn itself would), and serves a :class:`uvicorn.Server` inside it on
that socket. What differs from ``uvicorn module:app``:

* uvicorn's logging setup is left out: its loggers go through the user's
  (nothing shows by default), there is no access log, and its "running on"
  line is never logged (it is not, for a socket handed to it): gosf prints
  its own ready line once the lifespan has run and the socket is served.
* Signals stay gosf's. SIGINT/SIGTERM stop the server as uvicorn's own
  handler does (a second SIGINT forces the way out), but the signal is not
  raised again once uvicorn has stopped: the process prints its stop line
  and exits 0, as under hypercorn. While the app runs, its drain takes the
  signal first and hands it on here once the clients are gone
  (``_application/signals.py``); the handler here is a plain Python one, which
  the drain can read and hand on to on any event loop.
* Engine.IO has its own heartbeat, so uvicorn's websocket pings are off; the
  address of a request is its peer's (no ``X-Forwarded-*``), as under
  hypercorn; and uvicorn waits a moment only for connections at shutdown,
  since gosf has drained them before it stops.

This module imports uvicorn: only :mod:`gosf._application.startup` imports
it, and only to serve with uvicorn, so that uvicorn stays an extra.
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import anyio
import uvicorn

from .._config import Config

__all__ = ("GosfUvicorn", "serve", "uvicorn_config")

SIGNALS = (signal.SIGINT, signal.SIGTERM)

SHUTDOWN_TIMEOUT = 1
"""Seconds uvicorn waits for connections at its shutdown: gosf has drained
the clients before it stops (hypercorn's ``graceful_timeout`` is the same)."""


def uvicorn_config(app: Any, config: Config) -> uvicorn.Config:
    """The uvicorn ``Config`` to serve ``app`` with under a gosf :class:`Config`."""
    secure = config.secure
    return uvicorn.Config(
        app,
        interface="asgi3",
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        ws_ping_interval=None,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
        ssl_certfile=config.ssl_cert if secure else None,
        ssl_keyfile=config.ssl_key if secure else None,
    )


class GosfUvicorn(uvicorn.Server):
    """A uvicorn server that prints gosf's ready line and keeps the signals gosf's.

    ``stopped_by`` is the first signal that stopped it, for the stop line.
    """

    def __init__(self, config: uvicorn.Config, ready_line: str) -> None:
        super().__init__(config)
        self._ready_line = ready_line
        self.stopped_by: signal.Signals | None = None

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own, less raising the signal again after the shutdown.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = signal.Signals(sig)
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:  # the lifespan has run and the socket is served
            print(self._ready_line, flush=True)


def serve(server: GosfUvicorn, listening: socket.socket) -> None:
    """Serve on ``listening`` until a signal stops ``server``; blocks.

    Raises:
        SystemExit: the app's lifespan failed at startup (uvicorn's own exit).
    """
    uvloop = importlib.util.find_spec("uvloop") is not None
    anyio.run(server.serve, [listening], backend="asyncio", backend_options={"use_uvloop": uvloop})
