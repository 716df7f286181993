"""A signal drains the app under every server's own command line.

SIGTERM (or Ctrl-C's SIGINT) to ``hypercorn module:app``, ``uvicorn
module:app`` or ``gosf.startup`` (with hypercorn or uvicorn): the request in
flight still gets its answer, then the client gets a clean Engine.IO/Socket.IO
disconnect (not a transport error), plugins are deactivated, and the process
is gone within ``shutdown_grace`` and a margin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import socketio

from tests.conftest import ROOT, cli_command, free_port
from tests.interop.test_startup import _wait_listening

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

GRACE = 3
"""The app's ``shutdown_grace``: longer than the request in flight."""

REQUEST_SECONDS = 1.5
"""How long the request in flight at the signal takes."""

MARGIN = 10.0
"""Seconds beyond the grace a process may take to start, close and exit."""

LINE_TIMEOUT = 30.0
"""Seconds the app may take to print its next line (its start included)."""

TARGET = "tests.apps.startup_app:app"

# name: (server, extra command-line arguments). Under hypercorn's supervisor
# (its default of one worker process) the worker does not get the signal, and
# hypercorn's own graceful timeout runs alongside gosf's drain: it must cover
# shutdown_grace (see docs/deployment.md).
LAUNCHES: dict[str, tuple[str, tuple[str, ...]]] = {
    "hypercorn-asyncio": ("hypercorn-asyncio", ("--graceful-timeout", str(GRACE + 3))),
    "hypercorn-trio": ("hypercorn-trio", ("--graceful-timeout", str(GRACE + 3))),
    "hypercorn-asyncio-w0": ("hypercorn-asyncio", ("--workers", "0")),
    "hypercorn-trio-w0": ("hypercorn-trio", ("--workers", "0")),
    "uvicorn": ("uvicorn", ()),
    "gosf.startup-asyncio": ("gosf-asyncio", ()),
    "gosf.startup-trio": ("gosf-trio", ()),
    "gosf.startup-uvicorn": ("gosf-uvicorn", ()),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client; the server's side is the parameter


def command(server: str, port: int, extra: tuple[str, ...]) -> list[str]:
    if server.startswith("gosf-"):
        kind = server.removeprefix("gosf-")  # a backend (served by hypercorn), or uvicorn
        served_by = {"server": kind} if kind == "uvicorn" else {"backend": kind}
        config = {"host": "127.0.0.1", "port": port, **served_by}
        return [sys.executable, "-m", "tests.apps.startup_app", json.dumps(config)]
    return [*cli_command(server, TARGET, port), *extra]


@contextmanager
def launched(
    server: str, port: int, extra: tuple[str, ...], marker: Path
) -> Iterator[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GOSF_TEST_MARKER": str(marker),
        "GOSF_TEST_CONFIG": json.dumps({"shutdown_grace": GRACE}),
    }
    process = subprocess.Popen(
        command(server, port, extra),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def read_line(process: subprocess.Popen[str]) -> str:
    """The app's next line on standard output (READY, SLOW), or ``""`` at its end;
    gosf's own ready and stop lines (``gosf: ...``, tests/test_cli.py) are passed over."""
    assert process.stdout is not None
    with anyio.fail_after(LINE_TIMEOUT):
        line = "gosf: "
        while line.startswith("gosf: "):
            line = await anyio.to_thread.run_sync(process.stdout.readline, abandon_on_cancel=True)
    return line.strip()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("launch", list(LAUNCHES))
async def test_a_signal_drains_before_the_server_stops(
    launch: str, signum: signal.Signals, tmp_path: Path
) -> None:
    server, extra = LAUNCHES[launch]
    if signum == signal.SIGINT and launch in ("hypercorn-asyncio", "hypercorn-trio"):
        pytest.skip("same path as SIGTERM: the supervisor sets the same event for both")
    port = free_port()
    marker = tmp_path / "marker"
    with launched(server, port, extra, marker) as process:
        assert await read_line(process) == "READY", process.stderr.read() if process.stderr else ""
        url = f"http://127.0.0.1:{port}"
        await _wait_listening(url + "/socket.io/?EIO=4&transport=polling", True)
        client = socketio.AsyncClient(reconnection=False)
        reasons: list[Any] = []
        gone = anyio.Event()

        async def on_disconnect(*args: Any) -> None:
            reasons.extend(args)
            gone.set()

        client.on("disconnect", on_disconnect)
        await client.connect(url, transports=["websocket"], wait_timeout=5)
        replies: list[Any] = []
        with anyio.fail_after(GRACE + MARGIN):
            async with anyio.create_task_group() as tg:

                async def in_flight() -> None:
                    body = {"body": {"seconds": REQUEST_SECONDS}}
                    replies.append(await client.call("slow", body, timeout=GRACE + MARGIN))

                tg.start_soon(in_flight)
                assert await read_line(process) == "SLOW"  # the request is running
                process.send_signal(signum)
            await gone.wait()
            # the request that was running when the signal came got its answer...
            assert replies == [{"success": True, "text": "finished"}]
            # ...and then a clean close, not a cut connection
            assert reasons and reasons[0] in ("io server disconnect", "server disconnect"), reasons
            await anyio.to_thread.run_sync(process.wait)
        await client.disconnect()
    # uvicorn hands the signal back to the process after its own shutdown
    assert process.returncode in (0, -signal.SIGTERM, -signal.SIGINT), process.returncode
    assert marker.read_text() == "deactivated"  # plugins were deactivated on the way out


async def test_a_hypercorn_graceful_timeout_shorter_than_the_drain_is_reported(
    tmp_path: Path,
) -> None:
    """Under hypercorn's supervisor the drain runs within hypercorn's own
    graceful timeout, by default too short for the app's grace,
    and gosf says which flag to give."""
    port = free_port()
    with launched("hypercorn-asyncio", port, (), tmp_path / "marker") as process:
        assert await read_line(process) == "READY"
        await _wait_listening(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling", True)
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(GRACE + MARGIN):
            await anyio.to_thread.run_sync(process.wait)
        assert process.stderr is not None
        assert f"--graceful-timeout {GRACE + 3}" in process.stderr.read()
