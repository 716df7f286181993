"""What a connect costs the server as a function of the clients it already holds.

For ``--clients`` N (several may be given): a fresh gosf server process
(:mod:`benchmarks.servers`, hypercorn's ``--worker-class``), N idle raw
clients (:mod:`benchmarks.loadgen`'s), then ``--connects`` more connects one
after the other, for which the server counts its CPU time and its garbage
collections (``gc.callbacks``, per generation), and reports the objects the
collector tracks::

    python -m benchmarks.connect_gc --clients 500 4000 --worker-class trio

``--freeze``: the server freezes what it holds (``gc.freeze()``) just before
the measured connects. Every wait is bounded and the server is stopped on the
way out. See ``docs/performance.md``, "Connects with many clients already held".
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .loadgen import _open_all, _open_raw
from .procs import Child, free_port, wait_listening

__all__ = ("main",)

CONNECT_TIMEOUT = 10.0
"""How long one measured connect may take."""


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _serve(worker_class: str, port: int, report: str, freeze: bool) -> None:
    """The server: gosf, measuring between SIGUSR1 and SIGUSR2."""
    from .servers import serve

    _raise_fd_limit()
    stats: dict[str, Any] = {"gen": [[0, 0.0], [0, 0.0], [0, 0.0]]}
    measuring = False
    started = cpu = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if not measuring:
            return
        if phase == "start":
            started = time.perf_counter()
        else:
            entry = stats["gen"][info["generation"]]
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    def start(*_: object) -> None:
        nonlocal measuring, cpu
        if freeze:
            gc.collect()
            gc.freeze()
        measuring, cpu = True, time.process_time()

    def stop(*_: object) -> None:
        nonlocal measuring
        measuring = False
        stats["cpu_seconds"] = time.process_time() - cpu
        stats["tracked_objects"] = len(gc.get_objects())
        Path(report).write_text(json.dumps(stats))

    gc.callbacks.append(on_gc)
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    serve("gosf", worker_class, port)


async def _measure(port: int, server: int, clients: int, connects: int) -> float:
    """Hold ``clients``, then make ``connects`` more while the server measures;
    the seconds they took."""
    held = await _open_all(lambda: _open_raw(port, "socketio"), clients)
    more: list[Any] = []
    try:
        for ws in held:
            ws.on_text = lambda text, ws=ws: ws.send("3") if text == "2" else None
        os.kill(server, signal.SIGUSR1)
        await asyncio.sleep(0.2)  # the signal is handled between the server's callbacks
        begun = time.perf_counter()
        for _ in range(connects):
            opening = _open_raw(port, "socketio")
            more.append(await asyncio.wait_for(opening, CONNECT_TIMEOUT))
        elapsed = time.perf_counter() - begun
        os.kill(server, signal.SIGUSR2)
        return elapsed
    finally:
        for ws in held + more:
            ws.close()


def _read_report(report: Path, timeout: float) -> dict[str, Any]:
    """The server's report, once it has written it (another process: no event
    to wait on, so the wait is a bounded poll).

    Raises:
        TimeoutError: no report within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not report.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the server wrote no report")
        time.sleep(0.05)
    time.sleep(0.1)  # let the writer finish the file
    result: dict[str, Any] = json.loads(report.read_text())
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[500, 4000])
    parser.add_argument("--connects", type=int, default=300)
    parser.add_argument("--worker-class", default="asyncio", choices=("asyncio", "trio"))
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument(
        "--serve", nargs=3, metavar=("WORKER", "PORT", "REPORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve:
        worker, port, report = args.serve
        _serve(worker, int(port), report, args.freeze)
        return
    _raise_fd_limit()
    for clients in args.clients:
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            command = [sys.executable, "-m", "benchmarks.connect_gc", "--serve"]
            command += [args.worker_class, str(port), str(report)]
            command += ["--freeze"] if args.freeze else []
            with Child("server", command) as server:
                wait_listening(port, server)
                elapsed = asyncio.run(_measure(port, server.pid, clients, args.connects))
                result = _read_report(report, CONNECT_TIMEOUT)
            result.update(clients=clients, connects=args.connects, wall_seconds=round(elapsed, 3))
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
