"""``gosf.startup`` and ``gosf run`` serving with uvicorn (``server: "uvicorn"``).

The same promises as under hypercorn (tests/test_cli.py,
tests/interop/test_startup.py), in a child process on loopback: one ready
line that names the server, a python-socketio client served, TLS,
``rejectInvalidHostnames`` and the health endpoint, a SIGTERM with a client
connected and a request in flight drained (the answer, then a clean close,
the plugins deactivated, the stop line, exit 0), and each refusal in one
line: uvicorn with trio, uvicorn missing, ``--workers`` with uvicorn.

uvicorn serves asyncio only, and the clients here are asyncio's
(python-socketio): the async tests skip under trio, saying so.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pydantic
import pytest
import socketio
import trustme

import gosf
from tests.test_cli import APP, LINE_TIMEOUT, Command, echo, gosf_command, spawn
from tests.test_startup_errors import run, startup

pytestmark = pytest.mark.interop

TARGET = "tests.apps.startup_app:app"

GRACE = 3
"""The app's ``shutdown_grace``: longer than the request in flight."""

REQUEST_SECONDS = 1
"""How long the request in flight at the signal takes."""

READY_TLS = re.compile(
    r"gosf: serving on https://127\.0\.0\.1:(\d+)/ "
    r"\(Socket\.IO at /socket\.io/, API docs at /asyncapi, uvicorn, asyncio\); "
    r"press Ctrl-C to stop"
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "trio":
        pytest.skip(
            "uvicorn serves asyncio only (with trio the config is refused: "
            "test_uvicorn_with_trio_is_a_configuration_error), and python-socketio's "
            "client is asyncio's"
        )
    return str(request.param)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@contextmanager
def started(config: dict[str, Any], env: dict[str, str] | None = None) -> Iterator[Command]:
    """``gosf.startup(config)`` of tests/apps/startup_app.py in a child process."""
    command = Command(
        spawn([sys.executable, "-m", "tests.apps.startup_app", json.dumps(config)], env=env)
    )
    try:
        yield command
    finally:
        command.close()


@pytest.mark.anyio
async def test_startup_serves_with_uvicorn_and_drains_on_sigterm(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    config = {"host": "127.0.0.1", "port": 0, "server": "uvicorn", "shutdown_grace": GRACE}
    with started(config, env={"GOSF_TEST_MARKER": str(marker)}) as command:
        assert await command.line() == "READY"  # the plugin: activated before the ready line
        port, server, backend = await command.ready()
        assert (server, backend) == ("uvicorn", "asyncio")
        client = socketio.AsyncClient(reconnection=False)
        reasons: list[Any] = []
        gone = anyio.Event()

        async def on_disconnect(*args: Any) -> None:
            reasons.extend(args)
            gone.set()

        client.on("disconnect", on_disconnect)
        url = f"http://127.0.0.1:{port}"
        with anyio.fail_after(GRACE + LINE_TIMEOUT):
            await client.connect(url, transports=["websocket"], wait_timeout=5)
            assert await client.call("echo", {"text": "up"}, timeout=5) == {
                "success": True,
                "text": "up",
            }
            replies: list[Any] = []
            async with anyio.create_task_group() as tg:

                async def in_flight() -> None:
                    body = {"body": {"seconds": REQUEST_SECONDS}}
                    replies.append(await client.call("slow", body, timeout=GRACE + LINE_TIMEOUT))

                tg.start_soon(in_flight)
                assert await command.line() == "SLOW"  # the request is running
                command.process.send_signal(signal.SIGTERM)
            await gone.wait()
        await client.disconnect()
        # the request running at the signal got its answer, then a clean close
        assert replies == [{"success": True, "text": "finished"}]
        # python-socketio's name for the server's DISCONNECT (a cut connection
        # would be "transport error")
        assert reasons == ["server disconnect"], reasons
        assert await command.line() == "gosf: stopped (SIGTERM)"
        assert await command.exit_code() == 0
        assert await command.line() == ""  # nothing after the stop line
        assert command.process.stderr is not None
        assert "Uvicorn running on" not in command.process.stderr.read()  # uvicorn's line
    assert marker.read_text() == "deactivated"  # plugins were deactivated on the way out


@pytest.mark.anyio
async def test_startup_with_uvicorn_serves_tls_checks_hosts_and_answers_health(
    tmp_path: Path,
) -> None:
    authority = trustme.CA()
    cert = authority.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    verify = ssl.create_default_context()
    authority.configure_trust(verify)
    config = {
        "host": "127.0.0.1",
        "port": 0,
        "server": "uvicorn",
        "secure": True,
        "ssl-cert": str(cert_file),
        "ssl-key": str(key_file),
        "rejectInvalidHostnames": True,
        "shutdown_grace": 1,
    }
    with started(config) as command:
        assert await command.line() == "READY"
        ready = READY_TLS.fullmatch(await command.line())
        assert ready is not None, command.lines
        base = f"https://localhost:{ready.group(1)}"
        with anyio.fail_after(LINE_TIMEOUT):
            async with httpx.AsyncClient(verify=verify) as http:
                url = f"{base}/socket.io/?EIO=4&transport=polling"
                good = await http.get(url)
                assert good.status_code == 200 and good.text.startswith("0{")
                evil = await http.get(url, headers={"host": "evil.example"})
                assert evil.status_code == 421
                health = await http.get(f"{base}/healthz")
                assert (health.status_code, health.json()) == (200, {"status": "ok"})
        command.process.send_signal(signal.SIGINT)
        assert await command.line() == "gosf: stopped (SIGINT)"
        assert await command.exit_code() == 0


@pytest.mark.anyio
async def test_run_serves_with_uvicorn_until_a_signal() -> None:
    args = ("run", TARGET, "--port", "0", "--server", "uvicorn")
    with gosf_command(*args) as command:
        port, server, backend = await command.ready()
        assert (server, backend) == ("uvicorn", "asyncio")
        with anyio.fail_after(LINE_TIMEOUT):
            assert await echo(port) == [{"success": True, "text": "hi"}]
        command.process.send_signal(signal.SIGINT)
        assert await command.line() == "gosf: stopped (SIGINT)"
        assert await command.exit_code() == 0


def test_uvicorn_with_trio_is_a_configuration_error() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        gosf.Config.from_mapping({"server": "uvicorn", "backend": "trio"})
    [problem] = info.value.errors()
    assert problem["msg"] == (
        "Value error, server 'uvicorn' runs on asyncio only: use backend 'asyncio', "
        "or server 'hypercorn' for trio"
    )
    result = run("run", TARGET, "--server", "uvicorn", "--backend", "trio")
    assert (result.returncode, result.stderr) == (
        1,
        "gosf: error: invalid configuration: server 'uvicorn' runs on asyncio only: "
        "use backend 'asyncio', or server 'hypercorn' for trio\n",
    )


def test_an_unknown_server_is_a_configuration_error() -> None:
    with pytest.raises(pydantic.ValidationError, match="'hypercorn' or 'uvicorn'"):
        gosf.Config.from_mapping({"server": "granian"})


NO_UVICORN = "import sys; sys.modules['uvicorn'] = None  # as if uvicorn were not installed"


def test_uvicorn_missing_names_the_extra() -> None:
    line = "server 'uvicorn' needs uvicorn, which is not installed: pip install 'gosf[uvicorn]'"
    result = run("run", TARGET, "--server", "uvicorn", preamble=NO_UVICORN)
    assert (result.returncode, result.stderr) == (1, f"gosf: error: {line}\n")
    result = startup({"host": "127.0.0.1", "port": 0, "server": "uvicorn"}, preamble=NO_UVICORN)
    assert (result.returncode, result.stderr) == (1, f"gosf: {line}\n")
    assert "READY" not in result.stdout  # refused before the app started


def test_workers_with_uvicorn_are_refused() -> None:
    result = run("run", TARGET, "--server", "uvicorn", "--workers", "2")
    assert (result.returncode, result.stderr) == (
        1,
        "gosf: error: --workers runs hypercorn's supervisor, not uvicorn: leave out "
        f"--server uvicorn, or run uvicorn's own: uvicorn --workers 2 {TARGET} "
        "(docs/deployment.md)\n",
    )


def test_a_port_in_use_is_named_under_uvicorn(busy_port: int) -> None:
    result = startup({"host": "127.0.0.1", "port": busy_port, "server": "uvicorn"})
    assert (result.returncode, result.stderr) == (
        1,
        f"gosf: cannot listen on 127.0.0.1:{busy_port}: address already in use\n",
    )


@pytest.mark.anyio
async def test_reload_restarts_a_uvicorn_server_on_the_same_socket(tmp_path: Path) -> None:
    module = tmp_path / "reloaded_app.py"
    module.write_text(APP.format(suffix=""))
    args = ("run", "reloaded_app:app", "--port", "0", "--reload", "--server", "uvicorn")
    with gosf_command(*args, cwd=tmp_path) as command:
        port, server, _ = await command.ready()
        assert server == "uvicorn"
        with anyio.fail_after(LINE_TIMEOUT):
            assert await echo(port) == [{"success": True, "text": "hi"}]
        module.write_text(APP.format(suffix=' + " again"'))
        assert await command.line() == "gosf: reloaded_app.py changed: restarting"
        assert await command.line() == "gosf: stopped (SIGTERM)"  # the old server drained
        assert await command.ready() == (port, "uvicorn", "asyncio")  # the same socket
        with anyio.fail_after(LINE_TIMEOUT):
            assert await echo(port) == [{"success": True, "text": "hi again"}]
        command.process.send_signal(signal.SIGINT)
        assert await command.line() == "gosf: stopped (SIGINT)"
        assert await command.exit_code() == 0
