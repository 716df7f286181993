"""gosf.startup: serving, TLS, host checks, bad configuration and graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import socketio
import trustme

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.interop


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client; the server's backend is a parameter


@contextmanager
def started(config: dict[str, Any], marker: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if marker is not None:
        env["GOSF_TEST_MARKER"] = str(marker)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.startup_app", json.dumps(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the plugin prints READY once activated
        assert line.strip() == "READY", process.stderr.read() if process.stderr else ""
        assert process.stdout.readline().startswith("gosf: serving on ")  # gosf's ready line
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def wait_listening(url: str, verify: ssl.SSLContext | bool = True) -> None:
    with anyio.from_thread.start_blocking_portal() as portal:
        portal.call(_wait_listening, url, verify)


async def _wait_listening(url: str, verify: ssl.SSLContext | bool) -> None:
    with anyio.fail_after(15):
        async with httpx.AsyncClient(verify=verify) as http:
            while True:
                try:
                    await http.get(url)
                    return
                except httpx.TransportError:
                    await anyio.sleep(0.05)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_startup_serves_and_shuts_down_gracefully(backend: str, tmp_path: Path) -> None:
    port = free_port()
    marker = tmp_path / "marker"
    config = {"host": "127.0.0.1", "port": port, "backend": backend, "shutdown_grace": 5}
    with started(config, marker) as process:
        url = f"http://127.0.0.1:{port}"
        await _wait_listening(url + "/socket.io/?EIO=4&transport=polling", True)
        client = socketio.AsyncClient(reconnection=False)
        gone = anyio.Event()

        async def on_disconnect(*args: Any) -> None:
            gone.set()

        client.on("disconnect", on_disconnect)
        await client.connect(url, transports=["websocket"], wait_timeout=5)
        with anyio.fail_after(15):
            assert await client.call("echo", {"text": "up"}, timeout=5) == {
                "success": True,
                "text": "up",
            }
            async with anyio.create_task_group() as tg:
                replies: list[Any] = []

                async def in_flight() -> None:
                    replies.append(await client.call("slow", {"body": {"seconds": 1}}, timeout=10))

                tg.start_soon(in_flight)
                assert process.stdout is not None
                running = await anyio.to_thread.run_sync(
                    process.stdout.readline, abandon_on_cancel=True
                )
                assert running.strip() == "SLOW"  # the request is in flight
                process.send_signal(signal.SIGTERM)
            await gone.wait()
            # the request that was running when the signal came still got its answer
            assert replies == [{"success": True, "text": "finished"}]
            await anyio.to_thread.run_sync(process.wait)
        await client.disconnect()
    assert process.returncode == 0
    assert marker.read_text() == "deactivated"  # plugins were deactivated on the way out


def test_bad_configuration_fails_at_start_with_a_clear_error() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "tests.apps.startup_app", json.dumps({"prot": 1, "secure": True})],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "ValidationError" in result.stderr and "prot" in result.stderr


def test_tls_and_reject_invalid_hostnames(tmp_path: Path) -> None:
    authority = trustme.CA()
    cert = authority.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    verify = ssl.create_default_context()
    authority.configure_trust(verify)
    port = free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "secure": True,
        "ssl-cert": str(cert_file),
        "ssl-key": str(key_file),
        "rejectInvalidHostnames": True,
        "shutdown_grace": 1,
    }
    with started(config) as process:
        url = f"https://localhost:{port}/socket.io/?EIO=4&transport=polling"
        wait_listening(url, verify)
        with httpx.Client(verify=verify, timeout=5) as http:
            good = http.get(url)
            assert good.status_code == 200 and good.text.startswith("0{")
            evil = http.get(url, headers={"host": "evil.example"})
            assert evil.status_code == 421
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
