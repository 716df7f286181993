"""The ``gosf`` command as a user runs it: a child process on loopback.

``gosf run`` starts, prints one ready line with the URL, serves a client,
and prints one line when a signal stops it; ``--reload`` restarts the server
when a file changes; ``--workers`` reminds about the broker. Each test waits
on the lines the command prints, every wait bounded.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import trustme

import gosf
from tests.conftest import ROOT
from tests.sioclient import SioClient

pytestmark = pytest.mark.anyio

LINE_TIMEOUT = 30.0
READY = re.compile(
    r"gosf: serving on http://127\.0\.0\.1:(\d+)/ "
    r"\(Socket\.IO at /socket\.io/, API docs at /asyncapi, (\w+), (\w+)(, \d workers)?\); "
    r"press Ctrl-C to stop"
)
"""gosf's ready line: the port, the server, the backend, the workers."""
ECHO = ["echo", {"success": True, "text": "hi"}]


class Command:
    """A running ``python -m gosf ...``, its output read line by line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._abandoned = False  # a read timed out: its thread still holds stdout

    async def line(self) -> str:
        """The next line of standard output (``""`` at its end)."""
        assert self.process.stdout is not None
        self._abandoned = True
        with anyio.fail_after(LINE_TIMEOUT):
            line = await anyio.to_thread.run_sync(
                self.process.stdout.readline, abandon_on_cancel=True
            )
        self._abandoned = False
        self.lines.append(line)
        return line.rstrip("\n")

    def close(self) -> None:
        """Kill the process if it still runs; close its pipes (not one a
        timed-out read still blocks on: closing would wait for that read)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stdout is not None and not self._abandoned:
            self.process.stdout.close()
        if self.process.stderr is not None:
            self.process.stderr.close()

    async def ready(self) -> tuple[int, str, str]:
        """Read up to the ready line; its port, server and backend."""
        while True:
            line = await self.line()
            assert line, f"the command ended before its ready line: {self.lines}"
            match = READY.fullmatch(line)
            if match:
                return int(match.group(1)), match.group(2), match.group(3)
            assert not line.startswith("gosf:"), line

    async def exit_code(self) -> int:
        with anyio.fail_after(LINE_TIMEOUT):
            return await anyio.to_thread.run_sync(self.process.wait, abandon_on_cancel=True)


def spawn(
    command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def gosf_command(*args: str, cwd: Path = ROOT) -> Iterator[Command]:
    process = spawn([sys.executable, "-m", "gosf", *args], cwd)
    command = Command(process)
    try:
        yield command
    finally:
        command.close()


async def echo(port: int) -> list[object]:
    async with SioClient.connect(f"127.0.0.1:{port}") as client:
        return await client.call("echo", {"text": "hi"})


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gosf", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout == f"gosf {gosf.__version__}\n"


def test_the_console_script_is_the_module() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"gosf": "gosf.__main__:main"}
    from gosf.__main__ import main

    assert callable(main)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_run_serves_until_a_signal(anyio_backend: str, signum: signal.Signals) -> None:
    args = ("run", "tests.apps.startup_app:app", "--port", "0", "--backend", anyio_backend)
    with gosf_command(*args) as command:
        port, server, backend = await command.ready()
        assert (server, backend) == ("hypercorn", anyio_backend)
        with anyio.fail_after(LINE_TIMEOUT):
            assert await echo(port) == [{"success": True, "text": "hi"}]
        command.process.send_signal(signum)
        assert await command.line() == f"gosf: stopped ({signum.name})"
        assert await command.exit_code() == 0
        assert command.process.stderr is not None
        assert "Running on" not in command.process.stderr.read()  # hypercorn's line: left out


async def test_startup_prints_the_same_ready_line(anyio_backend: str) -> None:
    config = f'{{"host": "127.0.0.1", "port": 0, "backend": "{anyio_backend}"}}'
    process = spawn([sys.executable, "-m", "tests.apps.startup_app", config])
    command = Command(process)
    try:
        assert await command.line() == "READY"  # the plugin: activated before the ready line
        port, server, backend = await command.ready()
        assert (server, backend) == ("hypercorn", anyio_backend)
        with anyio.fail_after(LINE_TIMEOUT):
            assert await echo(port) == [{"success": True, "text": "hi"}]
        process.send_signal(signal.SIGTERM)
        assert await command.line() == "gosf: stopped (SIGTERM)"
        assert await command.exit_code() == 0
    finally:
        command.close()


LOGGED_APP = """
import logging

import gosf

logging.basicConfig(level=logging.INFO)  # the user's own logging, at INFO
app = gosf.app


@gosf.listen("echo")
async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message.success(request.message.text)


if __name__ == "__main__":
    import sys

    gosf.startup({"host": "127.0.0.1", "port": 0, "backend": sys.argv[1]})
"""


@pytest.mark.parametrize("how", ["run", "startup"])
async def test_logging_setup_changes_neither_line(
    anyio_backend: str, tmp_path: Path, how: str
) -> None:
    """With ``logging.basicConfig`` hypercorn's own "Running on" line would
    reach the root handler too: the ready line is printed once, on standard
    output, and hypercorn's line not at all; gosf's log lines go through the
    user's setup."""
    (tmp_path / "logged_app.py").write_text(LOGGED_APP)
    if how == "run":
        args = ["-m", "gosf", "run", "logged_app:app", "--port", "0", "--backend", anyio_backend]
    else:
        args = ["logged_app.py", anyio_backend]
    command = Command(spawn([sys.executable, *args], cwd=tmp_path))
    try:
        port, _, _ = await command.ready()
        with anyio.fail_after(LINE_TIMEOUT):
            assert await echo(port) == [{"success": True, "text": "hi"}]
        command.process.send_signal(signal.SIGTERM)
        assert await command.line() == "gosf: stopped (SIGTERM)"
        assert await command.exit_code() == 0
        assert await command.line() == ""
        assert [line for line in command.lines if READY.fullmatch(line.rstrip())] == [
            command.lines[-3]
        ]
        assert command.process.stderr is not None
        errors = command.process.stderr.read()
        assert "Running on" not in errors
        assert "INFO:gosf:SIGTERM: draining before the server stops" in errors
    finally:
        command.close()


APP = """
import gosf

app = gosf.App()


@app.listen("echo")
async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message.success(request.message.text{suffix})
"""


async def test_reload_restarts_the_server_when_a_file_changes(
    anyio_backend: str, tmp_path: Path
) -> None:
    module = tmp_path / "reloaded_app.py"
    module.write_text(APP.format(suffix=""))
    args = ("run", "reloaded_app:app", "--port", "0", "--reload", "--backend", anyio_backend)
    with gosf_command(*args, cwd=tmp_path) as command:
        port, _, _ = await command.ready()
        with anyio.fail_after(LINE_TIMEOUT):
            assert await echo(port) == [{"success": True, "text": "hi"}]
        module.write_text(APP.format(suffix=' + " again"'))
        assert await command.line() == "gosf: reloaded_app.py changed: restarting"
        assert await command.line() == "gosf: stopped (SIGTERM)"  # the old server drained
        assert await command.ready() == (port, "hypercorn", anyio_backend)  # the same socket
        with anyio.fail_after(LINE_TIMEOUT):
            assert await echo(port) == [{"success": True, "text": "hi again"}]
        # Either signal stops the supervisor and its server (one per backend: each
        # run restarts a server, which takes a while).
        signum = signal.SIGINT if anyio_backend == "asyncio" else signal.SIGTERM
        command.process.send_signal(signum)
        assert await command.line() == f"gosf: stopped ({signum.name})"
        assert await command.exit_code() == 0
        assert await command.line() == ""  # nothing after the stop line


async def test_a_server_outlives_no_killed_reloader(anyio_backend: str, tmp_path: Path) -> None:
    (tmp_path / "reloaded_app.py").write_text(APP.format(suffix=""))
    args = ("run", "reloaded_app:app", "--port", "0", "--reload", "--backend", anyio_backend)
    with gosf_command(*args, cwd=tmp_path) as command:
        await command.ready()
        command.process.kill()  # the supervisor, with no chance to stop its server
        assert await command.line() == "gosf: stopped (SIGTERM)"
        assert await command.line() == ""  # the server is gone too: nobody holds stdout


async def test_workers_without_a_broker_get_the_reminder(anyio_backend: str) -> None:
    args = ("run", "tests.apps.startup_app:app", "--port", "0", "--workers", "2")
    with gosf_command(*args, "--backend", anyio_backend) as command:
        port, server, backend = await command.ready()
        ready = READY.fullmatch(command.lines[-1].rstrip("\n"))
        assert ready is not None and ready.group(4) == ", 2 workers"
        assert (server, backend) == ("hypercorn", anyio_backend)
        with anyio.fail_after(LINE_TIMEOUT):
            assert await echo(port) == [{"success": True, "text": "hi"}]
        command.process.send_signal(signal.SIGTERM)
        while (line := await command.line()) != "gosf: stopped":
            assert line in ("READY", ""), line  # each worker's plugin; "" would be the end
        assert await command.exit_code() == 0
        assert command.process.stderr is not None
        assert command.process.stderr.readline() == (
            "gosf: warning: 2 workers and no broker: each worker keeps its own sessions, "
            "so polling clients are refused by the workers that did not start their session "
            'and broadcasts reach one worker\'s clients only; set "broker": "redis://..." '
            "(docs/deployment.md)\n"
        )


async def test_run_with_tls_flags(anyio_backend: str, tmp_path: Path) -> None:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    verify = ssl.create_default_context()
    authority.configure_trust(verify)
    args = ("run", "tests.apps.startup_app:app", "--port", "0", "--backend", anyio_backend)
    tls = ("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file))
    with gosf_command(*args, *tls) as command:
        while not (line := await command.line()).startswith("gosf: "):
            assert line, command.lines
        ready = re.fullmatch(r"gosf: serving on https://127\.0\.0\.1:(\d+)/ \(.*", line)
        assert ready is not None, line
        with anyio.fail_after(LINE_TIMEOUT):
            async with httpx.AsyncClient(verify=verify) as http:
                url = f"https://127.0.0.1:{ready.group(1)}/socket.io/?EIO=4&transport=polling"
                answer = await http.get(url)
        assert answer.status_code == 200 and answer.text.startswith("0{")
        command.process.send_signal(signal.SIGTERM)
        assert await command.line() == "gosf: stopped (SIGTERM)"
        assert await command.exit_code() == 0
