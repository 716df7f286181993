"""``gosf.startup``: serve an app with hypercorn until Ctrl-C or SIGTERM.

Shutting down, in order: stop taking new connections, give in-flight requests
``shutdown_grace`` seconds, disconnect clients cleanly (the app does this when
the signal comes, see ``gosf/_signals.py``), stop hypercorn, then deactivate
plugins (the ASGI lifespan's exit).
"""

from __future__ import annotations

import logging
import signal
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ._config import Config
from .types import ASGIApp

__all__ = ("hypercorn_config", "serve")

log = logging.getLogger("gosf")


def hypercorn_config(config: Config) -> Any:
    """The hypercorn ``Config`` for a gosf :class:`Config`."""
    from hypercorn.config import Config as HypercornConfig

    result = HypercornConfig()
    host = config.host or "0.0.0.0"
    result.bind = [f"[{host}]:{config.port}" if ":" in host else f"{host}:{config.port}"]
    result.accesslog = None
    result.graceful_timeout = 1.0  # gosf has drained the clients before hypercorn stops
    if config.secure:
        result.certfile = config.ssl_cert
        result.keyfile = config.ssl_key
    return result


def serve(app: ASGIApp, config: Config) -> None:
    """Serve ``app`` (a :class:`gosf.App`, with its ``config``) with hypercorn
    under ``config.backend`` until a signal; blocks.

    The app is taken as a plain ASGI callable, not as :class:`gosf.App`: the
    app module calls this one, so this one cannot import it back.
    """
    asgi: Any = app  # rejectInvalidHostnames is the app's own check, however it is served
    anyio.run(partial(_serve, config, asgi, hypercorn_config(config)), backend=config.backend)


async def _serve(config: Config, asgi: Any, hypercorn: Any) -> None:
    if config.backend == "trio":
        from hypercorn.trio import serve as serve_with
    else:
        from hypercorn.asyncio import serve as serve_with  # type: ignore[assignment]
    stop = anyio.Event()

    async def stop_on_signal(*, task_status: TaskStatus[None]) -> None:
        # The app drains first (App.run takes the signal while it runs and
        # passes it on here after the drain), then hypercorn stops.
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                log.info("%s: stopping the server", signal.Signals(signum).name)
                break
        stop.set()

    async with anyio.create_task_group() as tg:
        await tg.start(stop_on_signal)
        await serve_with(asgi, hypercorn, shutdown_trigger=stop.wait)
        tg.cancel_scope.cancel()
