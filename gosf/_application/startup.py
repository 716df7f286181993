"""Serving with hypercorn or uvicorn: ``gosf.startup`` and ``gosf run``.

Starting, in order: refuse a call from inside a running event loop, check that
the backend's and the server's libraries are there, bind and listen (a port in
use fails here, before the app starts), load the TLS files, run the app's
lifespan (plugins), then print one ready line with the URL, where Socket.IO
answers, the server and the backend.

Shutting down, in order: stop taking new connections, give in-flight requests
``shutdown_grace`` seconds, disconnect clients cleanly (the app does this when
the signal comes, see ``gosf/_application/signals.py``), stop the server, deactivate plugins
(the ASGI lifespan's exit), then print one line saying it stopped.

hypercorn serves under asyncio or trio (``config.server`` is ``"hypercorn"``,
the default); uvicorn under asyncio only, driven from gosf as
``_application/uvicorn_server.py`` tells.

A failure the user can fix (a port in use, trio or uvicorn missing, TLS
files hypercorn cannot load) is a :class:`StartupError` whose message is one line.
``gosf.startup`` exits with it, as GOSF's ``log.Fatal`` did; ``gosf run``
prints it. The ready and stop lines go to standard output whatever the
logging setup, and hypercorn's own "Running on" line is left out.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import ssl
import sys
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskStatus
from hypercorn.logging import Logger

from .._config import Config
from ..types import ASGIApp
from .signals import CLOSE_GRACE

__all__ = (
    "GosfLogger",
    "StartupError",
    "bind",
    "check_backend",
    "check_server",
    "hypercorn_config",
    "listen",
    "ready_line",
    "refuse_running_loop",
    "run",
    "serve",
)

TRIO_MISSING = "backend 'trio' needs trio, which is not installed: pip install 'gosf[trio]'"

UVICORN_MISSING = (
    "server 'uvicorn' needs uvicorn, which is not installed: pip install 'gosf[uvicorn]'"
)

IN_A_LOOP = (
    "gosf.startup() runs its own event loop, but {} is already running in this "
    "thread: call it outside async code (or serve from async code with "
    "hypercorn's serve(app, config), or from a shell with 'gosf run module:app')"
)

ALL_INTERFACES = ("", "0.0.0.0", "::")


class StartupError(Exception):
    """gosf could not start serving, for a reason the user can fix; the message
    is one line that names what failed (the address, the file, the package)."""


# -- checks before anything starts ------------------------------------------------------


def refuse_running_loop() -> None:
    """Refuse to start a blocking server from inside an event loop.

    Raises:
        RuntimeError: an asyncio or trio event loop runs in this thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(IN_A_LOOP.format("an asyncio event loop"))
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        raise RuntimeError(IN_A_LOOP.format("a trio run"))


def check_backend(backend: str) -> None:
    """Raises:
    StartupError: ``backend`` is trio and trio is not installed."""
    if backend == "trio":
        try:
            import trio  # noqa: F401
        except ImportError:
            raise StartupError(TRIO_MISSING) from None


def check_server(server: str) -> None:
    """Raises:
    StartupError: ``server`` is uvicorn and uvicorn is not installed."""
    if server == "uvicorn":
        try:
            import uvicorn  # noqa: F401
        except ImportError:
            raise StartupError(UVICORN_MISSING) from None


# -- hypercorn ------------------------------------------------------------------------------


class GosfLogger(Logger):
    """hypercorn's logger without its "Running on ..." line: gosf prints its own
    ready line at that moment (the listeners are up, the lifespan has run), or
    none (the workers of ``gosf run --workers``, whose supervisor prints it).

    At module level: hypercorn's supervisor pickles it to its workers.
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._ready_line: str | None = getattr(config, "gosf_ready_line", None)

    async def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        if message.startswith("Running on "):
            if self._ready_line is not None:
                print(self._ready_line, flush=True)
                self._ready_line = None  # one line, however many listeners
            return
        await super().info(message, *args, **kwargs)


def hypercorn_config(config: Config, *, workers: int = 1) -> Any:
    """The hypercorn ``Config`` for a gosf :class:`Config`.

    With ``workers`` above one, hypercorn's supervisor runs them: its
    ``graceful_timeout`` then has to outlast gosf's drain (see ``_application/signals.py``).
    """
    from hypercorn.config import Config as HypercornConfig

    result = HypercornConfig()
    host = config.host or "0.0.0.0"
    result.bind = [f"[{host}]:{config.port}" if ":" in host else f"{host}:{config.port}"]
    result.accesslog = None
    result.logger_class = GosfLogger
    result.workers = workers
    if workers > 1:
        result.graceful_timeout = config.shutdown_grace + CLOSE_GRACE
    else:
        result.graceful_timeout = 1.0  # gosf has drained the clients before hypercorn stops
    if config.secure:
        result.certfile = config.ssl_cert
        result.keyfile = config.ssl_key
    return result


def bind(hypercorn: Any, config: Config, *, fd: int | None = None) -> tuple[str, int]:
    """Bind and listen now (or take the listening socket ``fd``), and point
    ``hypercorn`` at it; returns the address it listens on.

    Binding before the app starts makes a port in use an error here, before
    plugins are activated, and gives the real port when ``port`` is 0.

    Raises:
        StartupError: the address cannot be bound (in use, not this machine's,
            a privileged port), or the TLS files do not make a TLS context.
    """
    if fd is not None:
        listening = socket.socket(fileno=fd)
    else:
        try:
            sockets = hypercorn.create_sockets()
        except OSError as error:
            host = config.host or "0.0.0.0"
            shown = f"[{host}]" if ":" in host else host
            reason = (
                "address already in use"
                if error.errno == errno.EADDRINUSE
                else (error.strerror or str(error))
            )
            raise StartupError(f"cannot listen on {shown}:{config.port}: {reason}") from None
        # One bind (gosf's config has one address): TLS or plain, not both.
        [listening] = sockets.secure_sockets or sockets.insecure_sockets
        listening.listen(hypercorn.backlog)
    address = listening.getsockname()
    hypercorn.bind = [f"fd://{listening.detach()}"]  # hypercorn owns (and closes) it now
    if config.secure:
        try:
            hypercorn.create_ssl_context()
        except (OSError, ssl.SSLError) as error:
            raise StartupError(
                f"cannot use ssl-cert {config.ssl_cert} with ssl-key {config.ssl_key}: "
                f"{getattr(error, 'reason', None) or error}"
            ) from None
    return str(address[0]), int(address[1])


def listen(config: Config, *, fd: int | None = None) -> tuple[socket.socket, tuple[str, int]]:
    """A listening socket for a server other than hypercorn (uvicorn), and its
    address: bound as :func:`bind` binds, with the same errors, TLS files
    checked the same way.

    Raises:
        StartupError: see :func:`bind`.
    """
    hypercorn = hypercorn_config(config)
    address = bind(hypercorn, config, fd=fd)
    listening = socket.socket(fileno=int(hypercorn.bind[0].removeprefix("fd://")))
    return listening, address


def ready_line(
    config: Config,
    address: tuple[str, int],
    *,
    socketio_path: str | None,
    workers: int = 1,
) -> str:
    """The line printed once the server answers: a URL to click, where
    Socket.IO answers, the server, the backend."""
    host, port = address
    everywhere = config.host in ALL_INTERFACES
    if everywhere:
        host = "127.0.0.1" if config.host != "::" else "::1"
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if config.secure else "http"
    notes = ["all interfaces"] if everywhere else []
    if socketio_path is not None:
        notes.append(f"Socket.IO at {socketio_path}")
        if config.docs_path is not None:  # a gosf app: its AsyncAPI page (_application/docspage.py)
            notes.append(f"API docs at {config.path}{config.docs_path}")
    notes += [config.server, config.backend]
    if workers > 1:
        notes.append(f"{workers} workers")
    url = f"{scheme}://{shown}:{port}{config.path}"
    return f"gosf: serving on {url} ({', '.join(notes)}); press Ctrl-C to stop"


# -- running ----------------------------------------------------------------------------------


def run(app: ASGIApp, config: Config, *, socketio_path: str | None, fd: int | None = None) -> None:
    """Serve ``app`` with ``config.server`` under ``config.backend`` until
    SIGINT or SIGTERM; blocks. ``fd`` is a listening socket to serve on
    (``gosf run --reload`` hands its server one).

    Raises:
        RuntimeError: an event loop is running in this thread.
        StartupError: see :func:`check_backend`, :func:`check_server` and
            :func:`bind`.
    """
    refuse_running_loop()
    check_backend(config.backend)
    check_server(config.server)
    if config.server == "uvicorn":
        _run_uvicorn(app, config, socketio_path=socketio_path, fd=fd)
        return
    hypercorn = hypercorn_config(config)
    address = bind(hypercorn, config, fd=fd)
    hypercorn.gosf_ready_line = ready_line(config, address, socketio_path=socketio_path)
    asgi: Any = app
    anyio.run(partial(_serve, config, asgi, hypercorn), backend=config.backend)


def _run_uvicorn(
    app: ASGIApp, config: Config, *, socketio_path: str | None, fd: int | None
) -> None:
    from . import uvicorn_server

    listening, address = listen(config, fd=fd)
    with listening:  # uvicorn closes it at its shutdown; this closes it on the way out otherwise
        uvicorn = uvicorn_server.uvicorn_config(app, config)
        uvicorn.load()  # the TLS files were checked already, by listen()
        server = uvicorn_server.GosfUvicorn(
            uvicorn, ready_line(config, address, socketio_path=socketio_path)
        )
        uvicorn_server.serve(server, listening)
    stopped_by = server.stopped_by
    print(f"gosf: stopped ({stopped_by.name})" if stopped_by else "gosf: stopped", flush=True)


def serve(app: ASGIApp, config: Config) -> None:
    """Serve ``app`` (a :class:`gosf.App`, with its ``config``) until a signal;
    blocks. What ``gosf.startup`` runs.

    The app is taken as a plain ASGI callable, not as :class:`gosf.App`: the
    app module calls this one, so this one cannot import it back.

    Raises:
        RuntimeError: an event loop is running in this thread.
        SystemExit: the server could not start (GOSF's ``log.Fatal``): the
            reason, in one line, is the exit's message.
    """
    try:
        run(app, config, socketio_path=config.server_options().path + "/")
    except StartupError as error:
        raise SystemExit(f"gosf: {error}") from None


async def _serve(config: Config, asgi: Any, hypercorn: Any) -> None:
    if config.backend == "trio":
        from hypercorn.trio import serve as serve_with
    else:
        from hypercorn.asyncio import serve as serve_with  # type: ignore[assignment]
    stop = anyio.Event()
    stopped_by: list[str] = []

    async def stop_on_signal(*, task_status: TaskStatus[None]) -> None:
        # The app drains first (App.run takes the signal while it runs and
        # passes it on here after the drain), then hypercorn stops.
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                stopped_by.append(signal.Signals(signum).name)
                break
        stop.set()

    async with anyio.create_task_group() as tg:
        await tg.start(stop_on_signal)
        await serve_with(asgi, hypercorn, shutdown_trigger=stop.wait)
        tg.cancel_scope.cancel()
    print(f"gosf: stopped ({stopped_by[0]})" if stopped_by else "gosf: stopped", flush=True)
