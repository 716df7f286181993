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
and requests), driven from this process. Needs ``valgrind`` (Debian package
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
from pathlib import Path
from typing import Any

from .loadgen import _open_raw, _request
from .procs import Child, free_port, stop_on_sigterm, wait_listening
from .servers import SERVERS, WORKER_CLASSES, supports
from .wsclient import WebSocket

__all__ = ("main", "parse_totals")

ROOT = Path(__file__).resolve().parent.parent
WARMUP_PER_CLIENT = 5
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


def measure(server: str, worker: str, clients: int, round_trips: int) -> dict[str, Any]:
    """Run ``server`` under callgrind and count; the result as a dict."""
    protocol = "bare" if server == "bare" else "socketio"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gosf-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        argv += [f"--callgrind-out-file={out}.%p", sys.executable, "-m", "benchmarks.servers"]
        argv += ["--server", server, "--worker-class", worker, "--port", str(port)]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        with Child(
            f"{server} ({worker}) under callgrind",
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as child:
            wait_listening(port, child, timeout=START_TIMEOUT)
            done = asyncio.run(_measure(child.pid, port, protocol, clients, round_trips))
            _control("-d", str(child.pid))
            dumps = sorted(Path(tmp).glob("callgrind.out.*.*"), key=lambda p: p.stat().st_mtime)
            if not dumps:
                raise RuntimeError("callgrind wrote no dump")
            instructions = parse_totals(dumps[-1].read_text())
    return {
        "server": server,
        "worker": worker,
        "clients": clients,
        "round_trips": done,
        "instructions": instructions,
        "per_round_trip": round(instructions / done),
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
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: install valgrind (Debian: apt-get install valgrind)")
            return 2
    stop_on_sigterm()
    results = []
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
