"""``gosf.startup``: serve an app with hypercorn until Ctrl-C or SIGTERM.

Shutting down, in order: stop taking new connections, give in-flight requests
``shutdown_grace`` seconds, disconnect clients cleanly (the app does this when
the signal comes, see ``gosf/_signals.py``), stop hypercorn, then deactivate
plugins (the ASGI lifespan's exit).
"""

from __future__ import annotations

import fnmatch
import logging
import signal
import ssl
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from anyio.abc import TaskStatus

from ._transport._http import Receive, Scope, Send, header, send_response

if TYPE_CHECKING:
    from ._app import App
    from ._config import Config

__all__ = ("HostCheck", "certificate_names", "hypercorn_config", "serve")

log = logging.getLogger("gosf")


def certificate_names(certfile: str) -> list[str]:
    """The DNS names (and IP addresses) a PEM certificate is valid for.

    Raises:
        ValueError: the file cannot be read as a certificate.
    """
    try:
        decoded: dict[str, Any] = ssl._ssl._test_decode_cert(certfile)  # type: ignore[attr-defined]
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot read certificate {certfile!r}: {exc}") from exc
    names = [
        value for kind, value in decoded.get("subjectAltName", ()) if kind in ("DNS", "IP Address")
    ]
    if not names:
        for rdn in decoded.get("subject", ()):
            names.extend(value for key, value in rdn if key == "commonName")
    return names


class HostCheck:
    """ASGI middleware for ``rejectInvalidHostnames``: unknown ``Host`` → 421."""

    def __init__(self, app: Any, names: list[str]) -> None:
        self.app = app
        self.patterns = [name.lower() for name in names]

    def allowed(self, host: str | None) -> bool:
        if not host:
            return False
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.allowed(header(scope, b"host")):
            body = orjson.dumps({"code": 4, "message": "Forbidden", "detail": "invalid hostname"})
            if scope["type"] == "http":
                await send_response(send, 421, body, content_type=b"application/json")
            else:
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


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


def serve(app: App) -> None:
    """Serve ``app`` with hypercorn under ``app.config.backend`` until a signal; blocks."""
    config = app.config
    asgi: Any = app
    if config.reject_invalid_hostnames:
        names = config.valid_hostnames or certificate_names(str(config.ssl_cert))
        asgi = HostCheck(app, names)
    anyio.run(partial(_serve, app, asgi, hypercorn_config(config)), backend=config.backend)


async def _serve(app: App, asgi: Any, hypercorn: Any) -> None:
    if app.config.backend == "trio":
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
