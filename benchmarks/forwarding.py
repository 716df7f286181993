"""What no sticky sessions cost: ``python -m benchmarks.forwarding [--quick] [--json PATH]``.

Two gosf workers (hypercorn, one worker each, on two ports, asyncio or trio)
joined by the Redis broker, and a ``redis-server`` started here. A
load-generator process (this module with ``--client``) opens N Socket.IO
clients, half of them with their session on each worker, and each keeps one
acknowledged ``echo`` round trip in flight. Four ways to reach the session:

* ``polling/direct``: every HTTP request goes to the worker holding the session;
* ``polling/forwarded``: the handshake goes to one worker, every later GET and
  POST to the other, which forwards it to the owner through Redis;
* ``websocket/direct``: the polling handshake, then the websocket upgrade on
  the owner;
* ``websocket/relayed``: the upgrade on the other worker, which relays every
  frame to and from the owner through Redis (the client upgrades once its
  CONNECT was answered: too late for the session to move);
* ``websocket/handed-over``: what a stock client does behind a round-robin
  balancer whose websocket lands on the other worker: the CONNECT is POSTed
  to the owner and the upgrade starts at once, on the other worker; the
  young session moves there (``upgrade_handover``) and is served directly.

A polling round trip is a POST of ``42<id>["echo",...]`` and GETs until the
ack ``43<id>[...]`` is in; a websocket one is a frame each way. After a warm-up,
the round trips completed in the window are counted: round trips/s, latency
p50/p99, and the CPU the workers and Redis used. Tests never assert speed;
this only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Any

from .broadcast import running_redis
from .procs import Child, cpu_seconds, free_port, wait_listening

__all__ = ("main",)

MODES = (
    "polling/direct",
    "polling/forwarded",
    "websocket/direct",
    "websocket/relayed",
    "websocket/handed-over",
)


# -- the load generator ---------------------------------------------------------------------


_TEXT = {"content-type": "text/plain;charset=UTF-8"}


async def _connect_polling(session: Any, handshake_port: int, request_port: int) -> str:
    """Open a session on ``handshake_port``, join ``/`` through ``request_port``: the sid."""
    base = f"http://127.0.0.1:{handshake_port}/socket.io/?EIO=4&transport=polling"
    async with session.get(base) as response:
        sid: str = json.loads((await response.text())[1:])["sid"]
    url = f"http://127.0.0.1:{request_port}/socket.io/?EIO=4&transport=polling&sid={sid}"
    async with session.post(url, data=b"40", headers=_TEXT) as response:
        await response.read()
    while True:
        async with session.get(url) as response:
            if any(p.startswith("40") for p in (await response.text()).split("\x1e")):
                return sid


async def _polling_client(session: Any, handshake_port: int, request_port: int) -> Any:
    """A connected polling client: its round-trip coroutine function."""
    sid = await _connect_polling(session, handshake_port, request_port)
    url = f"http://127.0.0.1:{request_port}/socket.io/?EIO=4&transport=polling&sid={sid}"

    async def post(body: str) -> None:
        async with session.post(url, data=body.encode(), headers=_TEXT) as response:
            if response.status != 200:
                raise RuntimeError(f"POST {response.status}: {await response.text()}")

    async def get() -> list[str]:
        async with session.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"GET {response.status}: {await response.text()}")
            packets: list[str] = (await response.text()).split("\x1e")
            return packets

    async def round_trip(n: int) -> None:
        await post(f'42{n}["echo",{n}]')
        want = f"43{n}[{n}]"
        while True:
            packets = await get()
            if "2" in packets:
                await post("3")
            if want in packets:
                return

    return round_trip


async def _websocket_client(session: Any, owner_port: int, upgrade_port: int) -> Any:
    """A client connected over polling, then upgraded on ``upgrade_port``: (ws, round trip)."""
    sid = await _connect_polling(session, owner_port, owner_port)
    return await _upgraded(upgrade_port, f"/socket.io/?EIO=4&transport=websocket&sid={sid}")


async def _young_websocket_client(session: Any, owner_port: int, upgrade_port: int) -> Any:
    """A stock client's way in: the handshake and the CONNECT (POST) on
    ``owner_port``, the upgrade at once on ``upgrade_port``: (ws, round trip)."""
    base = f"http://127.0.0.1:{owner_port}/socket.io/?EIO=4&transport=polling"
    async with session.get(base) as response:
        sid: str = json.loads((await response.text())[1:])["sid"]
    async with session.post(f"{base}&sid={sid}", data=b"40", headers=_TEXT) as response:
        await response.read()
    path = f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
    ws, round_trip = await _upgraded(upgrade_port, path)
    if not (await ws.recv()).startswith("40"):
        raise RuntimeError("no CONNECT answer on the websocket")
    return ws, round_trip


async def _upgraded(port: int, path: str) -> Any:
    """The probe and upgrade on a new websocket: (ws, round trip)."""
    from .wsclient import connect

    ws = await connect("127.0.0.1", port, path)
    ws.send("2probe")
    if await ws.recv() != "3probe":
        raise RuntimeError("no probe answer")
    ws.send("5")

    async def round_trip(n: int) -> None:
        ws.send(f'42{n}["echo",{n}]')
        want = f"43{n}[{n}]"
        while True:
            text = await ws.recv()
            if text == "2":
                ws.send("3")
            elif text == want:
                return

    return ws, round_trip


async def _load(
    mode: str, ports: list[int], clients: int, warmup: float, seconds: float
) -> dict[str, Any]:
    import aiohttp

    sessions = []
    trips = []
    sockets = []
    for i in range(clients):
        owner, other = ports[i % 2], ports[(i + 1) % 2]
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2))
        sessions.append(session)
        if mode == "polling/direct":
            trip = await _polling_client(session, owner, owner)
        elif mode == "polling/forwarded":
            trip = await _polling_client(session, owner, other)
        elif mode == "websocket/handed-over":
            ws, trip = await _young_websocket_client(session, owner, other)
            sockets.append(ws)
        else:
            ws, trip = await _websocket_client(
                session, owner, owner if mode == "websocket/direct" else other
            )
            sockets.append(ws)
        trips.append(trip)

    latencies: list[float] = []
    measuring = False
    stop = False

    async def run(trip: Any) -> None:
        n = 0
        while not stop:
            n += 1
            started = time.perf_counter()
            await trip(n)
            if measuring:
                latencies.append(time.perf_counter() - started)

    tasks = [asyncio.ensure_future(run(trip)) for trip in trips]
    try:
        await asyncio.sleep(warmup)
        measuring = True
        started = time.perf_counter()
        print(json.dumps({"window": "start"}), flush=True)
        await asyncio.sleep(seconds)
        measuring = False
        elapsed = time.perf_counter() - started
        print(json.dumps({"window": "end"}), flush=True)
        stop = True
        done = len(latencies)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    finally:
        for task in tasks:
            task.cancel()
        for ws in sockets:
            ws.close()
        for session in sessions:
            await session.close()
    ordered = sorted(latencies)

    def pick(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0

    return {
        "mode": mode,
        "clients": clients,
        "round_trips_per_s": done / elapsed,
        "p50_ms": pick(0.5) * 1000,
        "p99_ms": pick(0.99) * 1000,
    }


# -- the driver -----------------------------------------------------------------------------


def _measure(
    mode: str, ports: list[int], pids: list[int], clients: int, warmup: float, seconds: float
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.forwarding", "--client", mode]
    argv += ["--ports", *map(str, ports), "--clients", str(clients)]
    argv += ["--warmup", str(warmup), "--seconds", str(seconds)]
    with Child(f"loadgen {mode}", argv, stdout=subprocess.PIPE, stdin=subprocess.PIPE) as child:
        cpu_start: list[float] = []
        used: list[float] = []
        wall = 0.0
        result: dict[str, Any] = {}
        deadline = time.monotonic() + warmup + seconds + 120
        for line in child.stdout:
            message = json.loads(line)
            if message.get("window") == "start":
                cpu_start, wall = [cpu_seconds(pid) for pid in pids], time.monotonic()
            elif message.get("window") == "end":
                wall = time.monotonic() - wall
                used = [cpu_seconds(p) - start for p, start in zip(pids, cpu_start, strict=True)]
            else:
                result = message
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{mode}: the load generator did not finish")
        if not result:
            raise RuntimeError(f"{mode}: the load generator exited with {child.proc.wait()}")
    result["worker_cores"] = sum(used[:2]) / wall
    result["redis_cores"] = used[2] / wall
    return result


def run(worker_classes: list[str], clients: int, warmup: float, seconds: float) -> dict[str, Any]:
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is not installed (apt install redis-server)")
    results: dict[str, Any] = {"clients": clients, "seconds": seconds, "rows": []}
    with running_redis(executable, None) as (redis, redis_port):
        url = f"redis://127.0.0.1:{redis_port}/0"
        for worker_class in worker_classes:
            ports = [free_port(), free_port()]
            with ExitStack() as stack:
                workers = []
                for port in ports:
                    argv = [sys.executable, "-m", "benchmarks.broadcast_servers", "--server"]
                    argv += ["gosf", "--worker-class", worker_class, "--port", str(port)]
                    argv += ["--broker", url]
                    child = stack.enter_context(Child(f"gosf {worker_class} :{port}", argv))
                    wait_listening(port, child)
                    workers.append(child)
                time.sleep(1.0)  # both subscribed
                pids = [w.pid for w in workers] + [redis.pid]
                for mode in MODES:
                    row = _measure(mode, ports, pids, clients, warmup, seconds)
                    row["worker_class"] = worker_class
                    results["rows"].append(row)
                    print(_format_row(row), flush=True)
    return results


def _format_row(row: dict[str, Any]) -> str:
    return (
        f"{row['worker_class']:8} {row['mode']:21} {row['round_trips_per_s']:9,.0f}/s"
        f"  p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms"
        f"  workers {row['worker_cores']:.2f} cores  redis {row['redis_cores']:.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10 clients, short windows")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--worker-class", action="append", choices=("asyncio", "trio"))
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--client", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--ports", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        result = asyncio.run(
            _load(args.client, args.ports, args.clients, args.warmup, args.seconds)
        )
        print(json.dumps(result), flush=True)
        return
    if args.quick:
        args.clients, args.warmup, args.seconds = 10, 0.5, 1.5
    results = run(args.worker_class or ["asyncio", "trio"], args.clients, args.warmup, args.seconds)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
