"""Server memory per idle client, by how the client came: on a websocket from
the start, or by long-polling upgraded to a websocket (socket.io-client's
default, so most browsers).

``benchmarks.run`` measures idle websocket clients against a bare websocket
app, which has no long-polling. This measures both kinds against gosf and
python-socketio, with python-socketio's own client (in this process) and
each server in a process of its own::

    python -m benchmarks.upgraded_memory --clients 200 --json benchmarks/upgraded-memory.json

``--recovery`` adds gosf with connection state recovery on (``gosf+recovery``):
what a client's recovery session (its pid, its place in the log) costs.

Per server and way in: a fresh server, 10 clients as a warm-up, then the
server's RSS before and after ``--clients`` more, divided by their number.
The "after" is taken ``--settle`` seconds after the last upgrade, longer
than hypercorn's 5 s keep-alive timeout, so that the HTTP connections the
client used for polling are closed and only the websockets are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .procs import Child, free_port, rss_kib, stop_on_sigterm, wait_listening
from .servers import WORKER_CLASSES, supports

ROOT = Path(__file__).resolve().parent.parent
WAYS = {"websocket": ["websocket"], "upgraded": ["polling", "websocket"]}
SERVERS = ("gosf", "python-socketio", "gosf+recovery")
RECOVERY = "gosf+recovery"
"""gosf with connection state recovery on (``--recovery``): the broadcast
benchmark's gosf app (:mod:`benchmarks.broadcast_servers`), one local worker."""


async def _connect(port: int, transports: list[str], count: int) -> list[Any]:
    import socketio

    clients = []
    for _ in range(count):
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(f"http://127.0.0.1:{port}", transports=transports)
        clients.append(client)
    return clients


async def _measure(pid: int, port: int, way: str, count: int, settle: float) -> dict[str, Any]:
    transports = WAYS[way]
    warm = await _connect(port, transports, 10)
    clients: list[Any] = []
    try:
        await asyncio.sleep(settle)
        before = rss_kib(pid)
        clients = await _connect(port, transports, count)
        deadline = asyncio.get_running_loop().time() + 10
        while any(c.transport() != "websocket" for c in clients):
            if asyncio.get_running_loop().time() > deadline:
                return {"error": "clients did not upgrade within 10 s"}
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle)
        after = rss_kib(pid)
        return {
            "clients": count,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_client": round((after - before) / count, 2),
        }
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients + warm), return_exceptions=True)


def measure(server: str, worker: str, way: str, count: int, settle: float) -> dict[str, Any]:
    """One fresh server process, one way in."""
    port = free_port()
    if server == RECOVERY:
        argv = [sys.executable, "-m", "benchmarks.broadcast_servers", "--server", "gosf"]
        argv += ["--recovery"]
    else:
        argv = [sys.executable, "-m", "benchmarks.servers", "--server", server]
    argv += ["--worker-class", worker, "--port", str(port)]
    with Child(f"{server} server", argv, cwd=ROOT) as child:
        wait_listening(port, child)
        return asyncio.run(_measure(child.pid, port, way, count, settle))


def parked_bytes(count: int = 10_000) -> dict[str, Any]:
    """Bytes per session parked by connection state recovery, in this process
    (``tracemalloc``): each a sid, a pid, its rooms (its own and one more) and
    a small state, as a client that dropped leaves them."""
    import tracemalloc

    import anyio

    import gosf
    from gosf._socketio.recovery import ParkedSession, new_pid
    from gosf._socketio.recovery_store import MemoryStore

    store = MemoryStore(gosf.Recovery(max_sessions=count))

    async def park_all() -> None:
        for n in range(count):
            sid = new_pid()  # a sid has the same length
            rooms = frozenset({sid, "room"})
            session = ParkedSession(new_pid(), sid, rooms, {"value": n}, store.position())
            await store.park(session)

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    anyio.run(park_all)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"sessions": count, "bytes_per_session": round((after - before) / count)}


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; the exit code (0, or 1 when one failed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--settle", type=float, default=6.0, help="seconds before each reading")
    parser.add_argument("--workers", nargs="+", choices=WORKER_CLASSES, default=["asyncio"])
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS[:2]))
    parser.add_argument(
        "--recovery", action="store_true", help=f"also {RECOVERY}: gosf with recovery on"
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    if args.recovery and RECOVERY not in args.servers:
        args.servers.append(RECOVERY)
    results: list[dict[str, Any]] = []
    for worker in args.workers:
        for server in args.servers:
            if not supports(server.removesuffix("+recovery"), worker):
                continue
            for way in WAYS:
                result = measure(server, worker, way, args.clients, args.settle)
                result.update(server=server, worker=worker, way=way)
                results.append(result)
                shown = result.get("kib_per_client", result.get("error"))
                print(f"[{worker}] {server}, {way}: {shown} KiB per idle client", flush=True)
    if args.recovery:
        parked = parked_bytes()
        results.append({"server": "parked sessions", **parked})
        print(f"a parked session: {parked['bytes_per_session']} bytes", flush=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"settings": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
            + "\n"
        )
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    stop_on_sigterm()  # here, not in main(): the test calls main() in pytest's process
    sys.exit(main())
