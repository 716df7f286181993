"""Serve an ASGI app for the tests: ``python -m tests.serve SERVER MODULE:ATTR PORT``.

SERVER is one of ``hypercorn-asyncio``, ``hypercorn-trio``, ``uvicorn``. The
process exits on SIGTERM or when its standard input closes, so a test run that
dies never leaves a server behind.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from typing import Any

SERVERS = ("hypercorn-asyncio", "hypercorn-trio", "uvicorn")


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _exit_when_stdin_closes() -> None:
    def watch() -> None:
        sys.stdin.read()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def _uvicorn(app: Any, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uvicorn.Server(config).run()


def _hypercorn(app: Any, port: int, worker: str) -> None:
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 1
    if worker == "trio":
        import trio
        from hypercorn.trio import serve as trio_serve

        trio.run(trio_serve, app, config)
    else:
        import asyncio

        from hypercorn.asyncio import serve as asyncio_serve

        asyncio.run(asyncio_serve(app, config))


def main() -> None:
    kind, target, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind not in SERVERS:
        raise SystemExit(f"unknown server {kind!r}; one of {SERVERS}")
    app = _load(target)
    _exit_when_stdin_closes()
    if kind == "uvicorn":
        _uvicorn(app, port)
    else:
        _hypercorn(app, port, kind.removeprefix("hypercorn-"))


if __name__ == "__main__":
    main()
