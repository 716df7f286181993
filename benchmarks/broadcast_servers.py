"""The apps of the broadcast benchmark, and ``main()`` to serve one worker of them.

Both apps answer the same three events, so the broadcast benchmark
(:mod:`benchmarks.broadcast`) drives them alike:

* ``blast`` with an integer ``n``: broadcast the event ``news`` with the
  arguments ``n`` and :data:`PAYLOAD` to every client of the ``/`` namespace
  except the caller (in every worker of the cluster), then ack ``n``. On the
  wire each recipient gets ``42["news",<n>,{"text":"hello"}]``.
* ``whoami``: ack this worker's process id (the load generator checks how
  its clients are spread over the workers);
* ``census``: ack ``{"pid": ..., "sockets": ...}``, the number of clients
  connected to this worker's ``/`` namespace.

The apps:

* ``gosf``: a :class:`gosf.SocketIOServer` whose broker comes from
  ``--broker``: ``redis://...`` gives gosf's Redis broker (one subscription
  per process, each broadcast encoded once and published once), nothing
  gives the default ``LocalBroker`` (a single worker, no Redis). The
  broadcast is ``await server.emit("news", n, PAYLOAD, skip=socket)``.
* ``python-socketio``: ``socketio.AsyncServer(async_mode="asgi")`` with
  ``client_manager=socketio.AsyncRedisManager(url)`` when ``--broker`` is
  given (it needs redis-py), and ``await sio.emit("news", (n, PAYLOAD),
  skip_sid=sid)``. asyncio only (hypercorn's asyncio worker or uvicorn).

Serve one worker with::

    python -m benchmarks.broadcast_servers --server gosf --worker-class trio \\
        --port 8001 --broker redis://127.0.0.1:6390/0
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from .servers import WORKER_CLASSES, ASGIApp, serve_app, supports

__all__ = ("CHANNEL", "PAYLOAD", "SERVERS", "build_app", "main")

SERVERS = ("gosf", "python-socketio")
PAYLOAD = {"text": "hello"}
CHANNEL = {"gosf": "gosf", "python-socketio": "socketio"}
"""The Redis pub/sub channel each app's workers subscribe to (each library's default)."""


def gosf_app(broker_url: str | None) -> ASGIApp:
    """gosf: ``blast`` broadcasts through ``server.emit`` (Redis broker or local)."""
    import gosf
    from gosf.brokers import from_url

    server = gosf.SocketIOServer(broker=from_url(broker_url))
    namespace = server.namespace("/")

    @server.on("blast")
    async def blast(socket: gosf.Socket, n: int) -> int:
        await server.emit("news", n, PAYLOAD, skip=socket)
        return n

    @server.on("whoami")
    async def whoami(socket: gosf.Socket, data: Any = None) -> int:
        return os.getpid()

    @server.on("echo")  # benchmarks.forwarding
    async def echo(socket: gosf.Socket, data: Any = None) -> Any:
        return data

    @server.on("census")
    async def census(socket: gosf.Socket, data: Any = None) -> dict[str, int]:
        return {"pid": os.getpid(), "sockets": len(namespace.members())}

    return server.asgi


def python_socketio_app(broker_url: str | None) -> ASGIApp:
    """python-socketio: ``blast`` broadcasts through ``sio.emit`` (AsyncRedisManager or local).

    Raises:
        RuntimeError: ``broker_url`` is given and redis-py is not installed.
    """
    import socketio

    manager = None
    if broker_url:
        import importlib.util

        if importlib.util.find_spec("redis") is None:
            raise RuntimeError(
                "python-socketio's AsyncRedisManager needs redis-py: pip install redis"
            )
        manager = socketio.AsyncRedisManager(broker_url, channel=CHANNEL["python-socketio"])
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)

    @sio.on("blast")  # type: ignore[untyped-decorator]
    async def blast(sid: str, n: int) -> int:
        await sio.emit("news", (n, PAYLOAD), skip_sid=sid)
        return n

    @sio.on("whoami")  # type: ignore[untyped-decorator]
    async def whoami(sid: str, data: Any = None) -> int:
        return os.getpid()

    @sio.on("census")  # type: ignore[untyped-decorator]
    async def census(sid: str, data: Any = None) -> dict[str, int]:
        sockets = sum(1 for _ in sio.manager.get_participants("/", None))
        return {"pid": os.getpid(), "sockets": sockets}

    app: ASGIApp = socketio.ASGIApp(sio)
    return app


def build_app(server: str, broker_url: str | None) -> ASGIApp:
    """The app named ``server`` (one of :data:`SERVERS`), with a Redis broker if ``broker_url``."""
    if server == "gosf":
        return gosf_app(broker_url)
    if server == "python-socketio":
        return python_socketio_app(broker_url)
    raise ValueError(f"unknown server {server!r}")


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--server NAME --worker-class W --port N [--broker URL]``
    (W: asyncio, trio or uvicorn)."""
    parser = argparse.ArgumentParser(description="Serve one worker of a broadcast benchmark app.")
    parser.add_argument("--server", choices=SERVERS, required=True)
    parser.add_argument("--worker-class", choices=WORKER_CLASSES, default="asyncio")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--broker", help="redis://host:port/db; none: a single local worker")
    args = parser.parse_args(argv)
    if not supports(args.server, args.worker_class):
        raise SystemExit(f"{args.server} cannot run under the {args.worker_class} worker")
    serve_app(build_app(args.server, args.broker), args.worker_class, args.port)


if __name__ == "__main__":
    main()
