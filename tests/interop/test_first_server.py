"""The first server of the README and the guide runs exactly as printed.

The page's Python block is saved as ``myservice.py`` (the name the text uses)
and served by each command the page prints (``python myservice.py``, then
the ``hypercorn``/``uvicorn`` lines), on a free port instead of 9999; a
python-socketio client then calls ``echo``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import socketio

from tests.conftest import ROOT, free_port, stop_server, wait_listening

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PAGES = (ROOT / "README.md", ROOT / "docs" / "guide.md")
SECTION = re.compile(r"## Your first server\n(.*?)\n## ", re.S)
PYTHON = re.compile(r"```python\n(.*?)```", re.S)
SHELL = re.compile(r"```sh\n(.*?)```", re.S)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


def first_server(page: Path) -> tuple[str, list[str]]:
    """The section's Python block and the commands it prints (comments dropped)."""
    section = SECTION.search(page.read_text())
    assert section is not None, f"{page.name} has no 'Your first server' section"
    code = PYTHON.search(section[1])
    shell = SHELL.search(section[1])
    assert code is not None and shell is not None, page.name
    commands = [line.split("#")[0].strip() for line in shell[1].splitlines()]
    return code[1], [command for command in commands if command]


def as_run(command: str, port: int) -> list[str]:
    """A printed command line, on ``port``, with this interpreter's tools."""
    argv = shlex.split(command.replace("9999", str(port)))
    if argv[0] in ("hypercorn", "uvicorn", "python"):
        argv = [sys.executable, *(["-m", argv[0]] if argv[0] != "python" else []), *argv[1:]]
    return argv


def cases() -> list[Any]:
    found = []
    for page in PAGES:
        _, commands = first_server(page)
        printed = ["python myservice.py", *commands]
        # The hypercorn line offers the asyncio worker in its comment.
        printed += [c.replace("trio", "asyncio") for c in commands if "--worker-class trio" in c]
        found += [pytest.param(page, command, id=f"{page.name}:{command}") for command in printed]
    return found


def test_the_readme_and_the_guide_print_the_same_first_server() -> None:
    readme, guide = (first_server(page)[0] for page in PAGES)
    assert readme == guide
    assert "\napp = gosf.app" in readme  # what `hypercorn myservice:app` names


@contextmanager
def running(command: str, port: int, cwd: Path) -> Iterator[None]:
    """The command, run in ``cwd`` with nothing but ``PATH`` set, until the block ends."""
    process = subprocess.Popen(
        as_run(command, port),
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_listening(process, port)
        yield
    finally:
        stop_server(process)


@pytest.mark.parametrize(("page", "command"), cases())
async def test_the_first_server_runs_as_printed(page: Path, command: str, tmp_path: Path) -> None:
    code, _ = first_server(page)
    port = free_port()
    (tmp_path / "myservice.py").write_text(code.replace("9999", str(port)))
    with running(command, port, tmp_path):
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(f"http://127.0.0.1:{port}", wait_timeout=5)
        try:
            with anyio.fail_after(10):
                ack = await client.call("echo", {"text": "Hello world."}, timeout=5)
        finally:
            await client.disconnect()
    assert ack == {"success": True, "text": "Hello world."}
