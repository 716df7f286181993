"""What a connect costs the server as a function of the clients it already holds.

For ``--clients`` N (several may be given): a fresh gosf server process
(:mod:`benchmarks.servers`: ``--worker-class`` hypercorn's asyncio or trio
worker, or uvicorn), N idle raw
clients (:mod:`benchmarks.loadgen`'s), then ``--connects`` more connects one
after the other, for which the server counts its CPU time and its garbage
collections (``gc.callbacks``, per generation), and reports the objects the
collector tracks::

    python -m benchmarks.connect_gc --clients 500 4000 --worker-class trio

``--freeze``: the server freezes what it holds (``gc.freeze()``) just before
the measured connects. ``--calls``: the server runs cProfile over the measured
connects and reports the Python function calls per connect, grouped by where
the function lives (gosf by module, the ASGI server, anyio, the event loop,
the rest of the standard library). ``--types``: the objects the collector
tracks that the measured connects added (they stay connected until the
server has counted), per connect and by type, after a full collection at
both ends. Every wait is bounded and the server is stopped on the
way out. See ``docs/performance.md``, "Connects with many clients already held".
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import inspect
import json
import os
import pstats
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
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


def _group(path: str) -> str:
    """Where a profiled function lives: gosf by module, else by package."""
    if "/gosf/" in path:
        return "gosf." + path.rpartition("/gosf/")[2].removesuffix(".py").replace("/", ".")
    for package in ("hypercorn", "uvicorn", "h11", "wsproto", "websockets", "httptools"):
        if f"/{package}/" in path:
            return "server: " + package
    for package in ("anyio", "trio", "asyncio", "uvloop", "orjson", "pydantic"):
        if f"/{package}/" in path:
            return package
    if path == "~" or "/python3" in path:
        return "stdlib"
    return "other: " + path.rpartition("/")[2]


def _calls(profile: cProfile.Profile, connects: int) -> dict[str, Any]:
    """The profiled calls per connect, by group (a builtin with its caller's),
    and the busiest gosf functions."""
    groups: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    raw_stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (path, line, name), (_, calls, _own, _total, callers) in raw_stats.items():
        if path != "~":
            groups[_group(path)] += calls
            if "/gosf/" in path:
                functions[f"{_group(path)}:{line}({name})"] += calls
            continue
        # A builtin (len, dict.get, a C method) is counted with its caller.
        for (caller_path, caller_line, caller_name), counts in callers.items():
            groups[_group(caller_path)] += counts[1]
            if "/gosf/" in caller_path:
                caller = f"{_group(caller_path)}:{caller_line}({caller_name})"
                functions[f"{caller} -> {name}"] += counts[1]
    per = {key: round(count / connects, 1) for key, count in groups.most_common()}
    top = {key: round(count / connects, 1) for key, count in functions.most_common(40)}
    return {
        "calls_per_connect": round(sum(groups.values()) / connects, 1),
        "gosf_calls_per_connect": round(
            sum(count for key, count in groups.items() if key.startswith("gosf.")) / connects, 1
        ),
        "by_group": per,
        "gosf_functions": top,
    }


def _tracked_types() -> Counter[str]:
    gc.collect()
    return Counter(_type_name(obj) for obj in gc.get_objects())


def _type_name(obj: object) -> str:
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}"
    code = getattr(obj, "cr_code", None) if inspect.iscoroutine(obj) else None
    if code is not None:  # a suspended coroutine: which one
        name += f" {code.co_qualname}"
    return name


def _serve(
    worker_class: str,
    port: int,
    report: str,
    freeze: bool,
    calls: bool,
    types: bool,
    connects: int,
) -> None:
    """The server: gosf, measuring between SIGUSR1 and SIGUSR2."""
    from .servers import serve

    _raise_fd_limit()
    stats: dict[str, Any] = {"gen": [[0, 0.0], [0, 0.0], [0, 0.0]]}
    measuring = False
    started = cpu = 0.0
    profile = cProfile.Profile() if calls else None
    before: Counter[str] = Counter()

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
        nonlocal measuring, cpu, before
        if types:
            before = _tracked_types()
        if freeze:
            gc.collect()
            gc.freeze()
        measuring, cpu = True, time.process_time()
        if profile is not None:
            profile.enable()

    def stop(*_: object) -> None:
        nonlocal measuring
        if profile is not None:
            profile.disable()
        measuring = False
        stats["cpu_seconds"] = time.process_time() - cpu
        stats["tracked_objects"] = len(gc.get_objects())
        if profile is not None:
            stats.update(_calls(profile, stats["connects"]))
        if types:
            added = _tracked_types()
            added.subtract(before)
            connects = stats["connects"]
            stats["tracked_per_connect"] = round(sum(added.values()) / connects, 1)
            stats["tracked_types"] = {
                key: round(count / connects, 2)
                for key, count in added.most_common()
                if count >= connects // 2
            }
        Path(report).write_text(json.dumps(stats))

    gc.callbacks.append(on_gc)
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    stats["connects"] = connects
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
    parser.add_argument("--worker-class", default="asyncio", choices=("asyncio", "trio", "uvicorn"))
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument("--calls", action="store_true", help="cProfile the measured connects")
    parser.add_argument("--types", action="store_true", help="tracked objects added, by type")
    parser.add_argument(
        "--serve", nargs=3, metavar=("WORKER", "PORT", "REPORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve:
        worker, port, report = args.serve
        _serve(worker, int(port), report, args.freeze, args.calls, args.types, args.connects)
        return
    _raise_fd_limit()
    for clients in args.clients:
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            command = [sys.executable, "-m", "benchmarks.connect_gc", "--serve"]
            command += [args.worker_class, str(port), str(report)]
            command += ["--connects", str(args.connects)]
            command += [f"--{flag}" for flag in ("freeze", "calls", "types") if getattr(args, flag)]
            with Child("server", command) as server:
                wait_listening(port, server)
                elapsed = asyncio.run(_measure(port, server.pid, clients, args.connects))
                result = _read_report(report, CONNECT_TIMEOUT)
            result.update(clients=clients, connects=args.connects, wall_seconds=round(elapsed, 3))
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
