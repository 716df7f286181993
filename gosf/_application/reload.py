"""``gosf run --reload``: a supervisor that restarts the server when a ``.py`` file changes.

The supervisor never imports the app after its first check; each server is a
child process, ``gosf run ... --fd N``:

* The supervisor binds the socket once and hands it to every server it
  starts, so a restart never races the old server for the port, and a port
  in use is reported once, before anything runs.
* It watches the folders with watchfiles, and starts the first server only
  once the watch is in place: a file saved after the first ready line is
  always seen.
* Each server runs in a session of its own, so a Ctrl-C at the terminal
  reaches the supervisor alone, which passes one SIGINT on: the server
  drains as it would without the reloader (a second signal would cut the
  drain short).
* Every wait is bounded: a server that has not stopped within
  ``shutdown_grace`` and a margin is killed. A server whose supervisor is
  gone (killed) sees its standard input close and stops itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .._config import Config
from .signals import CLOSE_GRACE
from .startup import StartupError, bind, hypercorn_config

__all__ = ("reload", "stop_when_orphaned")

RELOAD_MISSING = "--reload needs watchfiles, which is not installed: pip install 'gosf[reload]'"

STOP_MARGIN = 3.0
"""Seconds past the drain (``shutdown_grace`` and the clients' last frames)
a server gets to exit before it is killed."""

WATCH_TICK_MS = 500
"""How often the watch comes back without a change, to notice a server that
exited by itself (and, at the very start, to know the watch is in place)."""


def reload(config: Config, arguments: Sequence[str], folders: Sequence[str]) -> int:
    """Serve ``gosf <arguments> --fd N`` in a child process, restarted on every
    change of a ``.py`` file under ``folders``, until SIGINT or SIGTERM.

    Raises:
        StartupError: watchfiles is missing, or the address cannot be bound.
    """
    try:
        import watchfiles
    except ImportError:
        raise StartupError(RELOAD_MISSING) from None
    hypercorn = hypercorn_config(config)
    bind(hypercorn, config)
    fd = int(hypercorn.bind[0].removeprefix("fd://"))
    stopping = threading.Event()
    received: list[signal.Signals] = []
    running: list[subprocess.Popen[bytes]] = []  # the server, for a second signal

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum))
        if stopping.is_set():
            # A second Ctrl-C while the server drains: pass it on at once, so
            # that it forces its way out as it would without the reloader.
            for server in running:
                if server.poll() is None:
                    server.send_signal(signum)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    timeout = config.shutdown_grace + CLOSE_GRACE + STOP_MARGIN
    server: subprocess.Popen[bytes] | None = None
    exit_reported = False
    try:
        for changes in watchfiles.watch(
            *folders,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=stopping,
            rust_timeout=WATCH_TICK_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            if server is None:  # the first tick: the watch is in place
                server = _start(arguments, fd)
                running[:] = [server]
            elif changes:
                names = sorted({_shown(path) for _, path in changes})
                print(f"gosf: {', '.join(names)} changed: restarting", flush=True)
                _stop(server, signal.SIGTERM, timeout)
                server, exit_reported = _start(arguments, fd), False
                running[:] = [server]
            elif server.poll() is not None and not exit_reported:
                print(
                    f"gosf: the server exited with status {server.returncode}; "
                    "restarting at the next change",
                    file=sys.stderr,
                    flush=True,
                )
                exit_reported = True
    finally:
        if server is not None:
            _stop(server, received[0] if received else signal.SIGTERM, timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(fd)
    return 0


def _shown(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _start(arguments: Sequence[str], fd: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gosf", *arguments, "--fd", str(fd)],
        pass_fds=(fd,),
        start_new_session=True,  # the terminal's Ctrl-C is the supervisor's to pass on
        stdin=subprocess.PIPE,  # closed when the supervisor goes: see stop_when_orphaned
    )


def _stop(server: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    """Stop ``server`` with ``sig`` (it drains), killing it after ``timeout`` seconds."""
    if server.poll() is None:
        server.send_signal(sig)
        try:
            server.wait(timeout)
        except subprocess.TimeoutExpired:
            print(
                f"gosf: the server did not stop within {timeout:g}s: killing it",
                file=sys.stderr,
                flush=True,
            )
            server.kill()
            server.wait(timeout)
    if server.stdin is not None:
        server.stdin.close()


def stop_when_orphaned() -> None:
    """In a server started by :func:`reload`: SIGTERM this process when its
    standard input closes (the supervisor is gone), so that no server outlives
    its reloader."""

    def watch() -> None:
        # The bare descriptor: a daemon thread blocked in sys.stdin's buffered
        # reader holds its lock, which the interpreter's exit then waits for.
        while os.read(sys.stdin.fileno(), 4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="gosf-orphan-watch", daemon=True).start()
