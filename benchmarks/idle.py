"""Many idle clients on one server process: server memory per client and connect time.

For gosf and the bare websocket echo (:mod:`benchmarks.servers`) on each ASGI
server: hypercorn's asyncio and trio workers, uvicorn, and granian as a
reference when it is installed::

    python -m benchmarks.idle --clients 20000 --json benchmarks/idle-results.json

Per server and app: a fresh server process, a warm-up (``--warmup`` clients
that connect and leave), the server's RSS, then ``--clients`` raw websocket
clients (the load generator's, :mod:`benchmarks.wsclient`; for gosf the
Socket.IO connect completed) from ``--procs`` client processes, each from a
loopback address of its own (``127.0.0.2``, ``127.0.0.3``, ...: each source
address has the whole ephemeral port range). ``--settle`` seconds after the
last connect, the server's RSS again: the difference divided by the clients
connected is the memory per idle client. For granian, whose supervisor
serves through a worker process, the RSS is the whole process tree's.

Connect time: from the first connect of any client process to the last one
completed (``connect_seconds``), and the time each connect took from its TCP
connect to the Socket.IO connect answer (``connect_p50_ms``, ``connect_p99_ms``),
with at most :data:`benchmarks.loadgen.MAX_CONCURRENT_CONNECTS` connects in
flight per client process.

Each server and client process raises its open-file limit (``RLIMIT_NOFILE``)
to what it needs: the soft limit up to the hard one, and the hard one too
where the process may (as root, up to ``fs.nr_open``); the run records the
limits the server got. Where the hard limit cannot rise (without
``CAP_SYS_RESOURCE``), one server process holds at most that many files, so
the run takes ``--clients`` down to it, and says so.

``--tracemalloc`` runs the server under ``tracemalloc`` and adds, per
hypercorn or uvicorn row, the allocations still held per idle client, by
source line, and the asyncio tasks the clients added (the snapshot is slow:
use it with a few hundred clients).

Every wait is bounded, and every child process is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .procs import (
    Child,
    free_port,
    machine_cpu,
    rss_kib,
    stop_on_sigterm,
    tree_rss_kib,
    wait_listening,
)
from .servers import granian_version

__all__ = ("WORKERS", "main", "raise_fd_limit", "tree_rss_kib")

ROOT = Path(__file__).resolve().parent.parent
APPS = ("gosf", "bare")
WORKERS = ("asyncio", "trio", "uvicorn", "granian")
"""hypercorn's two workers, uvicorn, and granian (a reference row, when installed)."""
FD_MARGIN = 100
"""Open files a process needs besides its connections (listener, event loop, pipes)."""
TRACE_FRAMES = 24
"""Frames kept per allocation under ``--tracemalloc``: deep enough to reach the
line of gosf (or of the ASGI server) that made a library allocate."""
REPORT_TIMEOUT = 30.0
"""How long a client process may take to report, beyond a millisecond per client."""


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise this process's ``RLIMIT_NOFILE`` towards ``wanted``; the (soft, hard)
    limits it now has. The hard limit rises only where the process may."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted, wanted
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = new_soft
    return soft, hard


# -- the server process -------------------------------------------------------------------


def _dump_on_signal(folder: Path) -> None:
    """On each SIGUSR1, write a tracemalloc snapshot to ``folder`` (``snap-<n>``,
    renamed into place once complete)."""
    import tracemalloc

    taken = 0

    def dump(signum: int, frame: Any) -> None:
        nonlocal taken
        taken += 1
        (folder / f"tasks-{taken}.json").write_text(json.dumps(_asyncio_tasks()))
        partial = folder / f"snap-{taken}.partial"
        tracemalloc.take_snapshot().dump(str(partial))
        partial.rename(folder / f"snap-{taken}")

    tracemalloc.start(TRACE_FRAMES)
    signal.signal(signal.SIGUSR1, dump)


def _asyncio_tasks() -> dict[str, int]:
    """The asyncio tasks alive, by coroutine (empty under trio)."""
    from collections import Counter

    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no asyncio loop running: trio
        return {}
    return dict(Counter(getattr(t.get_coro(), "__qualname__", "?") for t in tasks))


def _serve_granian(app: str, port: int, backpressure: int) -> None:
    from .servers import serve_granian

    # The app's factory by name: granian's worker process imports it.
    target = "gosf_app" if app == "gosf" else "bare_app"
    serve_granian(f"benchmarks.servers:{target}", port, backpressure, factory=app == "gosf")


def serve(app: str, worker: str, port: int, fds: int, trace: Path | None) -> None:
    """Serve ``app`` with ``worker`` until SIGTERM, with room for ``fds`` open files."""
    from .servers import build_app, serve_app

    raise_fd_limit(fds)
    if trace is not None:
        _dump_on_signal(trace)
    if worker == "granian":
        _serve_granian(app, port, fds)
    else:
        serve_app(build_app(app), worker, port)


# -- a client process ---------------------------------------------------------------------


async def hold_clients(port: int, protocol: str, count: int, source: str, hold: float) -> None:
    """Connect ``count`` clients from ``source``, print one JSON line (how many
    connected, the wall-clock span, each connect's milliseconds), then hold them
    until stdin closes (at most ``hold`` seconds) and close them."""
    from .loadgen import CONNECT_TIMEOUT, MAX_CONCURRENT_CONNECTS, _open_raw, _stdin_closed
    from .wsclient import WebSocket

    gate = asyncio.Semaphore(MAX_CONCURRENT_CONNECTS)
    clients: list[WebSocket] = []
    took: list[float] = []
    failures: list[str] = []

    def answer_pings(ws: WebSocket) -> None:
        ws.on_text = lambda text: ws.send("3") if text == "2" else None

    async def one() -> None:
        async with gate:
            began = time.perf_counter()
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    ws = await _open_raw(port, protocol, source)
            except (OSError, TimeoutError) as exc:
                failures.append(repr(exc))
                return
            took.append(time.perf_counter() - began)
            answer_pings(ws)
            clients.append(ws)

    started = time.time()
    try:
        await asyncio.gather(*(one() for _ in range(count)))
        report = {
            "connected": len(clients),
            "failed": len(failures),
            "first_failure": failures[0] if failures else None,
            "started": started,
            "finished": time.time(),
            "connect_ms": [round(t * 1000, 3) for t in took],
            "rss_kib": rss_kib(os.getpid()),
        }
        print(json.dumps(report), flush=True)
        with contextlib.suppress(TimeoutError, OSError, ValueError):
            async with asyncio.timeout(hold):
                await _stdin_closed()
    finally:
        for ws in clients:
            ws.close()
        await asyncio.sleep(0.1)  # let the close frames go out


# -- the driver ---------------------------------------------------------------------------


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def _read_reports(children: list[Child], timeout: float) -> list[dict[str, Any]]:
    """One JSON line from each client process, within ``timeout`` seconds.

    Raises:
        RuntimeError: a process exited or stayed silent.
    """
    deadline = time.monotonic() + timeout
    reports: dict[int, dict[str, Any]] = {}
    while len(reports) < len(children):
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"client processes did not report within {timeout:.0f} s")
        waiting = {c.stdout.fileno(): n for n, c in enumerate(children) if n not in reports}
        ready, _, _ = select.select(list(waiting), [], [], min(left, 1.0))
        for fd in ready:
            n = waiting[fd]
            line = children[n].stdout.readline()
            if not line:
                raise RuntimeError(f"client process {n} exited with {children[n].proc.poll()}")
            reports[n] = json.loads(line)
    return [reports[n] for n in range(len(children))]


class Run:
    """One run: the settings, and a fresh server per (worker, app)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # The children inherit the hard limit this process can get: where it
        # is too low for --clients (the machine's, not the benchmark's, limit),
        # the run takes as many clients as one server process may hold.
        wanted = args.clients + FD_MARGIN
        _, hard = raise_fd_limit(wanted)
        if hard != resource.RLIM_INFINITY and hard < wanted:
            self.capped_from: int | None = args.clients
            args.clients = hard - FD_MARGIN
            print(f"RLIMIT_NOFILE's hard limit is {hard}: {args.clients} clients", flush=True)
        else:
            self.capped_from = None
        self.fds = max(args.clients, args.warmup) + FD_MARGIN

    def _clients(self, port: int, protocol: str, count: int, n: int) -> Child:
        argv = [sys.executable, "-m", "benchmarks.idle", "clients", "--port", str(port)]
        argv += ["--protocol", protocol, "--count", str(count), "--source", f"127.0.0.{2 + n}"]
        argv += ["--hold", str(self.args.hold)]
        return Child(f"clients {n}", argv, cwd=ROOT, stdin=-1, stdout=-1)

    def _connect(self, port: int, protocol: str, count: int, procs: int) -> list[Child]:
        shares = [count // procs + (n < count % procs) for n in range(procs)]
        return [self._clients(port, protocol, share, n) for n, share in enumerate(shares) if share]

    def _snapshot(self, server: Child, folder: Path, n: int) -> Path:
        """Ask the server for its ``n``th tracemalloc snapshot; its path."""
        os.kill(server.pid, signal.SIGUSR1)
        path = folder / f"snap-{n}"
        deadline = time.monotonic() + 120
        while not path.exists():
            if time.monotonic() > deadline or server.proc.poll() is not None:
                raise RuntimeError("the server wrote no tracemalloc snapshot within 120 s")
            time.sleep(0.1)
        return path

    def measure(self, app: str, worker: str) -> dict[str, Any]:
        """One fresh server process; its memory and connect time for ``--clients``."""
        args = self.args
        port = free_port()
        protocol = "socketio" if app == "gosf" else "bare"
        trace = args.tracemalloc and worker != "granian"
        with contextlib.ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            argv = [sys.executable, "-m", "benchmarks.idle", "serve", "--app", app]
            argv += ["--worker", worker, "--port", str(port), "--fds", str(self.fds)]
            if trace:
                argv += ["--trace", str(folder)]
            server = Child(f"{app} on {worker}", argv, cwd=ROOT)
            stack.callback(_stop_session, server)
            wait_listening(port, server, timeout=60)  # a loaded machine starts slowly
            with contextlib.ExitStack() as warm:
                gens = self._connect(port, protocol, args.warmup, 1)
                for gen in gens:
                    warm.callback(_finish, gen)
                _read_reports(gens, REPORT_TIMEOUT + args.warmup / 1000)
            time.sleep(args.settle)
            before = tree_rss_kib(server.pid)
            snap_before = self._snapshot(server, folder, 1) if trace else None
            cpu_before = machine_cpu()
            with contextlib.ExitStack() as held:
                gens = self._connect(port, protocol, args.clients, args.procs)
                for gen in gens:
                    held.callback(_finish, gen)
                timeout = REPORT_TIMEOUT + args.clients / 1000 * 20  # 50 connects/s at least
                reports = _read_reports(gens, timeout)
                cpu_after = machine_cpu()
                time.sleep(args.settle)
                after = tree_rss_kib(server.pid)
                result = self._summary(reports, before, after, cpu_after[0] - cpu_before[0])
                if trace and snap_before is not None and result["connected"]:
                    snap_after = self._snapshot(server, folder, 2)
                    result["tracemalloc"] = held_per_client(
                        snap_before, snap_after, result["connected"], args.top
                    )
                    result["tasks_added"] = _tasks_added(folder)
            result["limits"] = _limits(server.pid)
        return result

    def _summary(
        self, reports: list[dict[str, Any]], before: int, after: int, busy: float
    ) -> dict[str, Any]:
        connected = sum(r["connected"] for r in reports)
        took = sorted(t for r in reports for t in r["connect_ms"])
        span = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
        result: dict[str, Any] = {
            "clients": self.args.clients,
            "connected": connected,
            "failed": sum(r["failed"] for r in reports),
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_client": round((after - before) / connected, 2) if connected else None,
            "connect_seconds": round(span, 3),
            "connect_p50_ms": round(_percentile(took, 0.50), 3),
            "connect_p99_ms": round(_percentile(took, 0.99), 3),
            "client_kib_per_client": round(
                sum(r["rss_kib"] for r in reports) / max(connected, 1), 2
            ),
            # CPU seconds per second the whole machine used while connecting
            # (both cores: at most 2.0), this run's processes and anyone else's.
            "machine_busy_cores": round(busy / span, 2) if span > 0 else None,
        }
        failure = next((r["first_failure"] for r in reports if r["first_failure"]), None)
        if failure:
            result["first_failure"] = failure
        if not connected:
            result["error"] = f"no client connected: {failure}"
        return result


def _tasks_added(folder: Path) -> dict[str, int]:
    """asyncio tasks alive after the clients connected less those before, by coroutine."""
    before, after = (json.loads((folder / f"tasks-{n}.json").read_text()) for n in (1, 2))
    added = {name: count - before.get(name, 0) for name, count in after.items()}
    return {name: count for name, count in added.items() if count}


def _limits(pid: int) -> dict[str, str]:
    """The open-file limits of process ``pid`` (``/proc/<pid>/limits``)."""
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/limits") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    soft, hard = line.split()[3:5]
                    return {"soft": soft, "hard": hard}
    return {}


def _stop_session(server: Child) -> None:
    """Stop the server, then kill what is left of the session it led (granian's
    worker, should it outlive its supervisor)."""
    server.stop()
    with contextlib.suppress(OSError):
        os.killpg(server.pid, signal.SIGKILL)


def _finish(clients: Child) -> None:
    """Let a client process close its connections (it does when its stdin
    closes), then stop it."""
    if clients.proc.stdin is not None:
        with contextlib.suppress(OSError):
            clients.proc.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        clients.proc.wait(10)
    clients.stop()


def held_per_client(before: Path, after: Path, clients: int, top: int) -> list[dict[str, Any]]:
    """What the server holds per client: bytes per client by the line that
    asked for them, the ``top`` largest first.

    An allocation counts for the innermost line on its stack that is
    neither the standard library's nor anyio's: an ``asyncio.Event`` or an
    anyio task group made by gosf counts for gosf's line, what the ASGI
    server allocates when gosf calls its ``send`` for the server's line (as
    it does for the bare app).
    """
    import tracemalloc
    from collections import Counter

    first = tracemalloc.Snapshot.load(str(before))
    second = tracemalloc.Snapshot.load(str(after))
    skip = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>")]
    first, second = first.filter_traces(skip), second.filter_traces(skip)
    held: Counter[str] = Counter()
    for stat in second.compare_to(first, "traceback"):
        held[_owner(stat.traceback)] += stat.size_diff
    rows = [{"where": "all", "bytes_per_client": round(sum(held.values()) / clients)}]
    for where, size in held.most_common(top):
        rows.append({"where": where, "bytes_per_client": round(size / clients)})
    return rows


def _owner(traceback: Any) -> str:
    frames = list(reversed(traceback))  # the innermost first
    for frame in frames:
        name = frame.filename
        if name.startswith(str(ROOT)) or (
            "site-packages/" in name and not any(lib in name for lib in _TRANSPARENT)
        ):
            return f"{_short(name)}:{frame.lineno}"
    return f"{_short(frames[0].filename)}:{frames[0].lineno}"


_TRANSPARENT = ("site-packages/anyio/", "site-packages/sniffio/")
"""Libraries whose allocations count for their caller, as the standard
library's do: an anyio task group opened by gosf is gosf's."""


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return str(Path(filename).relative_to(ROOT)) if filename.startswith(str(ROOT)) else filename


def versions() -> dict[str, str | None]:
    from importlib.metadata import version

    from .servers import uvicorn_stack

    return {
        "python": sys.version.split()[0],
        "hypercorn": version("hypercorn"),
        "uvicorn": version("uvicorn"),
        "uvicorn_stack": " ".join(uvicorn_stack().values()),
        "granian": granian_version(),
        "commit": _commit(),
    }


def _commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, timeout=10
        )
        return out.stdout.decode().strip() or None
    return None


def run(args: argparse.Namespace) -> int:
    """The measurement; the exit code (0, or 1 when one failed)."""
    bench = Run(args)
    results: list[dict[str, Any]] = []
    for worker in args.workers:
        if worker == "granian" and granian_version() is None:
            print("granian is not installed: no granian row", flush=True)
            continue
        for app in args.apps:
            try:
                result = bench.measure(app, worker)
            except RuntimeError as exc:
                result = {"error": str(exc)}
            result.update(app=app, worker=worker)
            results.append(result)
            shown = {k: result.get(k) for k in ("kib_per_client", "connect_seconds", "error")}
            print(f"[{worker}] {app}: {json.dumps(shown)}", flush=True)
    ratios = {
        worker: round(by["gosf"] / by["bare"], 3)
        for worker in args.workers
        if (by := _per_client(results, worker)).keys() >= {"gosf", "bare"} and by["bare"]
    }
    print(f"gosf/bare, memory per idle client: {ratios}", flush=True)
    if args.json:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        document = {
            "settings": settings,
            "machine": {
                "cpus": os.cpu_count(),
                "nr_open": _nr_open(),
                "nofile_hard_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                "clients_asked": bench.capped_from or args.clients,
                **versions(),
            },
            "results": results,
            "ratios_gosf_to_bare": ratios,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any("error" in r for r in results) else 0


def _per_client(results: list[dict[str, Any]], worker: str) -> dict[str, float]:
    return {
        r["app"]: r["kib_per_client"]
        for r in results
        if r["worker"] == worker and r.get("kib_per_client") is not None
    }


def _nr_open() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(Path("/proc/sys/fs/nr_open").read_text())
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line: the driver, or (``serve``, ``clients``) one of its children."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        parser = argparse.ArgumentParser(prog="benchmarks.idle serve")
        parser.add_argument("--app", choices=APPS, required=True)
        parser.add_argument("--worker", choices=WORKERS, required=True)
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--fds", type=int, required=True)
        parser.add_argument("--trace", type=Path)
        s = parser.parse_args(argv[1:])
        serve(s.app, s.worker, s.port, s.fds, s.trace)
        return 0
    if argv[:1] == ["clients"]:
        parser = argparse.ArgumentParser(prog="benchmarks.idle clients")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--protocol", choices=("socketio", "bare"), required=True)
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--source", default="127.0.0.1")
        parser.add_argument("--hold", type=float, required=True)
        c = parser.parse_args(argv[1:])
        raise_fd_limit(c.count + FD_MARGIN)
        asyncio.run(hold_clients(c.port, c.protocol, c.count, c.source, c.hold))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--warmup", type=int, default=100, help="clients that come and go first")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before each reading")
    parser.add_argument("--hold", type=float, default=600.0, help="longest hold, seconds")
    parser.add_argument("--workers", nargs="+", choices=WORKERS, default=list(WORKERS))
    parser.add_argument("--apps", nargs="+", choices=APPS, default=list(APPS))
    parser.add_argument("--tracemalloc", action="store_true", help="what the server holds")
    parser.add_argument("--top", type=int, default=25, help="tracemalloc lines to keep")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    if sys.argv[1:2] not in (["serve"], ["clients"]):
        # The driver only (the servers stop on SIGTERM by themselves), and
        # here, not in main(): the test calls main() in pytest's process.
        stop_on_sigterm()
    sys.exit(main())
