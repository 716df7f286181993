"""The broadcast benchmark's quick mode: every client gets every broadcast, once.

Runs ``python -m benchmarks.broadcast --quick`` (100 clients over 2 gosf
workers joined by a redis-server of its own, 20 broadcasts a round) for the
asyncio and the trio worker, in a child process, and checks what the clients
saw: the split over the workers, every broadcast at every client, no
duplicates, no broadcast to the sender, no connection lost. Never speed: the
numbers of a quick run on a shared machine mean nothing. That test skips,
loudly, where redis-server is not installed. The same checks run for the
single-process setups of granian and Node's socket.io (skipped where granian,
or node and ``benchmarks/node/node_modules``, are missing); the last test
checks, in process, that the load generator's counting tells repeats from
deliveries.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import nodejs
from benchmarks.servers import granian_version
from tests.redis_fixtures import MISSING

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("gosf/asyncio/2w", "gosf/trio/2w", "gosf/asyncio/2w+recovery")
TIMEOUT = 120.0
"""Bound on the whole benchmark run (it takes about 10 s)."""

needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason=MISSING)


def run_quick(out: Path, configs: tuple[str, ...] = CONFIGS) -> subprocess.CompletedProcess[str]:
    """The quick benchmark, stopped (with its children) if it overruns :data:`TIMEOUT`."""
    argv = [sys.executable, "-m", "benchmarks.broadcast", "--quick", "--configs", *configs]
    # Never retake a round because of other load: this test is about behaviour only.
    argv += ["--windows", "1", "16", "--max-other-cpu", "100", "--json", str(out)]
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the driver stops its children, then exits
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        pytest.fail(f"the quick broadcast benchmark took over {TIMEOUT} s:\n{output}")
    return subprocess.CompletedProcess(argv, proc.returncode, output, None)


@needs_redis
def test_every_client_gets_every_broadcast_once(tmp_path: Path) -> None:
    out = tmp_path / "broadcast.json"
    done = run_quick(out)
    assert done.returncode == 0, done.stdout
    results = json.loads(out.read_text())
    assert results["settings"]["clients"] == 100
    for name in CONFIGS:
        result = results["configs"][name]
        assert "error" not in result, result["error"]
        assert sorted(result["clients_by_worker"].values()) == [50, 50]
        assert result["crossed_share"] == 0.5
        census = {entry["pid"]: entry["sockets"] for entry in result["census"]}
        assert sorted(census.values()) == [50, 51]  # the sender is on one of them
        assert set(result["windows"]) == {"1", "16"}
        for by_window in result["windows"].values():
            for one in by_window["rounds"]:
                k = one["broadcasts"]
                assert one["complete"], one
                assert one["acked"] == k
                assert one["deliveries"] == 100 * k
                assert one["lost"] == 0
                assert one["duplicates"] == 0
                assert one["stale"] == 0 and one["unexpected"] == 0
                assert one["sender_got_news"] == 0  # broadcasts skip the sender
                assert one["closed"] == 0
                assert one["deliveries_per_s"] > 0


def assert_every_broadcast_reached_everyone_once(result: dict[str, Any]) -> None:
    """One worker, 100 clients and the sender: every round complete, nothing lost."""
    assert "error" not in result, result["error"]
    assert list(result["clients_by_worker"].values()) == [100]
    (entry,) = result["census"]
    assert entry["sockets"] == 101  # the sender too
    for by_window in result["windows"].values():
        for one in by_window["rounds"]:
            k = one["broadcasts"]
            assert one["complete"], one
            assert (one["acked"], one["deliveries"]) == (k, 100 * k)
            assert one["lost"] == one["duplicates"] == one["stale"] == one["unexpected"] == 0
            assert one["sender_got_news"] == 0 and one["closed"] == 0


@pytest.mark.skipif(granian_version() is None, reason="granian is not installed")
def test_granian_delivers_every_broadcast_once(tmp_path: Path) -> None:
    out = tmp_path / "broadcast.json"
    done = run_quick(out, ("gosf/granian/1w",))
    assert done.returncode == 0, done.stdout
    result = json.loads(out.read_text())["configs"]["gosf/granian/1w"]
    assert_every_broadcast_reached_everyone_once(result)


@pytest.mark.skipif(nodejs.missing() is not None, reason=nodejs.missing() or "")
def test_node_socketio_delivers_every_broadcast_once(tmp_path: Path) -> None:
    out = tmp_path / "broadcast.json"
    done = run_quick(out, ("node-socketio/node/1w",))
    assert done.returncode == 0, done.stdout
    results = json.loads(out.read_text())
    assert results["environment"]["node"]["socket.io"].startswith("4.8.")
    assert_every_broadcast_reached_everyone_once(results["configs"]["node-socketio/node/1w"])


def test_a_receiver_counts_repeats_and_strays_apart() -> None:
    """What the benchmark's assertions rest on: a repeat is a duplicate, not a delivery."""
    import asyncio

    from benchmarks.broadcast_loadgen import Receiver, Round

    class Wire:
        def __init__(self) -> None:
            self.sent: list[str] = []
            self.on_text: object = None

        def send(self, text: str) -> None:
            self.sent.append(text)

    async def scenario() -> tuple[Round, Receiver, Wire]:
        wire = Wire()
        receiver = Receiver(wire, 8001, 42)  # type: ignore[arg-type]
        current = Round(base=100, k=3, clients=1)
        receiver.start(current)
        for text in (
            '42["news",100,{"text":"hello"}]',
            '42["news",100,{"text":"hello"}]',  # again: a duplicate
            '42["news",99,{"text":"hello"}]',  # an earlier round's
            '42["news",103,{"text":"hello"}]',  # beyond this round
            "2",  # a ping
            '42["news",101,{"text":"hello"}]',
        ):
            receiver.on_text(text)
        assert not current.done.done()
        receiver.on_text('42["news",102,{"text":"hello"}]')
        assert current.done.done()
        return current, receiver, wire

    current, receiver, wire = asyncio.run(scenario())
    assert receiver.count == 3
    assert (current.duplicates, current.stale, current.unexpected) == (1, 1, 1)
    assert wire.sent == ["3"]
