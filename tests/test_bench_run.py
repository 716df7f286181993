"""benchmarks.run's granian and Node rows start and answer (tiny runs: behaviour
only, never their numbers).

Each test runs the driver in process with one client for a fraction of a
second and a few idle connections, and checks that every server it asked for
answered round trips and held its idle clients. The granian test skips where
granian is not installed, the Node test where node or
``benchmarks/node/node_modules`` is missing (``npm ci --prefix benchmarks/node``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import nodejs
from benchmarks.report import format_servers_table
from benchmarks.run import main
from benchmarks.servers import granian_version

TINY = ["--repeat", "1", "--clients", "1", "--seconds", "0.3", "--warmup", "0.1"]
TINY += ["--idle-clients", "3", "--max-other-cpu", "100", "--quiet-wait", "0"]
"""One client, no retakes: these runs are about behaviour only."""


def run_tiny(tmp_path: Path, workers: list[str], servers: list[str]) -> dict[str, Any]:
    out = tmp_path / "run.json"
    argv = [*TINY, "--workers", *workers, "--servers", *servers, "--json", str(out)]
    assert main(argv) == 0
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def assert_answered(results: dict[str, Any], worker: str, servers: list[str]) -> None:
    """Every server answered round trips and held its idle clients, without errors."""
    assert results["skipped"] == {}
    cell = results["summary"][worker]["1"]
    for name in servers:
        assert cell[name]["rps"] > 0 and cell[name]["errors"] == 0, (name, cell[name])
        assert results["memory"][worker][name]["connections"] == 3


@pytest.mark.skipif(granian_version() is None, reason="granian is not installed")
def test_granian_serves_gosf_python_socketio_and_the_bare_echo(tmp_path: Path) -> None:
    servers = ["gosf", "python-socketio", "bare"]
    results = run_tiny(tmp_path, ["granian"], servers)
    assert_answered(results, "granian", servers)
    # The CPU counted is the worker process's, which granian's supervisor started.
    assert all(r["server_cpu"] > 0 for r in results["runs"])
    table = format_servers_table(results)
    assert f"granian {granian_version()} (asyncio)" in table


@pytest.mark.skipif(nodejs.missing() is not None, reason=nodejs.missing() or "")
def test_node_serves_socketio_and_the_ws_echo(tmp_path: Path) -> None:
    servers = ["node-socketio", "node-ws"]
    results = run_tiny(tmp_path, ["node"], [*servers, "gosf"])  # gosf: not under node
    assert_answered(results, "node", servers)
    assert set(results["memory"]["node"]) == set(servers)
    versions = results["environment"]["node"]
    assert versions["socket.io"].startswith("4.8.")
    # Node's row puts socket.io in the gosf column and its ws echo in the bare one.
    (row,) = [
        line for line in format_servers_table(results).splitlines() if line.startswith("| Node ")
    ]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] != "n/a" and cells[3] == "n/a" and cells[4] != "n/a"


def test_a_worker_whose_server_is_missing_is_left_out_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nodejs, "missing", lambda: "node is not installed: no Node rows")
    results = run_tiny(tmp_path, ["node"], ["node-socketio"])
    assert results["skipped"] == {"node": "node is not installed: no Node rows"}
    assert results["summary"] == {} and results["runs"] == []
