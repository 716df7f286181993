"""Microservice calls per second: a gateway's ``Microservice.call`` → a gosf service.

``python -m benchmarks.microservice [--seconds 5] [--callers 1 50]`` starts the
``utils`` service of ``examples/microservice`` under hypercorn (pinned to CPU 0)
and, in a separate process pinned to CPU 1, a caller that holds one
:class:`gosf.Microservice` connection and keeps N calls of ``echo`` in flight,
as a gateway's controllers would. Both run on the same event loop kind
(asyncio, then trio). It prints calls per second and latency per cell.

``--caller`` runs the calling side alone (what the driver starts).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

__all__ = ("main",)


async def _call_loop(port: int, callers: int, seconds: float, warmup: float) -> dict[str, Any]:
    import anyio

    import gosf

    latencies: list[float] = []
    done = 0
    errors = 0
    measuring = False
    stop = False

    async with gosf.Microservice("utils", "127.0.0.1", port, call_timeout=5) as utils:
        await utils.wait_connected(10)
        request = gosf.Message(text="hello", meta={"trace": "bench"})

        async def caller() -> None:
            nonlocal done, errors
            while not stop:
                started = time.perf_counter()
                try:
                    await utils.call("echo", request)
                except gosf.MicroserviceError:
                    errors += 1
                    continue
                if measuring:
                    done += 1
                    latencies.append(time.perf_counter() - started)

        async with anyio.create_task_group() as tg:
            for _ in range(callers):
                tg.start_soon(caller)
            await anyio.sleep(warmup)
            measuring, started = True, time.perf_counter()
            await anyio.sleep(seconds)
            measuring, elapsed = False, time.perf_counter() - started
            stop = True
    latencies.sort()
    return {
        "callers": callers,
        "calls": done,
        "cps": round(done / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 3) if latencies else None,
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 3)
        if latencies
        else None,
        "errors": errors,
    }


def caller_main(args: argparse.Namespace) -> None:
    import anyio

    result = anyio.run(
        _call_loop, args.port, args.callers[0], args.seconds, args.warmup, backend=args.backend
    )
    print(json.dumps(result), flush=True)


def driver_main(args: argparse.Namespace) -> None:
    from .procs import Child, free_port, wait_listening

    rows: list[tuple[str, int, dict[str, Any]]] = []
    for backend in args.backends:
        port = free_port()
        service_argv = [
            sys.executable, "-m", "hypercorn", "examples.microservice.service:app",
            "--worker-class", backend, "--bind", f"127.0.0.1:{port}",
        ]  # fmt: skip
        with Child(f"service ({backend})", service_argv, cpu=0) as service:
            wait_listening(port, service)
            for callers in args.callers:
                caller_argv = [
                    sys.executable, "-m", "benchmarks.microservice", "--caller",
                    "--port", str(port), "--callers", str(callers), "--backend", backend,
                    "--seconds", str(args.seconds), "--warmup", str(args.warmup),
                ]  # fmt: skip
                with Child("caller", caller_argv, cpu=1, stdout=-1) as caller:
                    out, _ = caller.proc.communicate(timeout=args.seconds + args.warmup + 60)
                result = json.loads(out.strip().splitlines()[-1])
                print(f"[{backend}] {callers} callers: {result['cps']:,.0f} calls/s", flush=True)
                rows.append((backend, callers, result))
    print("\n| loop | callers | calls/s | p50 ms | p99 ms | errors |")
    print("|------|--------:|--------:|-------:|-------:|-------:|")
    for backend, callers, r in rows:
        print(
            f"| {backend} | {callers} | {r['cps']:,.0f} | {r['p50_ms']} | {r['p99_ms']} "
            f"| {r['errors']} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caller", action="store_true", help="run the calling side only")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument(
        "--backends", nargs="+", choices=("asyncio", "trio"), default=["asyncio", "trio"]
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.caller:
        caller_main(args)
    else:
        driver_main(args)


if __name__ == "__main__":
    main()
