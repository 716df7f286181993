"""The benchmarked ASGI apps, and ``main()`` to serve one of them with hypercorn or uvicorn.

All three do the same work per message, so their round trips per second can
be compared:

* ``gosf``: a :class:`gosf.SocketIOServer` whose ``echo`` handler returns its
  argument, which gosf sends back as the ack.
* ``python-socketio``: ``socketio.AsyncServer(async_mode="asgi")`` behind
  ``socketio.ASGIApp`` with the same ``echo`` handler (asyncio only: it
  cannot run under trio).
* ``bare``: no Socket.IO at all; a websocket echo written against ASGI
  directly, the ceiling any Socket.IO server on the same ASGI server can reach.

The worker classes: hypercorn's ``asyncio`` and ``trio`` workers,
``uvicorn`` (asyncio only; with uvloop, httptools and websockets when they
are installed, as ``uvicorn[standard]`` brings them, else asyncio, h11 and
wsproto: the run records which), and ``granian`` (asyncio, when installed:
one worker process under granian's supervisor, which imports the app by name,
:func:`app_from_env`).

Serve one with::

    python -m benchmarks.servers --server gosf --worker-class trio --port 8001
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SERVERS = ("gosf", "gosf-app", "gosf-metrics", "gosf-app-metrics", "python-socketio", "bare")
WORKER_CLASSES = ("asyncio", "trio", "uvicorn", "granian")
"""hypercorn's two workers, uvicorn (asyncio) and granian (asyncio)."""
APP_ENV = "GOSF_BENCH_APP"
"""The environment variable that names the app granian's worker builds (:func:`app_from_env`)."""
GRANIAN_BACKLOG = 2048
"""As hypercorn's and uvicorn's backlog: 500 clients connect at once."""
TYPED_SERVERS = ("gosf-app-body", "gosf-app-typed-in", "gosf-app-typed")
"""The GOSF cycle echoing a body: untyped, with a request body model, with request
and response body models (``benchmarks.typed``)."""

__all__ = (
    "SERVERS",
    "TYPED_SERVERS",
    "WORKER_CLASSES",
    "app_from_env",
    "build_app",
    "main",
    "serve_app",
    "serve_granian",
    "supports",
    "uvicorn_stack",
)


def gosf_app(metrics: bool = False) -> ASGIApp:
    """gosf with an ``echo`` event whose ack is its argument (``metrics``: counted
    by ``gosf.PrometheusMetrics``, served at ``/metrics``)."""
    import gosf

    if metrics:
        counted = gosf.PrometheusMetrics()
        server = gosf.SocketIOServer(other_app=counted.app("/metrics"))
        counted.attach(server)
    else:
        server = gosf.SocketIOServer()

    @server.on("echo")
    async def echo(socket: gosf.Socket, data: Any = None) -> Any:
        return data

    return server.asgi


def gosf_full_cycle_app(metrics: bool = False) -> ASGIApp:
    """gosf's GOSF layer: an ``echo`` controller, with a before-request and an
    after-response hook (the after-response hook waits until the response was
    written, as the message-counter plugin would); ack + event per request.
    ``metrics``: with ``metrics_endpoint`` (Prometheus metrics counted)."""
    import gosf

    app = gosf.App(metrics_endpoint="metrics" if metrics else None)
    counted = 0

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(request.message.text)

    @app.on_before_request
    def before(client: gosf.Client, request: gosf.Request) -> None:
        return None

    @app.on_after_response
    def after(client: gosf.Client, request: gosf.Request, response: gosf.Message) -> None:
        nonlocal counted
        counted += 1

    return app


def python_socketio_app() -> ASGIApp:
    """python-socketio's ASGI app with the same ``echo`` event."""
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi")

    @sio.on("echo")  # type: ignore[untyped-decorator]
    async def echo(sid: str, data: Any = None) -> Any:
        return data

    app: ASGIApp = socketio.ASGIApp(sio)
    return app


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI websocket echo (plus the lifespan protocol, as the others speak it)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"Not Found"})


def supports(server: str, worker_class: str) -> bool:
    """Whether ``server`` runs under ``worker_class`` (python-socketio: not trio)."""
    return not (server == "python-socketio" and worker_class == "trio")


def build_app(server: str) -> ASGIApp:
    """The ASGI app named ``server`` (one of :data:`SERVERS`)."""
    if server == "gosf":
        return gosf_app()
    if server == "gosf-app":
        return gosf_full_cycle_app()
    if server in TYPED_SERVERS:
        from .typed import body_app

        return body_app(server)
    if server == "gosf-metrics":
        return gosf_app(metrics=True)
    if server == "gosf-app-metrics":
        return gosf_full_cycle_app(metrics=True)
    if server == "python-socketio":
        return python_socketio_app()
    if server == "bare":
        return bare_app
    raise ValueError(f"unknown server {server!r}")


def app_from_env() -> ASGIApp:
    """The app named by :data:`APP_ENV`: granian's worker process builds it
    (granian imports its app by name, in a process of its own)."""
    import os

    return build_app(os.environ[APP_ENV])


def granian_version() -> str | None:
    """granian's version, ``None`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("granian")
    except PackageNotFoundError:
        return None


def serve_granian(
    target: str, port: int, backpressure: int = GRANIAN_BACKLOG, factory: bool = True
) -> None:
    """Serve the ASGI app ``target`` (``module:name``; with ``factory``, a function
    that returns the app) with granian on 127.0.0.1:``port``, in one worker
    process, until SIGTERM or SIGINT.

    ``backpressure``: the requests granian lets in at once per worker, where a
    websocket counts as a request for its whole life.
    """
    from granian import Granian  # type: ignore[import-not-found,unused-ignore]
    from granian.constants import Interfaces, Loops  # type: ignore[import-not-found,unused-ignore]
    from granian.log import LogLevels  # type: ignore[import-not-found,unused-ignore]

    Granian(
        target,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.asyncio,  # as hypercorn's asyncio worker: the loop is not what is compared
        factory=factory,
        backlog=GRANIAN_BACKLOG,
        backpressure=backpressure,
        log_level=LogLevels.warning,
    ).serve()


def _config(port: int) -> Any:
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.backlog = 2048  # 500 clients connect at once; the default 100 drops SYNs
    return config


def serve(server: str, worker_class: str, port: int) -> None:
    """Serve ``server`` on 127.0.0.1:``port`` until SIGTERM or SIGINT."""
    if not supports(server, worker_class):
        raise SystemExit(f"{server} cannot run under the {worker_class} worker")
    if worker_class == "granian":
        import os

        os.environ[APP_ENV] = server  # granian's worker process inherits it
        serve_granian("benchmarks.servers:app_from_env", port)
        return
    serve_app(build_app(server), worker_class, port)


def uvicorn_stack() -> dict[str, str]:
    """What uvicorn's ``auto`` settings pick here: its event loop, HTTP and
    websocket implementations (the fastest installed)."""
    import importlib.util

    def have(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    return {
        "loop": "uvloop" if have("uvloop") else "asyncio",
        "http": "httptools" if have("httptools") else "h11",
        "ws": "websockets-sansio" if have("websockets") else "wsproto",
    }


def _serve_uvicorn(app: Any, port: int) -> None:
    import uvicorn

    stack = uvicorn_stack()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop=stack["loop"],
        http=stack["http"],
        ws=stack["ws"],
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=2048,  # as hypercorn's: 500 clients connect at once
    )
    uvicorn.Server(config).run()  # stops on SIGTERM/SIGINT by itself


def serve_app(asgi: ASGIApp, worker_class: str, port: int) -> None:
    """Serve ``asgi`` with ``worker_class`` (hypercorn's ``asyncio`` or
    ``trio`` worker, or ``uvicorn``) on 127.0.0.1:``port`` until SIGTERM or
    SIGINT.

    Raises:
        ValueError: ``worker_class`` is granian, which imports its app by name
            (:func:`serve_granian`) rather than taking it built.
    """
    if worker_class == "granian":
        raise ValueError("granian serves an app by its import name: use serve_granian")
    # hypercorn's own ASGI types are TypedDicts; the apps use plain mappings.
    app: Any = asgi
    if worker_class == "uvicorn":
        _serve_uvicorn(app, port)
        return
    config = _config(port)
    if worker_class == "trio":
        import trio
        from hypercorn.trio import serve as trio_serve

        async def trio_stopped() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    return

        async def trio_main() -> None:
            await trio_serve(app, config, shutdown_trigger=trio_stopped)

        trio.run(trio_main)
    else:
        import asyncio

        from hypercorn.asyncio import serve as asyncio_serve

        async def asyncio_main() -> None:
            # hypercorn's asyncio serve() stops on SIGTERM/SIGINT by itself.
            await asyncio_serve(app, config)

        asyncio.run(asyncio_main())


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--server NAME --worker-class asyncio|trio|uvicorn|granian --port N``."""
    parser = argparse.ArgumentParser(description="Serve one benchmarked app.")
    parser.add_argument("--server", choices=SERVERS + TYPED_SERVERS, required=True)
    parser.add_argument("--worker-class", choices=WORKER_CLASSES, default="asyncio")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    serve(args.server, args.worker_class, args.port)


if __name__ == "__main__":
    main()
