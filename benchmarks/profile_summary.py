"""Summarise a py-spy profile of a benchmarked server: where the CPU time goes.

Record a server under load in py-spy's "raw" (collapsed stacks) format, then::

    py-spy record -p SERVER_PID -d 8 -r 200 -f raw -o gosf.txt
    python -m benchmarks.profile_summary gosf.txt

It prints the share of samples per cost centre of a Socket.IO round trip (the
first rule whose key occurs in a sample's stack wins, so the order matters),
then the functions with the most inclusive and self time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

__all__ = ("COST_CENTRES", "main", "summarise")

COST_CENTRES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("transport out: hypercorn/wsproto frame + socket write", ("WSStream.app_send",)),
    ("gosf: anyio.Semaphore.acquire in SocketIOServer._event", ("Semaphore.acquire",)),
    ("gosf: one anyio task per event (Socket._start_handler)", ("Socket._start_handler",)),
    ("gosf: Outbox.wait (a new anyio.Event per wait)", ("Outbox.wait",)),
    ("gosf: SocketIOServer._work_done", ("_work_done",)),
    ("gosf: Socket.IO decode (Decoder.feed)", ("Decoder.feed",)),
    ("gosf: Engine.IO decode/encode", ("decode_ws", "encode_ws")),
    ("gosf: handler, ack encode, queueing", ("_call_handler", "_run_handler (gosf")),
    ("ASGI receive (hypercorn's queue)", ("_read_frame",)),
    ("gosf: rest of the reader/writer", ("_pump", "EngineSession.receive", "on_message")),
    ("anyio task bookkeeping (TaskHandle, CancelScope)", ("anyio",)),
    ("transport in: socket read + h11/wsproto parse", ("TCPServer._read_data", "TCPServer.run")),
    ("event loop: scheduling, epoll", ("",)),
)

_FRAME = re.compile(r"(.*) \((.*):\d+\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    name, path = match.groups()
    return f"{name} ({path.rpartition('site-packages/')[2]})"


def summarise(path: Path, top: int = 25) -> str:
    """The report for one py-spy raw file."""
    centres: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for name, keys in COST_CENTRES:
            if any(key in stack for key in keys):
                centres[name] += count
                break
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "cost centres:"]
    lines += [f"{100 * centres[name] / total:5.1f}%  {name}" for name, _ in COST_CENTRES]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy record -f raw output")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(summarise(args.profile, args.top))


if __name__ == "__main__":
    main()
