"""benchmarks.idle runs end to end (a tiny run: behaviour only, never its numbers)."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest

from benchmarks.idle import main, raise_fd_limit


def test_a_tiny_run_measures_gosf_and_bare_on_each_server(tmp_path: Path) -> None:
    out = tmp_path / "idle.json"
    argv = ["--clients", "6", "--procs", "2", "--warmup", "2", "--settle", "0.2"]
    assert main([*argv, "--workers", "asyncio", "trio", "uvicorn", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    results = document["results"]
    rows = {(r["worker"], r["app"]) for r in results}
    assert rows == {(w, a) for w in ("asyncio", "trio", "uvicorn") for a in ("gosf", "bare")}
    for result in results:
        assert result["connected"] == 6 and result["failed"] == 0
        assert "kib_per_client" in result
        assert 0 < result["connect_p50_ms"] <= result["connect_p99_ms"]
        # The server got room for every client (the warm-up's included).
        assert int(result["limits"]["soft"]) >= 6 + 2
    assert set(document["ratios_gosf_to_bare"]) == {"asyncio", "trio", "uvicorn"}


def test_the_tracemalloc_switch_adds_what_the_server_holds_per_client(tmp_path: Path) -> None:
    out = tmp_path / "idle.json"
    argv = ["--clients", "4", "--procs", "1", "--warmup", "1", "--settle", "0.2"]
    argv += ["--workers", "asyncio", "--apps", "gosf", "--tracemalloc", "--top", "3"]
    assert main([*argv, "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    where = [row["where"] for row in result["tracemalloc"]]
    assert where[0] == "all" and len(where) == 4
    assert "tasks_added" in result  # asyncio: the tasks the clients added, by coroutine


def test_the_open_file_limit_is_raised_no_further_than_allowed() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        assert raise_fd_limit(soft) == (soft, hard)  # enough already: unchanged
        new_soft, new_hard = raise_fd_limit(soft + 1)
        assert new_soft >= soft + 1 or new_soft == new_hard == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_granian_gives_a_reference_row_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("granian")
    out = tmp_path / "idle.json"
    argv = ["--clients", "4", "--procs", "2", "--warmup", "1", "--settle", "0.2"]
    assert main([*argv, "--workers", "granian", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert {(r["worker"], r["app"]) for r in results} == {("granian", "gosf"), ("granian", "bare")}
    assert all(r["connected"] == 4 for r in results)
