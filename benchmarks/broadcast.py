"""Broadcast deliveries per second across workers: ``python -m benchmarks.broadcast``.

What is measured: how many broadcast events per second reach their clients
when 1,000 websocket clients are spread over 2 worker processes joined by
Redis. Each configuration runs in its own processes, all on 127.0.0.1:

* one ``redis-server`` (started here, on a free port, ``--save ''
  --appendonly no``), shared by the configurations that use Redis;
* the workers: 2 (or 1 for the single-worker baseline) hypercorn processes,
  one worker each, each on its own port, serving an app of
  :mod:`benchmarks.broadcast_servers`;
* ``--loadgens`` load-generator processes (:mod:`benchmarks.broadcast_loadgen`)
  holding the ``--clients`` receiving clients between them, client ``i`` on
  worker ``i % workers``; the driver checks the split twice: every client
  asks its worker's process id once connected, and each worker counts its
  own clients (``census``).

One more client, the sender, on the first worker, asks for ``K`` broadcasts
(``--broadcasts``) with the acknowledged event ``blast``, with at most
``window`` acks outstanding; each window of ``--windows`` gets its own rounds
(1: one broadcast at a time; 16: a short queue of them). The handler
broadcasts ``news`` to every client of the namespace but the sender, then
acks. A round lasts from the moment the sender sends its first request until
every receiving client has all ``K`` broadcasts (each counted once by its
number: a repeat is a duplicate), or ``--round-timeout`` seconds (the missing
ones are reported as lost). Per round: deliveries/s = clients * K / elapsed,
broadcasts/s = K / elapsed, and the CPU seconds every process used
(``/proc``). With 2 workers, the sender's worker delivers to its own half
directly, and the other half's deliveries cross Redis (one PUBLISH per
broadcast, whatever the number of recipients).

Configurations: gosf with its Redis broker under hypercorn's asyncio and trio
workers; the same app in 1 worker with every client on it and no Redis
(``LocalBroker``); python-socketio with ``AsyncRedisManager`` over 2 asyncio
workers (it cannot run under trio); under uvicorn (asyncio only), gosf
and python-socketio in 1 worker each; gosf in 1 granian worker (counted: the
worker process its supervisor started); and Node's socket.io 4.8 in 1 process
(``node-socketio/node/1w``, :mod:`benchmarks.nodejs`). A setup whose server
is not installed (granian; node or ``benchmarks/node/node_modules``) is n/a,
saying why. Each configuration: one warm-up round,
then for each window ``--rounds`` measured rounds (median reported). A round
during which other processes of the machine used more than
``--max-other-cpu`` of a core is retaken (``--retries``), in the first
``--retake-budget`` seconds of the run only, which keeps a whole run within
about 4 minutes.

Placement: nothing is pinned by default (2 cores for 2 workers, Redis and
the load generator: see docs/performance.md); ``--pin`` puts the workers on
CPU 0 and the load generators and Redis on CPU 1. Every child is stopped on
the way out, errors and Ctrl-C included. Tables go to stdout, everything to
``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import nodejs, report
from .broadcast_servers import CHANNEL
from .procs import (
    Child,
    cpu_seconds,
    free_port,
    machine_cpu,
    spawned_worker,
    stop_on_sigterm,
    wait_listening,
)
from .run import unavailable, wait_quiet

__all__ = ("CONFIGS", "main")

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU, LOADGEN_CPU = 0, 1
READY_TIMEOUT = 90.0
"""Bound on connecting every client (and on each census)."""
STOP_GRACE = 5.0
"""How long a load generator may take to close its clients once told to."""
SUBSCRIBE_TIMEOUT = 15.0
"""Bound on every worker being subscribed to its Redis channel."""


@dataclass(frozen=True)
class Config:
    """One benchmarked setup."""

    server: str  # an app of benchmarks.broadcast_servers, or node-socketio (Node's)
    # A worker class of benchmarks.servers (hypercorn's asyncio or trio, uvicorn,
    # granian), or node for Node's own server.
    worker: str
    workers: int
    redis: bool
    recovery: bool = False  # gosf only: connection state recovery on (its log, offsets)

    @property
    def name(self) -> str:
        return f"{self.server}/{self.worker}/{self.workers}w" + (
            "+recovery" if self.recovery else ""
        )


CONFIGS = {
    c.name: c
    for c in (
        Config("gosf", "asyncio", 2, True),
        Config("gosf", "trio", 2, True),
        Config("gosf", "asyncio", 1, False),
        Config("gosf", "trio", 1, False),
        Config("python-socketio", "asyncio", 2, True),
        Config("gosf", "uvicorn", 1, False),
        Config("python-socketio", "uvicorn", 1, False),
        Config("gosf", "granian", 1, False),
        Config("node-socketio", "node", 1, False),
        # The cost of connection state recovery: the same as the first two, with it on.
        Config("gosf", "asyncio", 2, True, recovery=True),
        Config("gosf", "trio", 2, True, recovery=True),
    )
}


# -- a few words of RESP, enough to start Redis and see who is subscribed -----------------


def redis_command(port: int, *words: str, timeout: float = 2.0) -> bytes:
    """Send one command to the Redis on 127.0.0.1:``port``; its raw reply (one read)."""
    request = f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(request.encode())
        return sock.recv(4096)


def subscribers(port: int, channel: str) -> int:
    """How many connections are subscribed to ``channel`` (``PUBSUB NUMSUB``)."""
    reply = redis_command(port, "PUBSUB", "NUMSUB", channel)
    return int(reply.rstrip(b"\r\n").rsplit(b":", 1)[1])


@contextlib.contextmanager
def running_redis(executable: str, cpu: int | None) -> Iterator[tuple[Child, int]]:
    """A fresh redis-server on a free loopback port, nothing saved; stopped on exit.

    Raises:
        RuntimeError: it exited or did not answer PING within 10 s.
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="gosf-bench-redis-") as workdir:
        argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", workdir, "--logfile", ""]
        devnull = subprocess.DEVNULL
        with Child("redis-server", argv, cpu=cpu, stdout=devnull, stderr=devnull) as child:
            deadline = time.monotonic() + 10.0
            while True:
                if child.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {child.proc.returncode}")
                with contextlib.suppress(OSError):
                    if redis_command(port, "PING", timeout=0.5).startswith(b"+PONG"):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING within 10 s")
                time.sleep(0.05)
            yield child, port


# -- talking to the load generators --------------------------------------------------------


class Lines:
    """Reads whole lines from a child's stdout, each wait bounded."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.fd = child.stdout.fileno()
        self.buffer = b""

    def readline(self, timeout: float) -> dict[str, Any]:
        """The next line, parsed as JSON.

        Raises:
            RuntimeError: the child exited, or no whole line came within ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.child.name}: no answer within {timeout:.0f} s")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    code = self.child.proc.poll()
                    raise RuntimeError(f"{self.child.name} exited ({code}) without answering")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, command: str) -> None:
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write(command + "\n")
        stdin.flush()


def _close_stdin(child: Child) -> None:
    stdin = child.proc.stdin
    if stdin is not None and not stdin.closed:
        with contextlib.suppress(OSError):
            stdin.close()


def _tail(log: IO[str], lines: int = 20) -> list[str]:
    log.seek(0)
    return [line.rstrip() for line in log.read().splitlines()[-lines:]]


def _split(total: int, parts: int) -> list[int]:
    """``total`` clients over ``parts`` load generators, as evenly as possible."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Bench:
    """One benchmark run's settings and results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        pin = args.pin and (os.cpu_count() or 1) >= 2
        self.server_cpu = SERVER_CPU if pin else None
        self.loadgen_cpu = LOADGEN_CPU if pin else None
        self.source = report.source_state(ROOT)  # what is measured, before the first server
        self.results: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()

    def over_budget(self) -> bool:
        """Whether the run has used its ``--retake-budget``: no more retakes then."""
        budget: float = self.args.retake_budget
        return time.monotonic() - self.started > budget

    def run(self, redis: tuple[Child, int] | None) -> None:
        for name in self.args.configs:
            config = CONFIGS[name]
            print(f"[{name}] {self.args.clients} clients, {self.args.broadcasts} broadcasts")
            missing = unavailable(config.worker)
            if missing:
                result: dict[str, Any] = {"skipped": missing}
            elif config.redis and redis is None:
                result = {"skipped": "redis-server is not installed"}
            elif (
                config.redis
                and config.server == "python-socketio"
                and importlib.util.find_spec("redis") is None
            ):
                result = {"skipped": "python-socketio's AsyncRedisManager needs redis-py"}
            else:
                try:
                    result = self.config(config, redis if config.redis else None)
                except RuntimeError as exc:
                    result = {"error": str(exc)}
            result["config"] = {"server": config.server, "worker": config.worker}
            result["config"].update(
                workers=config.workers, redis=config.redis, recovery=config.recovery
            )
            self.results[name] = result
            print(f"[{name}] {_outcome(result)}")

    def config(self, config: Config, redis: tuple[Child, int] | None) -> dict[str, Any]:
        """Start the workers and the load generators, then every round of one setup.

        Raises:
            RuntimeError: a process failed, or the clients are not spread as asked.
        """
        args = self.args
        broker = f"redis://127.0.0.1:{redis[1]}/0" if redis else None
        with contextlib.ExitStack() as stack:
            ports = [free_port() for _ in range(config.workers)]
            servers: list[Child] = []
            logs: list[IO[str]] = []
            for index, port in enumerate(ports):
                if config.worker == "node":
                    argv = nodejs.argv(config.server, port)
                else:
                    argv = [sys.executable, "-m", "benchmarks.broadcast_servers"]
                    argv += ["--server", config.server, "--worker-class", config.worker]
                    argv += ["--port", str(port)] + (["--broker", broker] if broker else [])
                    argv += ["--recovery"] if config.recovery else []
                log = stack.enter_context(tempfile.TemporaryFile("w+"))
                name = f"worker {index + 1} ({config.name})"
                child = Child(name, argv, cpu=self.server_cpu, cwd=ROOT, stderr=log)
                servers.append(stack.enter_context(child))
                logs.append(log)
            for port, child in zip(ports, servers, strict=True):
                wait_listening(port, child)
            # The processes that serve: granian's worker, the others themselves.
            serving = [
                spawned_worker(child) if config.worker == "granian" else child.pid
                for child in servers
            ]
            gens: list[Lines] = []
            offset = 0
            for index, count in enumerate(_split(args.clients, args.loadgens)):
                argv = [sys.executable, "-m", "benchmarks.broadcast_loadgen", "--ports"]
                argv += [str(p) for p in ports]
                argv += ["--clients", str(count), "--offset", str(offset)]
                if index == 0:
                    argv += ["--sender-port", str(ports[0])]
                offset += count
                child = Child(
                    f"load generator {index + 1}",
                    argv,
                    cpu=self.loadgen_cpu,
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                gens.append(Lines(stack.enter_context(child)))
            try:
                result = self.measure(config, serving, gens, redis)
            finally:
                # Close the clients first (end of stdin: they close their connections),
                # then the workers stop.
                for gen in gens:
                    _close_stdin(gen.child)
                for gen in gens:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        gen.child.proc.wait(STOP_GRACE)
                    gen.child.stop()
                tails = [_tail(log) for log in logs]
            if any(tails):
                result["server_stderr"] = tails
            return result

    def measure(
        self,
        config: Config,
        serving: list[int],
        gens: list[Lines],
        redis: tuple[Child, int] | None,
    ) -> dict[str, Any]:
        args = self.args
        ready = [gen.readline(READY_TIMEOUT) for gen in gens]
        by_pid: dict[str, int] = {}
        for answer in ready:
            for pid, count in answer["by_pid"].items():
                by_pid[pid] = by_pid.get(pid, 0) + count
        worker_pids = {str(pid) for pid in serving}
        expected = _split(args.clients, config.workers)
        if set(by_pid) != worker_pids or sorted(by_pid.values()) != sorted(expected):
            raise RuntimeError(f"clients not spread as asked: {by_pid} over {worker_pids}")
        sender_pid = ready[0]["sender_pid"]
        if redis is not None:
            deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
            while subscribers(redis[1], CHANNEL[config.server]) < config.workers:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the workers did not subscribe within {SUBSCRIBE_TIMEOUT} s"
                    )
                time.sleep(0.05)
        gens[0].send("census")
        census = gens[0].readline(READY_TIMEOUT)["census"]
        for entry in census:
            want = by_pid[str(entry["pid"])] + (1 if entry["pid"] == sender_pid else 0)
            if entry["sockets"] != want:
                raise RuntimeError(f"worker {entry['pid']} holds {entry['sockets']}, not {want}")
        crossed = 1 - by_pid[str(sender_pid)] / args.clients if config.workers > 1 else 0.0
        out: dict[str, Any] = {
            "clients": args.clients,
            "clients_by_worker": by_pid,
            "sender_worker": sender_pid,
            "census": census,
            "connect_seconds": max(answer["connect_seconds"] for answer in ready),
            "crossed_share": round(crossed, 3),
            "windows": {},
        }
        pids = {
            "servers": serving,
            "loadgens": [gen.child.pid for gen in gens],
            "redis": [redis[0].pid] if redis else [],
        }
        base = 0
        for index, window in enumerate(args.windows):
            rounds: list[dict[str, Any]] = []
            # One warm-up round, before the first window: the clients stay connected.
            plan = [("warmup", args.warmup)] if args.warmup and not index else []
            plan += [("measured", args.broadcasts)] * args.rounds
            for kind, k in plan:
                discarded: list[dict[str, Any]] = []
                for attempt in range(args.retries + 1):
                    wait_quiet(args.max_other_cpu, args.quiet_wait)
                    one = self.round(gens, pids, base, k, window, by_pid)
                    base += k
                    one["kind"] = kind
                    if kind == "warmup" or one["other_cpu"] <= args.max_other_cpu:
                        break
                    if attempt == args.retries or self.over_budget():
                        one["contaminated"] = True
                        break
                    discarded.append(one)
                if discarded:
                    one["discarded"] = discarded
                rounds.append(one)
                print(f"  window {window}, {kind} round: {_round_outcome(one)}")
            out["windows"][str(window)] = {"summary": summarise(rounds), "rounds": rounds}
        return out

    def round(
        self,
        gens: list[Lines],
        pids: dict[str, list[int]],
        base: int,
        k: int,
        window: int,
        clients_by_pid: dict[str, int],
    ) -> Any:
        """One round: every load generator told to go, the sender's last; their answers merged."""
        limit = self.args.round_timeout
        cpu0 = {role: [cpu_seconds(pid) for pid in group] for role, group in pids.items()}
        busy0, steal0 = machine_cpu()
        wall0 = time.monotonic()
        for gen in reversed(gens):  # the sender's generator (the first) last
            gen.send(f"go {base} {k} {limit} {window}")
        answers = [gen.readline(limit + 30) for gen in gens]
        wall = time.monotonic() - wall0
        busy1, steal1 = machine_cpu()
        used = {
            role: [cpu_seconds(pid) - before for pid, before in zip(group, cpu0[role], strict=True)]
            for role, group in pids.items()
        }
        cpu = {role: sum(values) for role, values in used.items()}
        clients = sum(a["clients"] for a in answers)
        unique = sum(a["unique"] for a in answers)
        complete = sum(a["complete"] for a in answers) == clients
        sender = answers[0]["sender"]
        start = sender["start"]
        last_done = [a["last_done"] for a in answers if a["last_done"] is not None]
        elapsed = max(last_done) - start if complete and last_done else None
        done_by_pid: dict[str, float] = {}
        for answer in answers:
            for pid, moment in answer["last_done_by_pid"].items():
                done_by_pid[pid] = round(max(done_by_pid.get(pid, 0.0), moment - start), 4)
        # Each worker's CPU per delivery it made (its clients times K, when none was lost).
        per_worker = {
            str(pid): round(seconds / (clients_by_pid[str(pid)] * k) * 1e6, 2)
            for pid, seconds in zip(pids["servers"], used["servers"], strict=True)
        }
        ours = sum(cpu.values())
        return {
            "window": window,
            "broadcasts": k,
            "clients": clients,
            "complete": complete,
            "elapsed": None if elapsed is None else round(elapsed, 4),
            "deliveries": unique,
            "lost": clients * k - unique,
            "duplicates": sum(a["duplicates"] for a in answers),
            "stale": sum(a["stale"] for a in answers),
            "unexpected": sum(a["unexpected"] + a["malformed"] for a in answers),
            "closed": sum(a["closed"] for a in answers),
            "sender_got_news": sender["got_news"],
            "acked": sender["acked"],
            "deliveries_per_s": round(clients * k / elapsed, 1) if elapsed else None,
            "broadcasts_per_s": round(k / elapsed, 1) if elapsed else None,
            "acks_seconds": round(sender["acks_done"] - start, 4) if sender["acks_done"] else None,
            "median_client_done": (
                round(statistics.median(a["median_done"] for a in answers) - start, 4)
                if complete
                else None
            ),
            "worker_done": done_by_pid,
            "cpu_seconds": {role: round(value, 3) for role, value in cpu.items()},
            "loadgen_cpu_seconds_own": round(sum(a["cpu_seconds"] for a in answers), 3),
            "server_us_per_delivery": round(cpu["servers"] / unique * 1e6, 2) if unique else None,
            "worker_us_per_delivery": per_worker,
            "wall": round(wall, 4),
            "other_cpu": round(max(0.0, (busy1 - busy0) - ours) / wall, 3),
            "steal_cpu": round((steal1 - steal0) / wall, 3),
        }


def summarise(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the measured rounds that completed; losses added up over all of them."""
    measured = [r for r in rounds if r["kind"] == "measured"]
    ok = [r for r in measured if r["deliveries_per_s"]]
    losses = {
        key: sum(r[key] for r in measured)
        for key in ("lost", "duplicates", "stale", "unexpected", "closed", "sender_got_news")
    }
    if not ok:
        return {"rounds": 0, "failed": len(measured), **losses}

    def median(values: Iterable[float]) -> float:
        return round(statistics.median(values), 4)

    def by_worker(key: str) -> dict[str, float]:
        values: dict[str, list[float]] = {}
        for r in ok:
            for pid, value in r[key].items():
                values.setdefault(pid, []).append(value)
        return {pid: median(v) for pid, v in values.items()}

    return {
        "rounds": len(ok),
        "failed": len(measured) - len(ok),
        "deliveries_per_s": round(median(r["deliveries_per_s"] for r in ok), 1),
        "deliveries_per_s_min": min(r["deliveries_per_s"] for r in ok),
        "deliveries_per_s_max": max(r["deliveries_per_s"] for r in ok),
        "broadcasts_per_s": round(median(r["broadcasts_per_s"] for r in ok), 1),
        "elapsed": median(r["elapsed"] for r in ok),
        "acks_seconds": median(r["acks_seconds"] for r in ok),
        "median_client_done": median(r["median_client_done"] for r in ok),
        "worker_done": by_worker("worker_done"),
        "server_us_per_delivery": median(r["server_us_per_delivery"] for r in ok),
        "worker_us_per_delivery": by_worker("worker_us_per_delivery"),
        **{
            f"{role}_cores": median(r["cpu_seconds"][role] / r["wall"] for r in ok)
            for role in ("servers", "loadgens", "redis")
        },
        "other_cpu": median(r["other_cpu"] for r in ok),
        "contaminated": sum(1 for r in ok if r.get("contaminated")),
        **losses,
    }


# -- reporting -----------------------------------------------------------------------------


def _outcome(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"n/a: {result['skipped']}"
    if "error" in result:
        return f"failed: {result['error']}"
    shown = []
    for window, by_window in result["windows"].items():
        s = by_window["summary"]
        if not s.get("deliveries_per_s"):
            shown.append(f"window {window}: no round completed (lost {s['lost']})")
            continue
        text = f"window {window}: {s['deliveries_per_s']:,.0f} deliveries/s"
        if s["lost"] or s["duplicates"]:
            text += f", LOST {s['lost']}, DUPLICATES {s['duplicates']}"
        shown.append(text)
    return "; ".join(shown)


def _round_outcome(one: dict[str, Any]) -> str:
    if not one["complete"]:
        return f"incomplete: {one['lost']} of {one['clients'] * one['broadcasts']} lost"
    shown = f"{one['deliveries_per_s']:,.0f} deliveries/s in {one['elapsed']:.2f} s"
    shown += f", server CPU {one['server_us_per_delivery']} us/delivery"
    if one["duplicates"]:
        shown += f", {one['duplicates']} DUPLICATES"
    if one.get("discarded"):
        shown += f" ({len(one['discarded'])} retaken: other load)"
    return shown + (" (other load throughout)" if one.get("contaminated") else "")


def _summary(configs: dict[str, Any], name: str, window: str) -> dict[str, Any] | None:
    """A setup's summary for ``window``, or ``None`` if it has no completed round."""
    summary = configs.get(name, {}).get("windows", {}).get(window, {}).get("summary")
    return summary if summary and summary.get("deliveries_per_s") else None


def format_tables(results: dict[str, Any]) -> str:
    """Markdown: deliveries/s with ratios per worker class and window, then each setup's details."""
    configs: dict[str, Any] = results["configs"]
    windows = [str(w) for w in results["settings"]["windows"]]
    rows = []
    for worker in ("asyncio", "trio", "uvicorn", "granian"):
        for window in windows:
            values = [
                s["deliveries_per_s"] if s else None
                for s in (
                    _summary(configs, f"gosf/{worker}/2w", window),
                    _summary(configs, f"gosf/{worker}/1w", window),
                    _summary(configs, f"python-socketio/{worker}/2w", window),
                    _summary(configs, f"python-socketio/{worker}/1w", window),
                )
            ]
            if not any(values):
                continue
            node = _summary(configs, "node-socketio/node/1w", window)
            node_value = node["deliveries_per_s"] if node else None
            rows.append(
                [
                    worker,
                    window,
                    *(report._fmt_num(v) for v in values),
                    report._fmt_num(node_value),
                    report._fmt_ratio(report.ratio(values[0], values[1])),
                    report._fmt_ratio(report.ratio(values[0], values[2])),
                    report._fmt_ratio(report.ratio(values[1], values[3])),
                    report._fmt_ratio(report.ratio(values[1], node_value)),
                ]
            )
    header = [
        "worker",
        "window",
        "gosf, 2 workers + Redis",
        "gosf, 1 worker",
        "python-socketio, 2 workers + Redis",
        "python-socketio, 1 worker",
        "Node socket.io, 1 process",
        "gosf 2w / gosf 1w",
        "gosf 2w / python-socketio 2w",
        "gosf 1w / python-socketio 1w",
        "gosf 1w / Node socket.io",
    ]
    detail = []
    for name, result in configs.items():
        if "windows" not in result:
            reason = result.get("skipped") or result.get("error") or "?"
            detail.append([name, "", "n/a", reason[:60], *[""] * 7])
            continue
        sender = str(result["sender_worker"])
        for window in windows:
            s = _summary(configs, name, window)
            if s is None:
                detail.append([name, window, "n/a", "no round completed", *[""] * 7])
                continue
            done, cost = s["worker_done"], s["worker_us_per_delivery"]
            others = [pid for pid in done if pid != sender]
            detail.append(
                [
                    name,
                    window,
                    f"{s['deliveries_per_s']:,.0f}",
                    f"{s['deliveries_per_s_min']:,.0f}-{s['deliveries_per_s_max']:,.0f}",
                    f"{s['broadcasts_per_s']:,.1f}",
                    f"{s['acks_seconds']:.2f}",
                    " / ".join(f"{done[pid]:.2f}" for pid in [sender, *others]),
                    f"{s['server_us_per_delivery']:.1f}",
                    " / ".join(f"{cost[pid]:.1f}" for pid in [sender, *others]),
                    f"{s['servers_cores']:.2f} / {s['loadgens_cores']:.2f} / "
                    f"{s['redis_cores']:.2f} / {s['other_cpu']:.2f}",
                    f"{s['lost']} / {s['duplicates']}",
                ]
            )
    detail_header = [
        "setup",
        "window",
        "deliveries/s",
        "min-max",
        "broadcasts/s",
        "acks done (s)",
        "done (s): sender's / other worker",
        "server CPU µs/delivery",
        "µs/delivery: sender's / other worker",
        "cores: servers / loadgen / redis / other",
        "lost / dup",
    ]
    settings = results["settings"]
    return "\n".join(
        [
            f"Deliveries per second, {settings['clients']} clients, {settings['broadcasts']} "
            f"broadcasts per round, median of {settings['rounds']} rounds (window: the "
            "sender's acks outstanding):\n",
            report._table(header, rows),
            "\nPer setup (times from the sender's first request; cores = CPU seconds / round "
            "wall time):\n",
            report._table(detail_header, detail),
        ]
    )


# -- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (100 clients)")
    parser.add_argument("--clients", type=int, default=1000, help="receiving clients")
    parser.add_argument("--broadcasts", type=int, default=50, help="K: broadcasts per round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per setup")
    parser.add_argument("--warmup", type=int, default=10, help="broadcasts of the warm-up round")
    parser.add_argument(
        "--windows",
        type=int,
        nargs="+",
        default=[1, 16],
        help="the sender's acks outstanding: one set of rounds for each",
    )
    parser.add_argument("--loadgens", type=int, default=1, help="load-generator processes")
    parser.add_argument("--round-timeout", type=float, default=60.0, help="longest round, s")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--pin", action="store_true", help="workers on CPU 0, the rest on CPU 1")
    parser.add_argument("--redis-server", default=shutil.which("redis-server"), help="its path")
    parser.add_argument(
        "--max-other-cpu",
        type=float,
        default=0.25,
        help="retake a round when other processes used more CPU than this (in cores)",
    )
    parser.add_argument("--retries", type=int, default=1, help="retakes per round at most")
    parser.add_argument(
        "--retake-budget",
        type=float,
        default=150.0,
        help="seconds into the run after which rounds are no longer retaken",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=5.0,
        help="seconds to wait, before each round, for the machine to go quiet",
    )
    parser.add_argument("--json", type=Path, help="write all results here as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.broadcasts, args.rounds, args.warmup = 100, 20, 1, 5
        args.round_timeout, args.retries, args.quiet_wait = 20.0, 0, 2.0
    if min(args.clients, args.broadcasts, args.loadgens, *args.windows) < 1:
        parser.error("--clients, --broadcasts, --loadgens and --windows must be at least 1")
    args.configs = list(dict.fromkeys(args.configs))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; the exit code (0, or 1 when a setup failed)."""
    args = parse_args(argv)
    stop_on_sigterm()
    bench = Bench(args)
    needs_redis = any(CONFIGS[name].redis for name in args.configs)
    try:
        with contextlib.ExitStack() as stack:
            redis = None
            if needs_redis and args.redis_server:
                redis = stack.enter_context(running_redis(args.redis_server, bench.loadgen_cpu))
            elif needs_redis:
                print("redis-server is not installed: the Redis setups are n/a", file=sys.stderr)
            bench.run(redis)
    except KeyboardInterrupt:
        print("interrupted: every child process was stopped", file=sys.stderr)
        return 130
    results = {
        "environment": {
            **report.environment(),
            "source": bench.source,
            "node": nodejs.versions(),
        },
        "settings": {
            **{k: v for k, v in vars(args).items() if k not in ("json", "redis_server")},
            "pinned": bench.server_cpu is not None,
        },
        "configs": bench.results,
    }
    print()
    print(format_tables(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 1 if any("error" in r for r in bench.results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
