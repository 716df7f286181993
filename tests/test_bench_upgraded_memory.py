"""benchmarks.upgraded_memory runs end to end (a tiny run: behaviour only, never its numbers)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.upgraded_memory import main


def test_a_tiny_run_measures_each_server_and_way_in(tmp_path: Path) -> None:
    out = tmp_path / "upgraded.json"
    assert main(["--clients", "3", "--settle", "0.3", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    ways = {(r["server"], r["way"]) for r in results}
    assert ways == {
        (server, way) for server in ("gosf", "python-socketio") for way in ("websocket", "upgraded")
    }
    for result in results:
        assert result["clients"] == 3 and "kib_per_client" in result


def test_the_recovery_switch_adds_gosf_with_recovery_and_a_parked_session(
    tmp_path: Path,
) -> None:
    out = tmp_path / "upgraded.json"
    argv = ["--clients", "3", "--settle", "0.3", "--servers", "gosf", "--recovery"]
    assert main([*argv, "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    servers = [r["server"] for r in results]
    assert servers.count("gosf+recovery") == 2  # each way in
    (parked,) = [r for r in results if r["server"] == "parked sessions"]
    assert parked["bytes_per_session"] > 0
