"""The load generator: N websocket clients, one acknowledged request in flight each.

Run as a process of its own, apart from the server::

    python -m benchmarks.loadgen --port 8001 --protocol socketio --clients 50
    python -m benchmarks.loadgen --port 8001 --protocol socketio --idle 500

``--protocol socketio`` speaks the Socket.IO wire protocol directly (Engine.IO
4 over a websocket): read the OPEN packet ``0{...}``, send ``40``, read
``40{"sid":...}``, then send ``42<id>["echo",{"text":"hello"}]`` and wait for
``43<id>[...]``, answering each ``2`` ping with ``3``. ``--protocol bare``
sends the same text to a plain websocket echo and waits for it to come back.

A load run connects every client, warms up (``--warmup``), then counts the
round trips completed in ``--seconds`` and prints one JSON line: round trips
per second, p50/p99 latency, and the CPU share (of one core) used by this
process and, with ``--server-pid``, by the server, and what the rest of the
machine used meanwhile (``other_cpu``: other processes and stolen time).

``--idle N`` opens N connections (completing the Socket.IO connect), prints
one JSON line once all are up, and holds them until stdin closes (at most
``--hold`` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .procs import cpu_seconds, machine_cpu
from .wsclient import WebSocket, connect

__all__ = ("main",)

HOST = "127.0.0.1"
SOCKETIO_PATH = "/socket.io/?EIO=4&transport=websocket"
BARE_PATH = "/"
PAYLOAD = '{"text":"hello"}'
CONNECT_TIMEOUT = 20.0
MAX_CONCURRENT_CONNECTS = 64
DRAIN_TIMEOUT = 5.0


class Window:
    """Round trips completed while the measurement window is open."""

    __slots__ = ("errors", "latencies", "measuring", "stopping")

    def __init__(self) -> None:
        self.measuring = False
        self.stopping = False
        self.latencies: list[float] = []
        self.errors = 0


def _request(protocol: str, request_id: int) -> tuple[str, str]:
    """The message to send and what its answer starts with (the whole echo for ``bare``)."""
    message = f'42{request_id}["echo",{PAYLOAD}]'
    return message, (f"43{request_id}[" if protocol == "socketio" else message)


# -- the raw client (default): callbacks, no task per message ---------------------------


async def _open_raw(port: int, protocol: str, source: str | None = None) -> WebSocket:
    """A connected client (from the local address ``source`` when given); for
    Socket.IO, connected to the ``/`` namespace.

    Raises:
        ConnectionError: the server refused the connection or the namespace.
    """
    path = SOCKETIO_PATH if protocol == "socketio" else BARE_PATH
    ws = await connect(HOST, port, path, source=source)
    if protocol == "socketio":
        try:
            opening = await ws.recv()
            if not opening.startswith("0{"):
                raise ConnectionError(f"expected the Engine.IO OPEN packet, got {opening[:40]!r}")
            ws.send("40")
            while True:
                reply = await ws.recv()
                if reply == "2":
                    ws.send("3")
                elif reply.startswith("40"):
                    break
                else:
                    raise ConnectionError(f"namespace connect refused: {reply[:80]!r}")
        except BaseException:
            ws.close()
            raise
    return ws


class _RawDriver:
    """Keeps one request in flight on one raw client, from inside its receive callback."""

    __slots__ = ("expect", "idle", "in_flight", "next_id", "protocol", "started", "window", "ws")

    def __init__(self, ws: WebSocket, protocol: str, window: Window) -> None:
        self.ws = ws
        self.protocol = protocol
        self.window = window
        self.next_id = 0
        self.expect = ""
        self.started = 0.0
        self.in_flight = False
        ws.on_text = self.on_text

    def fire(self) -> None:
        if self.window.stopping:
            self.in_flight = False
            return
        message, self.expect = _request(self.protocol, self.next_id)
        self.next_id += 1
        self.in_flight = True
        self.started = time.perf_counter()
        self.ws.send(message)

    def on_text(self, text: str) -> None:
        if text == "2":
            self.ws.send("3")
            return
        if text.startswith("42["):  # an event: GOSF sends each response as an event too
            return
        if not text.startswith(self.expect):
            self.window.errors += 1
            return
        window = self.window
        if window.measuring:
            window.latencies.append(time.perf_counter() - self.started)
        self.fire()


# -- the websockets library's asyncio client (for comparison: --client websockets) ----


async def _open_websockets(port: int, protocol: str) -> Any:
    from websockets.asyncio.client import connect as ws_connect

    path = SOCKETIO_PATH if protocol == "socketio" else BARE_PATH
    ws = await ws_connect(f"ws://{HOST}:{port}{path}", compression=None, ping_interval=None)
    if protocol == "socketio":
        opening = await ws.recv()
        if not str(opening).startswith("0{"):
            raise ConnectionError(f"expected the Engine.IO OPEN packet, got {opening!r}")
        await ws.send("40")
        while True:
            reply = str(await ws.recv())
            if reply == "2":
                await ws.send("3")
            elif reply.startswith("40"):
                break
            else:
                raise ConnectionError(f"namespace connect refused: {reply[:80]!r}")
    return ws


async def _websockets_loop(ws: Any, protocol: str, window: Window) -> None:
    request_id = 0
    while not window.stopping:
        message, expect = _request(protocol, request_id)
        request_id += 1
        started = time.perf_counter()
        await ws.send(message)
        while True:
            reply = str(await ws.recv())
            if reply == "2":
                await ws.send("3")
            elif reply.startswith(expect):
                break
            elif not reply.startswith("42["):  # GOSF's event copy of the response is fine
                window.errors += 1
        if window.measuring:
            window.latencies.append(time.perf_counter() - started)


# -- running ---------------------------------------------------------------------------


async def _open_all(opener: Callable[[], Awaitable[Any]], count: int) -> list[Any]:
    """Open ``count`` connections, at most :data:`MAX_CONCURRENT_CONNECTS` at a time.

    Raises:
        RuntimeError: a connection failed or timed out.
    """
    gate = asyncio.Semaphore(MAX_CONCURRENT_CONNECTS)

    async def one() -> Any:
        async with gate:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await opener()

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    clients = [r for r in results if not isinstance(r, BaseException)]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        for client in clients:
            await _close(client)
        raise RuntimeError(f"{len(failures)} of {count} connections failed: {failures[0]!r}")
    return clients


async def _close(client: Any) -> None:
    if isinstance(client, WebSocket):
        client.close()
    else:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await client.close()


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def run_load(
    port: int,
    protocol: str,
    clients: int,
    seconds: float,
    warmup: float,
    client_kind: str,
    server_pid: int | None,
) -> dict[str, Any]:
    """Connect ``clients`` clients, warm up, measure for ``seconds``; the results."""
    window = Window()
    tasks: list[asyncio.Task[None]] = []
    drivers: list[_RawDriver] = []
    if client_kind == "raw":
        conns = await _open_all(lambda: _open_raw(port, protocol), clients)
        drivers = [_RawDriver(ws, protocol, window) for ws in conns]
        for driver in drivers:
            driver.fire()
    else:
        conns = await _open_all(lambda: _open_websockets(port, protocol), clients)
        tasks = [asyncio.create_task(_websockets_loop(ws, protocol, window)) for ws in conns]
    try:
        await asyncio.sleep(warmup)
        server_cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
        own_cpu0 = time.process_time()
        busy0, steal0 = machine_cpu()
        started = time.perf_counter()
        window.measuring = True
        await asyncio.sleep(seconds)
        window.measuring = False
        elapsed = time.perf_counter() - started
        busy1, steal1 = machine_cpu()
        own_cpu = (time.process_time() - own_cpu0) / elapsed
        server_cpu = (cpu_seconds(server_pid) - server_cpu0) / elapsed if server_pid else None
        # What else ran on the machine meanwhile (other processes, stolen time).
        other_cpu = (busy1 - busy0) / elapsed - own_cpu - (server_cpu or 0.0)
        steal = (steal1 - steal0) / elapsed
        window.stopping = True
        # Let the requests in flight finish, so servers see clean closes.
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            if tasks and all(task.done() for task in tasks):
                break
            if drivers and not any(driver.in_flight for driver in drivers):
                break
            await asyncio.sleep(0.02)
    finally:
        window.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in conns:
            await _close(conn)
    ordered = sorted(window.latencies)
    return {
        "mode": "load",
        "protocol": protocol,
        "client": client_kind,
        "clients": clients,
        "seconds": round(elapsed, 3),
        "round_trips": len(ordered),
        "rps": round(len(ordered) / elapsed, 1),
        "p50_ms": round(_percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(_percentile(ordered, 0.99) * 1000, 3),
        "errors": window.errors,
        "loadgen_cpu": round(own_cpu, 3),
        "server_cpu": None if server_cpu is None else round(server_cpu, 3),
        "other_cpu": round(max(0.0, other_cpu), 3),
        "steal_cpu": round(steal, 3),
    }


async def _stdin_closed() -> None:
    """Return once stdin reaches end of file."""
    loop = asyncio.get_running_loop()
    closed = loop.create_future()

    class Watch(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            if not closed.done():
                closed.set_result(None)

    transport, _ = await loop.connect_read_pipe(Watch, sys.stdin)
    try:
        await closed
    finally:
        transport.close()


async def run_idle(port: int, protocol: str, count: int, hold: float) -> None:
    """Open ``count`` idle connections, report, and hold them until stdin closes."""
    started = time.perf_counter()
    conns: list[WebSocket] = await _open_all(lambda: _open_raw(port, protocol), count)
    try:
        for ws in conns:
            ws.on_text = lambda text, ws=ws: ws.send("3") if text == "2" else None
        report = {
            "mode": "idle",
            "protocol": protocol,
            "connected": len(conns),
            "connect_seconds": round(time.perf_counter() - started, 3),
        }
        print(json.dumps(report), flush=True)
        with contextlib.suppress(TimeoutError, OSError, ValueError):
            async with asyncio.timeout(hold):
                await _stdin_closed()
    finally:
        for ws in conns:
            ws.close()
        await asyncio.sleep(0.1)  # let the close frames go out


def main(argv: list[str] | None = None) -> None:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(description="websocket load generator for gosf's benchmark")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=("socketio", "bare"), default="socketio")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--client",
        choices=("raw", "websockets"),
        default="raw",
        help="raw asyncio protocol client (default) or the websockets library's",
    )
    parser.add_argument("--server-pid", type=int, help="report this process's CPU share")
    parser.add_argument("--idle", type=int, metavar="N", help="hold N idle connections instead")
    parser.add_argument("--hold", type=float, default=300.0, help="longest idle hold, seconds")
    args = parser.parse_args(argv)
    if args.idle is not None:
        asyncio.run(run_idle(args.port, args.protocol, args.idle, args.hold))
        return
    result = asyncio.run(
        run_load(
            args.port,
            args.protocol,
            args.clients,
            args.seconds,
            args.warmup,
            args.client,
            args.server_pid,
        )
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
