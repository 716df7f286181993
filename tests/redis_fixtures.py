"""A real ``redis-server`` for the tests, on a free loopback port, in a temp dir.

Tests never use a system Redis: each fixture starts its own
``redis-server --port P --bind 127.0.0.1 --save "" --appendonly no`` and stops
it afterwards. Where ``redis-server`` is not installed they skip, loudly
(install it with ``./scripts/install-redis``, as root).

Use the fixtures from a test module by binding them to a module-level name::

    from tests import redis_fixtures

    redis_server = redis_fixtures.redis_server
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
MISSING = "REDIS TESTS SKIPPED: redis-server is not installed: run ./scripts/install-redis as root"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Have the kernel stop redis-server if the test run dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def ping(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis on ``127.0.0.1:port`` answers PING now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on a fixed loopback port, which can be stopped and started."""

    def __init__(self, port: int | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.skip(MISSING)
        self.executable = executable
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="gosf-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start it on its port and wait (bounded) until it answers PING.

        Raises:
            RuntimeError: it exited, or did not answer within ``START_TIMEOUT``.
        """
        if self.running:
            return
        log = Path(self._dir.name) / "redis.log"
        command = [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
            "--logfile",
            str(log),
        ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{tail}")
            if ping(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING on {self.port} in {START_TIMEOUT}s")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``STOP_TIMEOUT``); its port stays reserved."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused one would not see SIGTERM
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open and nothing is answered, as when it hangs."""
        assert self.process is not None, "not running"
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Stop it and start it again on the same port (empty: nothing is saved)."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped and removed on exit (skips if not installed)."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server shared by a module's tests (give each test its own channel)."""
    with running_redis() as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the module's redis-server."""
    return redis_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server for one test only: for tests that stop and restart it."""
    with running_redis() as server:
        yield server
