"""Node's servers in the benchmarks: socket.io 4.8 and the bare ``ws`` echo.

They stand beside gosf on the same machine, driven by the same load
generators, so that gosf can be compared with the Socket.IO server most
deployments know (the issue's "Node socket.io" and "Node's bare ``ws`` echo"):

* ``node-socketio``: ``benchmarks/node/socketio_server.cjs``, answering
  ``echo`` by ack (as :func:`benchmarks.servers.gosf_app`) and the broadcast
  benchmark's ``blast``, ``whoami`` and ``census`` (as
  :mod:`benchmarks.broadcast_servers`);
* ``node-ws``: ``benchmarks/node/ws_echo.cjs``, a websocket echo (as the
  ``bare`` app).

Each is one Node process, pinned like the Python servers. They need ``node``
and the packages of ``benchmarks/node/package-lock.json``, installed with::

    npm ci --prefix benchmarks/node

Without them the benchmarks leave the Node rows out and say why
(:func:`missing`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

__all__ = ("FOLDER", "SCRIPTS", "argv", "missing", "versions")

FOLDER = Path(__file__).resolve().parent / "node"
SCRIPTS = {"node-socketio": "socketio_server.cjs", "node-ws": "ws_echo.cjs"}
"""Each Node server by the name the benchmarks give it, and its script in :data:`FOLDER`."""
INSTALL = "npm ci --prefix benchmarks/node"


def missing() -> str | None:
    """Why the Node servers cannot run here, or ``None`` when they can."""
    if shutil.which("node") is None:
        return "node is not installed: no Node rows"
    for package in ("socket.io", "ws"):
        if not (FOLDER / "node_modules" / package / "package.json").is_file():
            return f"benchmarks/node/node_modules lacks {package} ({INSTALL}): no Node rows"
    return None


def argv(server: str, port: int) -> list[str]:
    """The command that serves ``server`` (one of :data:`SCRIPTS`) on 127.0.0.1:``port``.

    Raises:
        ValueError: ``server`` is not a Node server.
        RuntimeError: node is not installed.
    """
    if server not in SCRIPTS:
        raise ValueError(f"unknown Node server {server!r}")
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed")
    return [node, str(FOLDER / SCRIPTS[server]), "--port", str(port)]


def versions() -> dict[str, str | None]:
    """node's version and the installed socket.io's and ws's (``None`` where absent)."""
    found: dict[str, str | None] = {"node": None, "socket.io": None, "ws": None}
    node = shutil.which("node")
    if node is not None:
        try:
            done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
            found["node"] = done.stdout.strip().lstrip("v") or None
        except (OSError, subprocess.TimeoutExpired):
            pass
    for package in ("socket.io", "ws"):
        manifest = FOLDER / "node_modules" / package / "package.json"
        try:
            found[package] = json.loads(manifest.read_text())["version"]
        except (OSError, ValueError, KeyError):
            pass
    return found
