"""Fixtures shared by the whole suite.

* Every async test runs under asyncio and trio (the anyio pytest plugin).
* ``served`` starts a real ASGI server in a child process on loopback; tests
  that use it talk to it over the network with real clients.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["gosf.testing"]  # the gosf_server fixture, as app authors use it

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ("hypercorn-asyncio", "hypercorn-trio", "uvicorn")
START_TIMEOUT = 30.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    kind: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None


def wait_listening(process: subprocess.Popen[bytes], port: int) -> None:
    """Return once something listens on ``port``; fail if ``process`` exits first."""
    _wait_listening(process, port)


def _wait_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"test server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"test server did not listen on {port} within {START_TIMEOUT}s")


def cli_command(kind: str, target: str, port: int) -> list[str]:
    """The command line a user would type to serve ``target`` with ``kind``."""
    if kind == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    worker = kind.removeprefix("hypercorn-")
    bind = f"127.0.0.1:{port}"
    return [sys.executable, "-m", "hypercorn", target, "--worker-class", worker, "--bind", bind]


def start_server(
    kind: str,
    target: str,
    *,
    cli: bool = False,
    port: int | None = None,
    cli_args: tuple[str, ...] = (),
) -> Served:
    """Serve ``target`` (``module:attr``) with ``kind`` in a child process on a free port.

    With ``cli`` the server's own command line is used (as the README says),
    followed by ``cli_args``; otherwise ``tests/serve.py``, which also exits
    when the test run dies.
    """
    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = (
        [*cli_command(kind, target, port), *cli_args]
        if cli
        else [sys.executable, "-m", "tests.serve", kind, target, str(port)]
    )
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_listening(process, port)
    except BaseException:
        stop_server(process)
        raise
    return Served(kind, port, process)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def serving(
    kind: str, target: str, *, cli: bool = False, must_survive: bool = True
) -> Iterator[Served]:
    """``start_server`` for a block: the server is stopped after, and (unless the
    test kills it on purpose) must not have died."""
    server = start_server(kind, target, cli=cli)
    try:
        yield server
        assert server.alive() or not must_survive, f"{target} under {kind} died during the tests"
    finally:
        stop_server(server.process)


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The interop app (tests/apps/interop.py) under each ASGI server."""
    with serving(str(request.param), "tests.apps.interop:asgi") as server:
        yield server
