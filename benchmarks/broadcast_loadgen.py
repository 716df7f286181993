"""The broadcast benchmark's load generator: many receiving clients, and maybe the sender.

A process of its own, driven by :mod:`benchmarks.broadcast` over stdin and
stdout (one command a line in, one JSON line out)::

    python -m benchmarks.broadcast_loadgen --ports 8001 8002 --clients 500 \\
        [--offset 0] [--sender-port 8001]

It opens ``--clients`` Socket.IO clients (Engine.IO 4 over the raw websocket
client of :mod:`benchmarks.wsclient`), client ``i`` on port
``ports[(offset + i) % len(ports)]``, so the clients of all load-generator
processes are spread evenly over the workers. Each asks ``whoami`` once
connected, which tells the process it landed in. It then prints one line,
``{"ready": ..., "by_pid": {pid: clients}}``, and waits for commands:

* ``census``: ask each worker (through one of its clients) how many clients it
  holds; prints ``{"census": [{"port", "pid", "sockets"}, ...]}``.
* ``go BASE K TIMEOUT [WINDOW]``: one round. The sender (``--sender-port``,
  one more client, in one load-generator process only) asks for the
  broadcasts ``BASE .. BASE+K-1`` with the ack-requesting event ``blast``,
  keeping at most ``WINDOW`` (default 1) acks outstanding, and notes the
  moment it sent the first.
  Every receiving client counts the ``news`` events of the round, each
  number once (a number seen again is a duplicate), and notes the moment it
  had all ``K``. The round ends when every client has all ``K``, or after
  ``TIMEOUT`` seconds; it prints one JSON line: counts, duplicates, the
  moments (``time.monotonic()``, the same clock for every process of the
  machine) and this process's CPU time.

End of stdin closes every connection and ends the process (each wait for a
command is bounded by ``--idle-timeout``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import sys
import time
from typing import Any

from .loadgen import _open_all, _open_raw
from .wsclient import WebSocket

__all__ = ("main",)

NEWS = '42["news",'
"""How a broadcast starts on the wire: ``42["news",<n>,{"text":"hello"}]``."""
REPLY_TIMEOUT = 10.0


class Round:
    """What the receiving clients of this process saw of one round."""

    __slots__ = (
        "base",
        "done",
        "done_times",
        "duplicates",
        "k",
        "malformed",
        "remaining",
        "stale",
        "unexpected",
    )

    def __init__(self, base: int, k: int, clients: int) -> None:
        self.base = base
        self.k = k
        self.remaining = clients
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done_times: list[float] = []
        self.duplicates = 0  # a number a client had already seen this round
        self.stale = 0  # a number of an earlier round
        self.unexpected = 0  # a number beyond this round
        self.malformed = 0  # a news event whose number could not be read

    def client_done(self, now: float) -> None:
        self.done_times.append(now)
        self.remaining -= 1
        if not self.remaining and not self.done.done():
            self.done.set_result(None)


class Receiver:
    """One receiving client: counts each broadcast of the round once, from its callback."""

    __slots__ = ("count", "done_at", "pid", "port", "reply", "round", "seen", "ws")

    def __init__(self, ws: WebSocket, port: int, pid: int) -> None:
        self.ws = ws
        self.port = port
        self.pid = pid
        self.round: Round | None = None
        self.seen = bytearray()
        self.count = 0
        self.done_at = 0.0
        self.reply: asyncio.Future[str] | None = None
        ws.on_text = self.on_text

    def start(self, current: Round) -> None:
        self.round = current
        self.seen = bytearray(current.k)
        self.count = 0
        self.done_at = 0.0

    def on_text(self, text: str) -> None:
        current = self.round
        if text.startswith(NEWS) and current is not None:
            try:
                n = int(text[len(NEWS) : text.index(",", len(NEWS))]) - current.base
            except ValueError:
                current.malformed += 1
                return
            if 0 <= n < current.k:
                if self.seen[n]:
                    current.duplicates += 1
                    return
                self.seen[n] = 1
                self.count += 1
                if self.count == current.k:
                    self.done_at = time.monotonic()
                    current.client_done(self.done_at)
            elif n < 0:
                current.stale += 1
            else:
                current.unexpected += 1
        elif text == "2":
            self.ws.send("3")
        elif text.startswith("43") and self.reply is not None and not self.reply.done():
            self.reply.set_result(text)

    async def ask(self, event: str) -> Any:
        """Send ``event`` with an ack id; the ack's first argument (bounded wait).

        Raises:
            TimeoutError: no ack within :data:`REPLY_TIMEOUT`.
        """
        self.reply = asyncio.get_running_loop().create_future()
        self.ws.send(f'429["{event}"]')
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                text = await self.reply
        finally:
            self.reply = None
        return json.loads(text[text.index("[") :])[0]


class Sender:
    """The client that asks for the broadcasts, ``window`` acks outstanding at most."""

    __slots__ = (
        "acked",
        "acks_done",
        "all_acked",
        "end",
        "got_news",
        "k",
        "next",
        "other",
        "started",
        "window",
        "ws",
    )

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.window = 1
        self.next = self.end = self.k = 0
        self.acked = 0
        self.started = self.acks_done = 0.0
        self.all_acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.got_news = 0  # broadcasts skip the sender: should stay 0
        self.other = 0
        ws.on_text = self.on_text

    def start(self, base: int, k: int, window: int) -> asyncio.Future[None]:
        """Start asking for broadcasts ``base .. base+k-1``, ``window`` acks outstanding
        at most; the future is done once all are acked."""
        self.window = window
        self.all_acked = asyncio.get_running_loop().create_future()
        self.next, self.end, self.k = base, base + k, k
        self.acked = 0
        self.acks_done = 0.0
        self.started = time.monotonic()
        for _ in range(min(self.window, k)):
            self.fire()
        return self.all_acked

    def fire(self) -> None:
        n = self.next
        self.next += 1
        self.ws.send(f'42{n}["blast",{n}]')

    def on_text(self, text: str) -> None:
        if text.startswith("43"):
            if int(text[2 : text.index("[")]) < self.end - self.k:
                self.other += 1  # a late ack of an earlier (timed-out) round
                return
            self.acked += 1
            if self.next < self.end:
                self.fire()
            elif self.acked == self.k:
                self.acks_done = time.monotonic()
                if not self.all_acked.done():
                    self.all_acked.set_result(None)
        elif text == "2":
            self.ws.send("3")
        elif text.startswith(NEWS):
            self.got_news += 1
        else:
            self.other += 1


async def _open_client(port: int) -> tuple[WebSocket, int, int]:
    """A connected client on ``port``, its port and the pid of the worker that holds it."""
    ws = await _open_raw(port, "socketio")
    try:
        ws.send('420["whoami"]')
        while True:
            text = await ws.recv()
            if text == "2":
                ws.send("3")
            elif text.startswith("430["):
                return ws, port, int(text[4:-1])
    except BaseException:
        ws.close()
        raise


class LoadGen:
    """This process's clients and the commands it answers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.receivers: list[Receiver] = []
        self.sender: Sender | None = None
        self.sender_pid: int | None = None

    async def connect(self) -> dict[str, Any]:
        args = self.args
        ports = list(args.ports)
        shift = args.offset % len(ports)
        cycle = itertools.cycle(ports[shift:] + ports[:shift])
        started = time.perf_counter()
        opened: list[tuple[WebSocket, int, int]] = await _open_all(
            lambda: _open_client(next(cycle)), args.clients
        )
        self.receivers = [Receiver(ws, port, pid) for ws, port, pid in opened]
        if args.sender_port:
            ws, _, self.sender_pid = (await _open_all(lambda: _open_client(args.sender_port), 1))[0]
            self.sender = Sender(ws)
        by_pid: dict[str, int] = {}
        by_port: dict[str, int] = {}
        for receiver in self.receivers:
            by_pid[str(receiver.pid)] = by_pid.get(str(receiver.pid), 0) + 1
            by_port[str(receiver.port)] = by_port.get(str(receiver.port), 0) + 1
        return {
            "ready": True,
            "clients": len(self.receivers),
            "by_pid": by_pid,
            "by_port": by_port,
            "sender_pid": self.sender_pid,
            "connect_seconds": round(time.perf_counter() - started, 3),
        }

    async def census(self) -> dict[str, Any]:
        seen: dict[int, Receiver] = {}
        for receiver in self.receivers:
            seen.setdefault(receiver.port, receiver)
        answers = []
        for port, receiver in seen.items():
            answer = await receiver.ask("census")
            answers.append({"port": port, **answer})
        return {"census": answers}

    async def round(self, base: int, k: int, limit: float, window: int) -> dict[str, Any]:
        """One round of ``k`` broadcasts numbered from ``base``, ``window`` acks outstanding
        at most, over after ``limit`` seconds at most."""
        current = Round(base, k, len(self.receivers))
        for receiver in self.receivers:
            receiver.start(current)
        cpu0 = time.process_time()
        sender = self.sender
        waits = [current.done]
        if sender is not None:
            waits.append(sender.start(base, k, window))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                for wait in waits:
                    await wait
        cpu = time.process_time() - cpu0
        for receiver in self.receivers:
            receiver.round = None
        by_pid: dict[str, float] = {}
        for receiver in self.receivers:
            if receiver.count == k:
                key = str(receiver.pid)
                by_pid[key] = max(by_pid.get(key, 0.0), receiver.done_at)
        unique = sum(receiver.count for receiver in self.receivers)
        done = current.done_times
        result: dict[str, Any] = {
            "clients": len(self.receivers),
            "complete": len(done),
            "expected": len(self.receivers) * k,
            "unique": unique,
            "missing": len(self.receivers) * k - unique,
            "duplicates": current.duplicates,
            "stale": current.stale,
            "unexpected": current.unexpected,
            "malformed": current.malformed,
            "closed": sum(1 for receiver in self.receivers if receiver.ws.closed.is_set()),
            "first_done": min(done) if done else None,
            "median_done": statistics.median(done) if done else None,
            "last_done": max(done) if done else None,
            "last_done_by_pid": by_pid,
            "cpu_seconds": round(cpu, 4),
        }
        if sender is not None:
            result["sender"] = {
                "start": sender.started,
                "acked": sender.acked,
                "acks_done": sender.acks_done or None,
                "got_news": sender.got_news,
                "other": sender.other,
                "pid": self.sender_pid,
            }
        return result

    def close(self) -> None:
        for receiver in self.receivers:
            receiver.ws.close()
        if self.sender is not None:
            self.sender.ws.close()


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


async def run(args: argparse.Namespace) -> None:
    gen = LoadGen(args)
    reader = await _stdin_reader()
    try:
        _emit(await gen.connect())
        while True:
            try:
                async with asyncio.timeout(args.idle_timeout):
                    line = (await reader.readline()).decode()
            except TimeoutError:
                return
            if not line:
                return  # stdin closed: the driver is done with us
            command, *params = line.split()
            if command == "census":
                _emit(await gen.census())
            elif command == "go":
                base, k, limit, window = int(params[0]), int(params[1]), float(params[2]), 1
                if len(params) > 3:
                    window = int(params[3])
                _emit(await gen.round(base, k, limit, window))
            else:
                _emit({"error": f"unknown command {command!r}"})
    finally:
        gen.close()
        await asyncio.sleep(0.1)  # let the close frames go out


def main(argv: list[str] | None = None) -> None:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(description="load generator of the broadcast benchmark")
    parser.add_argument("--ports", type=int, nargs="+", required=True)
    parser.add_argument("--clients", type=int, required=True, help="receiving clients")
    parser.add_argument("--offset", type=int, default=0, help="index of this process's first")
    parser.add_argument("--sender-port", type=int, help="also open the sender, on this port")
    parser.add_argument("--idle-timeout", type=float, default=120.0, help="longest command wait")
    args = parser.parse_args(argv)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
