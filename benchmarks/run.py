"""The benchmark driver: ``python -m benchmarks.run [--quick] [--json PATH]``.

For each worker class (hypercorn's asyncio and trio, uvicorn, and granian)
it starts one server process per app (gosf, gosf-app, python-socketio, bare;
python-socketio not under trio), and for ``node`` Node's socket.io and its
bare ``ws`` echo (``node-socketio``, ``node-ws``: :mod:`benchmarks.nodejs`),
then:

1. memory: on each fresh server, a short warm-up load, then the server's RSS
   before and after ``--idle-clients`` idle connections (Socket.IO connect
   completed) gives KiB per idle connection;
2. throughput: for 1, 50 and 500 clients, the load generator (a process of
   its own) runs against each server in turn, ``--repeat`` times with the
   order rotated, so drift on a shared machine spreads over all servers.

The server runs pinned to CPU 0 and the load generator to CPU 1 (``--no-pin``
to let the scheduler place them); granian's worker process, which its
supervisor starts, inherits the supervisor's CPU, and is the process whose CPU
is counted (its RSS: the whole tree's). A worker class whose server is not
installed (granian; node or ``benchmarks/node/node_modules``) is left out,
saying why. Every child is stopped on the way out, Ctrl-C and errors
included. The tables go to stdout, everything to ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import nodejs, report
from .procs import (
    Child,
    free_port,
    machine_cpu,
    spawned_worker,
    stop_on_sigterm,
    tree_rss_kib,
    wait_listening,
)
from .servers import SERVERS, WORKER_CLASSES, granian_version, supports, uvicorn_stack

__all__ = ("main",)

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU, LOADGEN_CPU = 0, 1
WORKERS = (*WORKER_CLASSES, "node")
"""The ASGI servers' worker classes, and Node (its own servers, no ASGI)."""
NODE_SERVERS = tuple(nodejs.SCRIPTS)
APPS = (*SERVERS, *NODE_SERVERS)


def _protocol(server: str) -> str:
    return "bare" if server in ("bare", "node-ws") else "socketio"


def runs_under(server: str, worker: str) -> bool:
    """Whether ``server`` runs under ``worker``: the Node servers under ``node``
    only, the ASGI apps under every other worker class that supports them."""
    if worker == "node":
        return server in NODE_SERVERS
    return server not in NODE_SERVERS and supports(server, worker)


def unavailable(worker: str) -> str | None:
    """Why ``worker``'s server is not installed here, ``None`` when it is."""
    if worker == "granian" and granian_version() is None:
        return "granian is not installed: no granian row"
    if worker == "node":
        return nodejs.missing()
    return None


@dataclass(frozen=True)
class Serving:
    """A running server: its process, its port, and the process that serves
    (granian's worker; for the others the process itself)."""

    child: Child
    port: int
    pid: int


def wait_quiet(max_busy: float, timeout: float) -> bool:
    """Wait up to ``timeout`` s for half a second in which the machine used < ``max_busy`` cores.

    Between runs the benchmark's own servers are idle, so what the machine
    uses then is other processes' work. ``False`` if it never got quiet.
    """
    deadline = time.monotonic() + timeout
    while True:
        busy0, _ = machine_cpu()
        time.sleep(0.5)
        busy1, _ = machine_cpu()
        if (busy1 - busy0) / 0.5 < max_busy:
            return True
        if time.monotonic() >= deadline:
            return False


def _outcome(result: dict[str, Any]) -> str:
    """A load run's result in a few words, for the progress lines."""
    shown = f"{result['rps']} rt/s" if "rps" in result else f"failed: {result.get('error')}"
    retakes = len(result.get("discarded", ()))
    if retakes:
        shown += f" ({retakes} retaken: other load)"
    return shown + (" (other load throughout)" if result.get("contaminated") else "")


class Bench:
    """One benchmark run's settings and results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        pin = not args.no_pin and (os.cpu_count() or 1) >= 2
        self.server_cpu = SERVER_CPU if pin else None
        self.loadgen_cpu = LOADGEN_CPU if pin else None
        self.source = report.source_state(ROOT)  # what is measured, taken before the first server
        self.runs: list[dict[str, Any]] = []
        self.memory: dict[str, dict[str, dict[str, Any] | None]] = {}
        self.skipped: dict[str, str] = {}

    def _loadgen(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "benchmarks.loadgen", *extra]

    @contextlib.contextmanager
    def server(self, name: str, worker: str) -> Iterator[Serving]:
        """A running server process, its port and the process that serves."""
        port = free_port()
        if worker == "node":
            argv = nodejs.argv(name, port)
        else:
            argv = [sys.executable, "-m", "benchmarks.servers", "--server", name]
            argv += ["--worker-class", worker, "--port", str(port)]
        with Child(f"{name} ({worker})", argv, cpu=self.server_cpu, cwd=ROOT) as child:
            wait_listening(port, child)
            pid = spawned_worker(child) if worker == "granian" else child.pid
            yield Serving(child, port, pid)

    def load(self, server: Serving, protocol: str, clients: int, seconds: float) -> Any:
        """One load generator run; its JSON result, or ``{"error": ...}``."""
        argv = self._loadgen("--port", str(server.port), "--protocol", protocol)
        argv += ["--clients", str(clients), "--seconds", str(seconds)]
        argv += ["--warmup", str(self.args.warmup), "--server-pid", str(server.pid)]
        argv += ["--client", self.args.client]
        timeout = seconds + self.args.warmup + 60
        with Child("loadgen", argv, cpu=self.loadgen_cpu, cwd=ROOT, stdout=-1, stderr=-1) as gen:
            try:
                out, err = gen.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                return {"error": f"load generator timed out after {timeout} s"}
            lines = out.strip().splitlines()
            if gen.proc.returncode != 0 or not lines:
                return {"error": (err.strip().splitlines() or ["no output"])[-1]}
            return json.loads(lines[-1])

    def idle_memory(self, server: Serving, protocol: str) -> dict[str, Any]:
        """KiB of server RSS per idle connection, on a server warmed up by a short load."""
        self.load(server, protocol, 10, 0.5)
        time.sleep(0.5)
        before = tree_rss_kib(server.child.pid)
        count = self.args.idle_clients
        argv = self._loadgen("--port", str(server.port), "--protocol", protocol)
        argv += ["--idle", str(count)]
        argv += ["--hold", "120"]
        with Child(
            "idle loadgen", argv, cpu=self.loadgen_cpu, cwd=ROOT, stdin=-1, stdout=-1, stderr=-1
        ) as gen:
            ready, _, _ = select.select([gen.stdout], [], [], 60)
            line = gen.stdout.readline() if ready else ""
            if not line:
                return {"error": "idle connections did not come up within 60 s"}
            time.sleep(1.0)  # let the server settle: handshakes done, buffers freed
            after = tree_rss_kib(server.child.pid)
        time.sleep(0.5)
        return {
            "connections": json.loads(line)["connected"],
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_connection": round((after - before) / count, 2),
        }

    def measure(self, server: Serving, name: str, clients: int) -> Any:
        """One load run, retaken while other processes used more than ``--max-other-cpu``.

        The machine may be shared: a run during which something else used a
        noticeable share of the CPU is set aside (kept under ``discarded``)
        and taken again, at most ``--retries`` times.
        """
        discarded: list[dict[str, Any]] = []
        for attempt in range(self.args.retries + 1):
            wait_quiet(self.args.max_other_cpu, self.args.quiet_wait)
            result = self.load(server, _protocol(name), clients, self.args.seconds)
            if result.get("other_cpu", 0.0) <= self.args.max_other_cpu:
                break
            if attempt == self.args.retries:
                result["contaminated"] = True
                break
            discarded.append(result)
        if discarded:
            result["discarded"] = discarded
        return result

    def worker(self, worker: str) -> None:
        """Every measurement under one worker class."""
        names = [s for s in self.args.servers if runs_under(s, worker)]
        reason = unavailable(worker) if names else f"none of the servers asked runs under {worker}"
        if reason:
            print(f"[{worker}] {reason}")
            self.skipped[worker] = reason
            return
        self.memory[worker] = {s: None for s in names}
        with contextlib.ExitStack() as stack:
            running = {name: stack.enter_context(self.server(name, worker)) for name in names}
            for name, serving in running.items():
                print(f"[{worker}] {name}: memory of {self.args.idle_clients} idle connections")
                self.memory[worker][name] = self.idle_memory(serving, _protocol(name))
            for clients in self.args.clients:
                for repeat in range(self.args.repeat):
                    shift = repeat % len(names)
                    for name in names[shift:] + names[:shift]:
                        result = self.measure(running[name], name, clients)
                        result.update(worker=worker, server=name, clients=clients, repeat=repeat)
                        self.runs.append(result)
                        print(f"[{worker}] {name}, {clients} clients, run {repeat + 1}: ", end="")
                        print(_outcome(result))

    def results(self) -> dict[str, Any]:
        summary: dict[str, dict[str, dict[str, Any]]] = {}
        for worker in self.memory:
            summary[worker] = {}
            for clients in self.args.clients:
                cell: dict[str, Any] = {}
                for name in self.memory[worker]:
                    key = (worker, name, clients)
                    runs = [r for r in self.runs if (r["worker"], r["server"], r["clients"]) == key]
                    cell[name] = report.summarise(runs)
                summary[worker][str(clients)] = cell
        return {
            "environment": {
                **report.environment(),
                "source": self.source,
                "uvicorn_stack": uvicorn_stack(),
                "node": nodejs.versions(),
            },
            "settings": {
                **{k: v for k, v in vars(self.args).items() if k != "json"},
                "pinned": self.server_cpu is not None,
            },
            "summary": summary,
            "memory": self.memory,
            "skipped": self.skipped,
            "runs": self.runs,
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median reported)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--idle-clients", type=int, default=500)
    parser.add_argument(
        "--workers",
        nargs="+",
        choices=WORKERS,
        default=WORKERS,
        help="ASGI servers' worker classes, and node (its socket.io and ws servers)",
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=APPS,
        default=APPS,
        help="apps (each runs under the workers that support it; node-*: under node only)",
    )
    parser.add_argument("--client", choices=("raw", "websockets"), default="raw")
    parser.add_argument(
        "--max-other-cpu",
        type=float,
        default=0.15,
        help="retake a run when other processes used more CPU than this (in cores)",
    )
    parser.add_argument("--retries", type=int, default=4, help="retakes per run at most")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="seconds to wait, before each run, for other processes to go quiet",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--json", type=Path, help="write all results here as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.repeat, args.idle_clients = 1.0, 0.3, 1, 100
    args.workers, args.servers = list(args.workers), list(args.servers)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; the exit code (0, or 1 when a measurement failed)."""
    args = parse_args(argv)
    stop_on_sigterm()
    bench = Bench(args)
    try:
        for worker in args.workers:
            bench.worker(worker)
    except KeyboardInterrupt:
        print("interrupted: every child process was stopped", file=sys.stderr)
        return 130
    results = bench.results()
    print()
    print(report.format_tables(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    failed = [r for r in bench.runs if "error" in r]
    failed += [m for by in bench.memory.values() for m in by.values() if m and "error" in m]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
