"""Child processes for the benchmark: start, wait for a port, measure, always stop.

Linux only (it reads ``/proc``). Every wait here is bounded in time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, NoReturn

__all__ = (
    "Child",
    "cpu_seconds",
    "descendants",
    "free_port",
    "machine_cpu",
    "rss_kib",
    "spawned_worker",
    "stop_on_sigterm",
    "tree_rss_kib",
    "wait_listening",
)

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), nearest first."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop(0)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue  # it exited meanwhile
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as children:
                    below = [int(child) for child in children.read().split()]
            except OSError:
                continue
            found.extend(below)
            pending.extend(below)
    return found


def tree_rss_kib(pid: int) -> int:
    """RSS in KiB of ``pid`` and every process below it."""
    total = 0
    for current in [pid, *descendants(pid)]:
        try:
            total += rss_kib(current)
        except (OSError, RuntimeError):
            pass  # it exited meanwhile
    return total


def spawned_worker(child: Child, timeout: float = 20.0) -> int:
    """The process that serves for ``child`` when ``child`` is a supervisor that
    forks one worker process (granian): its first descendant that is not
    :mod:`multiprocessing`'s resource tracker.

    Raises:
        RuntimeError: ``child`` exited, or no worker appeared within ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}")
        for pid in descendants(child.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if b"resource_tracker" not in cmdline.read():
                        return pid
            except OSError:
                continue
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} started no worker process within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # After "pid (comm)": state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """CPU seconds used so far on the whole machine, all cores: (busy, stolen).

    Busy is everything but idle and iowait (steal included): what the
    processes of this machine, the benchmark's and anyone else's, used.
    """
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    steal = fields[7] if len(fields) > 7 else 0
    return (sum(fields[:8]) - idle) / _CLK_TCK, steal / _CLK_TCK


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, child: Child, timeout: float = 20.0) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections.

    Raises:
        RuntimeError: ``child`` exited first, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not listen on port {port} within {timeout} s")


class Child:
    """A child process that is stopped, whatever happens, when the block exits.

    The child gets its own session, so a Ctrl-C at the terminal reaches only
    the driver, which then stops its children in order: SIGTERM, then SIGKILL
    after ``grace`` seconds.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpu: int | None = None,
        grace: float = 5.0,
        **popen: Any,
    ) -> None:
        self.name = name
        self.grace = grace
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            list(argv), start_new_session=True, text=True, **popen
        )
        if cpu is not None:
            try:
                os.sched_setaffinity(self.proc.pid, {cpu})
            except OSError:
                pass  # pinning is an optimisation; the run is valid without it

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdout(self) -> IO[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def stop(self) -> int | None:
        """Stop the process (idempotent); its exit code, ``None`` if it could not be reaped."""
        proc = self.proc
        for stream in (proc.stdin,):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(self.grace)
                except subprocess.TimeoutExpired:
                    return None
        # The child led a session of its own: what it started and left behind
        # (a supervisor's worker) goes with it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass  # nothing was left
        for stream in (proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        return proc.returncode

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_on_sigterm() -> None:
    """Make SIGTERM stop the driver as Ctrl-C does (its children are stopped on the way out)."""

    def stop(signum: int, frame: Any) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
