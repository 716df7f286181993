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

``--recovery`` turns gosf's connection state recovery on (each broadcast is
logged, and carries its offset): the benchmark's ``+recovery`` setups.

Under ``--worker-class granian`` granian's worker process builds the app
(:func:`app_from_env`) from the settings this process leaves it in the
environment. Node's socket.io serves the same events from
``benchmarks/node/socketio_server.cjs`` (:mod:`benchmarks.nodejs`).

Serve one worker with::

    python -m benchmarks.broadcast_servers --server gosf --worker-class trio \\
        --port 8001 --broker redis://127.0.0.1:6390/0
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .servers import WORKER_CLASSES, ASGIApp, serve_app, serve_granian, supports

__all__ = ("CHANNEL", "PAYLOAD", "SERVERS", "app_from_env", "build_app", "main")

SERVERS = ("gosf", "python-socketio", "bare")
PAYLOAD = {"text": "hello"}
CHANNEL = {"gosf": "gosf", "python-socketio": "socketio"}
"""The Redis pub/sub channel each app's workers subscribe to (each library's default)."""
SETTINGS_ENV = "GOSF_BENCH_BROADCAST"
"""The environment variable holding, as JSON, what :func:`app_from_env` builds."""


def gosf_app(
    broker_url: str | None, ping_interval: float | None = None, recovery: bool = False
) -> ASGIApp:
    """gosf: ``blast`` broadcasts through ``server.emit`` (Redis broker or local).

    ``ping_interval``: instead of gosf's default (the instruction counts
    set a long one, so that no heartbeat falls in the counted window);
    ``recovery``: with connection state recovery on (its defaults).
    """
    import gosf
    from gosf.brokers import from_url

    options: dict[str, Any] = {} if ping_interval is None else {"ping_interval": ping_interval}
    server = gosf.SocketIOServer(
        broker=from_url(broker_url),
        recovery=gosf.Recovery() if recovery else None,
        **options,
    )
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


class _BareClient:
    """One websocket of the bare app: what is queued for it, and its writer's wake-up."""

    __slots__ = ("queue", "ready")

    def __init__(self) -> None:
        self.queue: list[str] = []
        self.ready: Any = None  # an anyio.Event while the writer waits


def bare_app() -> ASGIApp:
    """No Socket.IO: the least an ASGI app can do for the same broadcast.

    It answers the handshakes with canned frames (the Engine.IO OPEN, the
    namespace CONNECT) and each ``blast`` by queueing the same frame for
    every other client and waking that client's writer task, which sends
    what is queued, as gosf's writers do (a broadcaster never waits on a
    recipient's network); then it acks. What it costs per delivery is the
    ASGI server's send plus one task wake-up: the floor under gosf's.
    """
    import anyio
    import orjson

    clients: dict[int, _BareClient] = {}

    async def writer(me: _BareClient, send: Any) -> None:
        while True:
            while me.queue:
                frames, me.queue = me.queue, []
                for frame in frames:
                    await send({"type": "websocket.send", "text": frame})
            me.ready = anyio.Event()
            await me.ready.wait()

    async def websocket(receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        open_packet = {"sid": "x", "upgrades": [], "pingInterval": 3600000, "pingTimeout": 20000}
        await send({"type": "websocket.send", "text": "0" + orjson.dumps(open_packet).decode()})
        me = _BareClient()
        key = id(me)
        clients[key] = me
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer, me, send)
                while True:
                    message = await receive()
                    if message["type"] != "websocket.receive":
                        break
                    text = message.get("text") or ""
                    if text == "40":
                        await send({"type": "websocket.send", "text": '40{"sid":"x"}'})
                    elif '["blast",' in text:  # 42<id>["blast",<n>]
                        ack_id, _, rest = text[2:].partition("[")
                        n = rest[len('"blast",') : -1]
                        frame = f'42["news",{n},{orjson.dumps(PAYLOAD).decode()}]'
                        for other, client in clients.items():
                            if other != key:
                                client.queue.append(frame)
                                if client.ready is not None:
                                    client.ready, ready = None, client.ready
                                    ready.set()
                        await send({"type": "websocket.send", "text": f"43{ack_id}[{n}]"})
                    elif '["whoami"' in text or '["census"' in text:
                        ack_id = text[2:].partition("[")[0]
                        answer = (
                            os.getpid()
                            if "whoami" in text
                            else {"pid": os.getpid(), "sockets": len(clients)}
                        )
                        reply = f"43{ack_id}[{orjson.dumps(answer).decode()}]"
                        await send({"type": "websocket.send", "text": reply})
                tg.cancel_scope.cancel()
        finally:
            del clients[key]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await websocket(receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    return app


def build_app(
    server: str,
    broker_url: str | None,
    ping_interval: float | None = None,
    recovery: bool = False,
) -> ASGIApp:
    """The app named ``server`` (one of :data:`SERVERS`), with a Redis broker if
    ``broker_url`` (gosf: with ``ping_interval`` if given, and connection state
    recovery if ``recovery``)."""
    if server == "gosf":
        return gosf_app(broker_url, ping_interval, recovery)
    if recovery:
        raise ValueError(f"{server} has no connection state recovery")
    if server == "python-socketio":
        return python_socketio_app(broker_url)
    if server == "bare":
        return bare_app()
    raise ValueError(f"unknown server {server!r}")


def app_from_env() -> ASGIApp:
    """The app that :data:`SETTINGS_ENV` describes: granian's worker process builds
    it (granian imports its app by name, in a process of its own)."""
    settings = json.loads(os.environ[SETTINGS_ENV])
    return build_app(
        settings["server"], settings["broker"], settings["ping_interval"], settings["recovery"]
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--server NAME --worker-class W --port N [--broker URL]``
    (W: asyncio, trio, uvicorn or granian)."""
    parser = argparse.ArgumentParser(description="Serve one worker of a broadcast benchmark app.")
    parser.add_argument("--server", choices=SERVERS, required=True)
    parser.add_argument("--worker-class", choices=WORKER_CLASSES, default="asyncio")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--broker", help="redis://host:port/db; none: a single local worker")
    parser.add_argument("--ping-interval", type=float, help="gosf: seconds between heartbeats")
    parser.add_argument("--recovery", action="store_true", help="connection state recovery on")
    args = parser.parse_args(argv)
    if not supports(args.server, args.worker_class):
        raise SystemExit(f"{args.server} cannot run under the {args.worker_class} worker")
    if args.worker_class == "granian":
        settings = {
            "server": args.server,
            "broker": args.broker,
            "ping_interval": args.ping_interval,
            "recovery": args.recovery,
        }
        os.environ[SETTINGS_ENV] = json.dumps(settings)  # granian's worker inherits it
        serve_granian("benchmarks.broadcast_servers:app_from_env", args.port)
        return
    app = build_app(args.server, args.broker, args.ping_interval, args.recovery)
    serve_app(app, args.worker_class, args.port)


if __name__ == "__main__":
    main()
