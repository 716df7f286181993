"""Instructions per round trip, counted by valgrind: a measure the machine's noise cannot move.

``python -m benchmarks.instructions [--servers gosf bare] [--workers asyncio trio]``

Throughput on a shared machine moves by 10-30% from run to run, too much to
tell whether a change to the hot path saved 3%. This counts instead: each
server runs under valgrind's callgrind tool (``PYTHONHASHSEED=0``), with
counting switched on (``callgrind_control -i on``) only while the load
generator's clients make exactly ``--round-trips`` acknowledged round trips
(``--clients`` at a time, after a warm-up), then the user-space instructions
the server executed are divided by the round trips. Two runs of the same code
agree to about 0.05%.

What it does not see: time in the kernel (the socket calls, the same for every
server), cache misses and the cost of valgrind's slowdown on timing-dependent
batching. So the ratio of instruction counts is not the ratio of round trips
per second (the bare app's kernel share makes the latter closer to 1); it tells
which change made the server's own work smaller, and by how much.

The load is the throughput benchmark's (``benchmarks.loadgen``'s raw clients
and requests), driven from this process. ``--broadcasts K`` counts
instructions per delivery of a broadcast instead: the gosf and the bare app
of ``benchmarks.broadcast_servers`` with ``--receivers`` clients and one
sender, which asks for ``K`` broadcasts one at a time (the next once every
receiver has the previous one and the sender its ack). ``--connects N``
counts instructions per connect instead: ``N`` raw clients connect one after
the other (websocket, and for gosf the Socket.IO CONNECT answered) and stay
connected until the count is taken. Needs ``valgrind`` (Debian package
``valgrind``); every child is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .loadgen import _open_raw, _request
from .procs import Child, free_port, stop_on_sigterm, wait_listening
from .servers import SERVERS, WORKER_CLASSES, supports
from .wsclient import WebSocket

__all__ = ("main", "parse_totals")

ROOT = Path(__file__).resolve().parent.parent
WARMUP_PER_CLIENT = 5
WARMUP_BROADCASTS = 5
WARMUP_CONNECTS = 10
QUIET_PING_INTERVAL = 3600.0
NEWS = '42["news",'
"""How a broadcast reaches a receiver: ``42["news",<n>,{"text":"hello"}]``."""
START_TIMEOUT = 120.0  # a Python server starts slowly under valgrind
RUN_TIMEOUT = 600.0


def parse_totals(dump: str) -> int:
    """The ``totals:`` (or, failing that, ``summary:``) instruction count of a callgrind dump.

    Raises:
        ValueError: the dump has neither line.
    """
    found: dict[str, int] = {}
    for line in dump.splitlines():
        key, _, value = line.partition(":")
        if key in ("totals", "summary") and value.strip():
            found[key] = int(value.split()[0])
    for key in ("totals", "summary"):
        if key in found:
            return found[key]
    raise ValueError("no totals in the callgrind dump")


class _Driver:
    """One client making ``left`` round trips, the next request sent from the answer's callback."""

    def __init__(self, ws: WebSocket, protocol: str, left: int, first: int) -> None:
        self.ws, self.protocol, self.left, self.next_id = ws, protocol, left, first
        self.expect = ""
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ws.on_text = self.on_text

    def fire(self) -> None:
        message, self.expect = _request(self.protocol, self.next_id)
        self.next_id += 1
        self.ws.send(message)

    def on_text(self, text: str) -> None:
        if text == "2":
            self.ws.send("3")
        elif text.startswith("42["):  # GOSF's event copy of each response
            pass
        elif not text.startswith(self.expect):
            if not self.done.done():
                self.done.set_exception(RuntimeError(f"unexpected answer {text[:60]!r}"))
        else:
            self.left -= 1
            if self.left:
                self.fire()
            elif not self.done.done():
                self.done.set_result(None)


async def _round_trips(conns: list[WebSocket], protocol: str, per_client: int, first: int) -> None:
    """Each client makes ``per_client`` round trips, one in flight at a time.

    Raises:
        RuntimeError: an answer was not the expected one.
    """
    drivers = [_Driver(ws, protocol, per_client, first) for ws in conns]
    for driver in drivers:
        driver.fire()
    await asyncio.gather(*(driver.done for driver in drivers))


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=60)


async def _measure(pid: int, port: int, protocol: str, clients: int, round_trips: int) -> int:
    """Instructions the server ``pid`` executed for ``round_trips`` round trips."""
    conns = [await _open_raw(port, protocol) for _ in range(clients)]
    try:
        await _round_trips(conns, protocol, WARMUP_PER_CLIENT, 0)
        per_client = max(1, round_trips // clients)
        _control("-z", str(pid))
        _control("-i", "on", str(pid))
        await asyncio.wait_for(
            _round_trips(conns, protocol, per_client, WARMUP_PER_CLIENT), RUN_TIMEOUT
        )
        _control("-i", "off", str(pid))
    finally:
        for ws in conns:
            ws.close()
    return per_client * clients


class _Receivers:
    """The broadcast's receiving clients: counts the ``news`` frames each got."""

    def __init__(self, conns: list[WebSocket]) -> None:
        self.conns = conns
        self.missing = 0
        self.all_in: asyncio.Future[None] | None = None
        for ws in conns:
            ws.on_text = self._on_text(ws)

    def _on_text(self, ws: WebSocket) -> Callable[[str], None]:
        def on_text(text: str) -> None:
            if text == "2":
                ws.send("3")
            elif text.startswith(NEWS):
                self.missing -= 1
                if not self.missing and self.all_in is not None and not self.all_in.done():
                    self.all_in.set_result(None)

        return on_text


async def _broadcasts(sender: WebSocket, receivers: _Receivers, count: int, first: int) -> None:
    """``count`` broadcasts, one at a time, each waited for by every receiver and its ack."""
    loop = asyncio.get_running_loop()
    for n in range(first, first + count):
        receivers.missing = len(receivers.conns)
        receivers.all_in = loop.create_future()
        acked: asyncio.Future[None] = loop.create_future()

        def on_ack(text: str, n: int = n, acked: asyncio.Future[None] = acked) -> None:
            if text == "2":
                sender.send("3")
            elif text.startswith(f"43{n}[") and not acked.done():
                acked.set_result(None)

        sender.on_text = on_ack
        sender.send(f'42{n}["blast",{n}]')
        await asyncio.gather(acked, receivers.all_in)


async def _measure_broadcasts(pid: int, port: int, receiving: int, broadcasts: int) -> int:
    """Instructions the server ``pid`` executed for ``broadcasts`` broadcasts; the deliveries."""
    conns = [await _open_raw(port, "socketio") for _ in range(receiving)]
    sender = await _open_raw(port, "socketio")
    receivers = _Receivers(conns)
    try:
        await asyncio.wait_for(_broadcasts(sender, receivers, WARMUP_BROADCASTS, 0), RUN_TIMEOUT)
        _control("-z", str(pid))
        _control("-i", "on", str(pid))
        await asyncio.wait_for(
            _broadcasts(sender, receivers, broadcasts, WARMUP_BROADCASTS), RUN_TIMEOUT
        )
        _control("-i", "off", str(pid))
    finally:
        for ws in [*conns, sender]:
            ws.close()
    return broadcasts * receiving


async def _measure_connects(pid: int, port: int, protocol: str, connects: int) -> int:
    """Instructions the server ``pid`` executed for ``connects`` connects, one at a time."""
    conns = [await _open_raw(port, protocol) for _ in range(WARMUP_CONNECTS)]
    try:
        _control("-z", str(pid))
        _control("-i", "on", str(pid))
        for _ in range(connects):
            conns.append(await asyncio.wait_for(_open_raw(port, protocol), RUN_TIMEOUT))
        _control("-i", "off", str(pid))
    finally:
        for ws in conns:
            ws.close()
    return connects


def _count(
    name: str,
    module: str,
    server: str,
    worker: str,
    run: Callable[[int, int], int],
    extra: tuple[str, ...] = (),
) -> tuple[int, int]:
    """Run ``module``'s ``server`` (with the options ``extra``) under callgrind;
    ``run(pid, port)`` makes the load and returns how many units it made.
    Returns (instructions, units)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gosf-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        argv += [f"--callgrind-out-file={out}.%p", sys.executable, "-m", module]
        argv += ["--server", server, "--worker-class", worker, "--port", str(port), *extra]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        with Child(
            f"{name} ({worker}) under callgrind",
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as child:
            wait_listening(port, child, timeout=START_TIMEOUT)
            done = run(child.pid, port)
            _control("-d", str(child.pid))
            dumps = sorted(Path(tmp).glob("callgrind.out.*.*"), key=lambda p: p.stat().st_mtime)
            if not dumps:
                raise RuntimeError("callgrind wrote no dump")
            return parse_totals(dumps[-1].read_text()), done


def measure(server: str, worker: str, clients: int, round_trips: int) -> dict[str, Any]:
    """Run ``server`` under callgrind and count; the result as a dict."""
    protocol = "bare" if server == "bare" else "socketio"

    def run(pid: int, port: int) -> int:
        return asyncio.run(_measure(pid, port, protocol, clients, round_trips))

    instructions, done = _count(server, "benchmarks.servers", server, worker, run)
    return {
        "server": server,
        "worker": worker,
        "clients": clients,
        "round_trips": done,
        "instructions": instructions,
        "per_round_trip": round(instructions / done),
    }


def measure_connects(server: str, worker: str, connects: int) -> dict[str, Any]:
    """Run ``server`` under callgrind and count per connect; the result as a dict."""
    protocol = "bare" if server == "bare" else "socketio"

    def run(pid: int, port: int) -> int:
        return asyncio.run(_measure_connects(pid, port, protocol, connects))

    instructions, done = _count(f"{server} connects", "benchmarks.servers", server, worker, run)
    return {
        "server": f"{server}-connect",
        "worker": worker,
        "connects": done,
        "instructions": instructions,
        "per_connect": round(instructions / done),
    }


def measure_broadcasts(server: str, worker: str, receiving: int, broadcasts: int) -> dict[str, Any]:
    """Run ``server``'s broadcast app (gosf or bare) under callgrind and count
    per delivery; the result as a dict."""

    def run(pid: int, port: int) -> int:
        return asyncio.run(_measure_broadcasts(pid, port, receiving, broadcasts))

    # No heartbeat in the counted window: one would ping every client (as
    # costly as a broadcast), and whether it falls in depends on the time taken.
    extra = ("--ping-interval", str(QUIET_PING_INTERVAL))
    instructions, done = _count(
        f"{server} broadcast", "benchmarks.broadcast_servers", server, worker, run, extra
    )
    return {
        "server": f"{server}-broadcast",
        "worker": worker,
        "clients": receiving,
        "deliveries": done,
        "instructions": instructions,
        "per_delivery": round(instructions / done),
    }


def _table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| worker | server | instructions per round trip | bare / server |",
        "|---|---|---:|---:|",
    ]
    bare = {r["worker"]: r["per_round_trip"] for r in results if r["server"] == "bare"}
    for r in results:
        base = bare.get(r["worker"])
        ratio = f"{base / r['per_round_trip']:.2f}x" if base else "n/a"
        rows.append(f"| {r['worker']} | {r['server']} | {r['per_round_trip']:,} | {ratio} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=["gosf", "bare"])
    parser.add_argument("--workers", nargs="+", choices=WORKER_CLASSES, default=["asyncio"])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument(
        "--broadcasts", type=int, metavar="K", help="count per delivery of K broadcasts instead"
    )
    parser.add_argument("--receivers", type=int, default=200, help="clients a broadcast reaches")
    parser.add_argument(
        "--connects", type=int, metavar="N", help="count per connect of N connects instead"
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: install valgrind (Debian: apt-get install valgrind)")
            return 2
    stop_on_sigterm()
    results = []
    if args.connects:
        for worker in args.workers:
            for server in args.servers:
                if not supports(server, worker):
                    continue
                result = measure_connects(server, worker, args.connects)
                print(f"[{worker}] {server}: {result['per_connect']:,} instructions per connect")
                results.append(result)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 0
    if args.broadcasts:
        for worker in args.workers:
            for server in ("gosf", "bare"):
                if server not in args.servers:
                    continue
                result = measure_broadcasts(server, worker, args.receivers, args.broadcasts)
                per = result["per_delivery"]
                print(f"[{worker}] {server} broadcast: {per:,} instructions per delivery")
                results.append(result)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 0
    for worker in args.workers:
        for server in args.servers:
            if not supports(server, worker):
                continue
            result = measure(server, worker, args.clients, args.round_trips)
            print(f"[{worker}] {server}: {result['per_round_trip']:,} instructions per round trip")
            results.append(result)
    print()
    print(_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
