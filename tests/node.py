"""Running the node scripts of tests/js: stock npm Socket.IO clients that report what they saw."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).resolve().parent / "js"

__all__ = ("JS", "run_scenario")


def run_scenario(script: str, *args: str, timeout: float = 60) -> dict[str, Any]:
    """Run ``tests/js/<script>`` with ``args`` and return the JSON object it printed.

    Fails the test (rather than skipping it) when node or the npm packages are
    missing: ./scripts/test installs them.
    """
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("node and tests/js/node_modules are required: run ./scripts/test (npm ci)")
    result = subprocess.run(
        [node, str(JS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"node {script} exited {result.returncode}: {result.stderr}"
    observed: dict[str, Any] = json.loads(result.stdout)
    return observed
