"""Summaries and tables of the benchmark's results, and what machine they came from."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import platform
import statistics
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = (
    "environment",
    "format_servers_table",
    "format_tables",
    "ratio",
    "server_label",
    "summarise",
)

ROOT = Path(__file__).resolve().parent.parent

LIBRARIES = (
    "gosf",
    "python-socketio",
    "python-engineio",
    "hypercorn",
    "h11",
    "wsproto",
    "anyio",
    "trio",
    "orjson",
    "websockets",
    "uvicorn",
    "uvloop",
    "httptools",
    "granian",
)


def source_state(root: Path) -> dict[str, Any]:
    """Which gosf was measured: the git commit, whether gosf/ differs from it, a source hash."""
    digest = hashlib.sha256()
    for path in sorted((root / "gosf").rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    state: dict[str, Any] = {"gosf_sources_sha256": digest.hexdigest()[:16]}
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "gosf"], cwd=root, capture_output=True, text=True
        )
        if head.returncode == 0:
            state["commit"] = head.stdout.strip()
            state["gosf_modified"] = bool(dirty.stdout.strip())
    except OSError:
        pass
    return state


def environment() -> dict[str, Any]:
    """The machine, interpreter and library versions the numbers were taken on."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if versions["gosf"] is None:  # run from the source tree without an install
        with contextlib.suppress(OSError, KeyError, tomllib.TOMLDecodeError):
            pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
            versions["gosf"] = pyproject["project"]["version"] + " (source tree)"
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "libraries": versions,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The median of repeated load runs of one cell, or ``None`` when none succeeded."""
    ok = [r for r in runs if "rps" in r]
    if not ok:
        return None

    def median(key: str) -> float:
        values = [float(r[key]) for r in ok if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else 0.0

    per_cpu = [r["rps"] / r["server_cpu"] for r in ok if r.get("server_cpu")]
    return {
        "runs": len(ok),
        "failed": len(runs) - len(ok),
        "rps": round(statistics.median(r["rps"] for r in ok), 1),
        "rps_min": min(r["rps"] for r in ok),
        "rps_max": max(r["rps"] for r in ok),
        "rps_per_server_cpu": round(statistics.median(per_cpu), 1) if per_cpu else None,
        "p50_ms": median("p50_ms"),
        "p99_ms": median("p99_ms"),
        "server_cpu": median("server_cpu"),
        "loadgen_cpu": median("loadgen_cpu"),
        "other_cpu": median("other_cpu"),
        "errors": sum(int(r.get("errors", 0)) for r in ok),
        "contaminated": sum(1 for r in ok if r.get("contaminated")),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _fmt_num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        pairs = enumerate(zip(row, widths, strict=True))
        lines.append("| " + " | ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in pairs))
        lines[-1] += " |"
    return "\n".join(lines)


NAMES = ("gosf", "gosf-app", "python-socketio", "bare")
NODE_COLUMNS = {"gosf": "node-socketio", "bare": "node-ws"}
"""Where the ``node`` row puts Node's servers: socket.io in the ``gosf`` column
(the Socket.IO server), its bare ``ws`` echo in the ``bare`` column."""
RATIOS = (
    ("gosf", "python-socketio"),
    ("gosf", "bare"),
    ("gosf-app", "python-socketio"),
    ("gosf-app", "gosf"),
)
COMPARED = ["worker", "clients", *NAMES, *(f"{a}/{b}" for a, b in RATIOS)]


def _compare(worker: str, label: str, values: list[float | None], digits: int = 0) -> list[str]:
    """A row: each server's value (in NAMES order), then the RATIOS."""
    by_name = dict(zip(NAMES, values, strict=True))
    ratios = [_fmt_ratio(ratio(by_name[a], by_name[b])) for a, b in RATIOS]
    return [worker, label, *(_fmt_num(v, digits) for v in values), *ratios]


def _by_column(worker: str, by_server: dict[str, Any]) -> list[Any]:
    """A worker's entries (by server name) in :data:`NAMES` order; for ``node``,
    Node's servers in their columns (:data:`NODE_COLUMNS`), the rest ``None``."""
    if worker == "node":
        return [by_server.get(NODE_COLUMNS[n]) if n in NODE_COLUMNS else None for n in NAMES]
    return [by_server.get(name) for name in NAMES]


def server_label(worker: str, environment: dict[str, Any]) -> str:
    """How the issue's table names a worker class: the server, and what it runs on."""
    libraries = environment.get("libraries", {})
    if worker == "uvicorn":
        stack = environment.get("uvicorn_stack") or {}
        parts = ", ".join(stack.get(k, "?") for k in ("loop", "http", "ws"))
        return f"uvicorn ({parts})" if stack else "uvicorn"
    if worker in ("asyncio", "trio"):
        return f"hypercorn, {worker} worker"
    if worker == "granian":
        return f"granian {libraries.get('granian') or ''} (asyncio)".replace("  ", " ")
    if worker == "node":
        node = environment.get("node") or {}
        return (
            f"Node {node.get('node') or '?'}: socket.io {node.get('socket.io') or '?'} "
            f"/ bare ws {node.get('ws') or '?'}"
        )
    return worker


def format_servers_table(results: dict[str, Any]) -> str:
    """The issue's table: per ASGI server (rows), round trips/s of gosf's
    ``SocketIOServer``, python-socketio and the bare ASGI websocket echo, with
    gosf's ratios to the others and to Node's socket.io; Node's own row below
    (socket.io in the gosf column, its bare ``ws`` echo in the bare column)."""
    summary: dict[str, dict[str, dict[str, Any]]] = results["summary"]
    environment: dict[str, Any] = results.get("environment", {})
    header = [
        "server",
        "clients",
        "gosf SocketIOServer",
        "python-socketio",
        "bare websocket echo",
        "gosf/bare",
        "gosf/python-socketio",
        "gosf/Node socket.io",
    ]
    rows: list[list[str]] = []
    for worker, by_clients in summary.items():
        for clients, cell in by_clients.items():
            gosf, _, psio, bare = (c["rps"] if c else None for c in _by_column(worker, cell))
            node_cell = summary.get("node", {}).get(clients, {}).get("node-socketio")
            node = node_cell["rps"] if node_cell and worker != "node" else None
            rows.append(
                [
                    server_label(worker, environment),
                    clients,
                    *(_fmt_num(v) for v in (gosf, psio, bare)),
                    *(_fmt_ratio(ratio(gosf, other)) for other in (bare, psio, node)),
                ]
            )
    return _table(header, rows)


def _latency(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "n/a"
    return f"{cell['p50_ms']:.2f} / {cell['p99_ms']:.2f} ({cell['server_cpu']:.2f})"


def format_tables(results: dict[str, Any]) -> str:
    """Markdown tables: round trips/s with ratios, latency and CPU, memory per idle connection."""
    summary: dict[str, dict[str, dict[str, Any]]] = results["summary"]
    throughput: list[list[str]] = []
    efficiency: list[list[str]] = []
    latency: list[list[str]] = []
    for worker, by_clients in summary.items():
        for clients, cell in by_clients.items():
            cells = _by_column(worker, cell)
            throughput.append(_compare(worker, clients, [c["rps"] if c else None for c in cells]))
            per_cpu = [c["rps_per_server_cpu"] if c else None for c in cells]
            efficiency.append(_compare(worker, clients, per_cpu))
            latency.append([worker, clients, *(_latency(c) for c in cells)])
    noisy = [
        f"{worker}/{clients}/{name}: {cell[name]['contaminated']}"
        for worker, by_clients in summary.items()
        for clients, cell in by_clients.items()
        for name in cell
        if cell.get(name) and cell[name]["contaminated"]
    ]
    memory: dict[str, dict[str, dict[str, Any] | None]] = results["memory"]
    idle = str(results["settings"]["idle_clients"])
    rows = [
        _compare(worker, idle, [m["kib_per_connection"] if m else None for m in per], 1)
        for worker, by_server in memory.items()
        for per in [_by_column(worker, by_server)]
    ]
    skipped: dict[str, str] = results.get("skipped", {})
    return "\n".join(
        [
            "Acknowledged round trips per second by server (median of the runs):\n",
            format_servers_table(results),
            "\nLeft out: "
            + ("; ".join(f"{worker}: {why}" for worker, why in skipped.items()) or "nothing"),
            "\nAcknowledged round trips per second, every app (median of the runs; the node "
            "row: Node socket.io in the gosf column, its bare ws echo in the bare column):\n",
            _table(COMPARED, throughput),
            "\nRuns that other processes disturbed even after retakes (worker/clients/server: "
            "count): " + (", ".join(noisy) or "none"),
            "\nRound trips per CPU-second of the server process (rps / server CPU share):\n",
            _table(COMPARED, efficiency),
            "\nLatency p50 / p99 in ms (server CPU share, 1.00 = one core busy):\n",
            _table(["worker", "clients", *NAMES], latency),
            "\nServer RSS per idle connection, KiB:\n",
            _table(["worker", "connections", *COMPARED[2:]], rows),
        ]
    )
