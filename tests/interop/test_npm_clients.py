"""The npm socket.io-client, v4 (Socket.IO 5 / Engine.IO 4) and v2 (Socket.IO 4 /
Engine.IO 3, the client GOSF's docs use), against gosf under each ASGI server.

``tests/js/scenarios.cjs`` drives the stock client through the scenarios and
reports what it observed; the assertions are here. The packages come from
``tests/js/package-lock.json`` (installed by the test command with ``npm ci``).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.conftest import Served
from tests.node import run_scenario

pytestmark = pytest.mark.interop

TRANSPORTS = ["websocket", "polling", "polling,websocket"]


def run_scenarios(version: str, served: Served, transports: str) -> dict[str, Any]:
    return run_scenario("scenarios.cjs", version, served.url, transports)


@pytest.mark.parametrize("transports", TRANSPORTS)
@pytest.mark.parametrize("version", ["v4", "v2"])
def test_npm_client(served: Served, version: str, transports: str) -> None:
    seen = run_scenarios(version, served, transports)
    protocol = 5 if version == "v4" else 4

    assert seen["echo"] == [{"text": "Hello world. é ✓ 🎉", "n": [1, 2.5, None, True]}]
    assert seen["echoMany"] == [1, "two", [3]]
    assert seen["event"] == [{"a": 1}]
    assert seen["binary"]["blob"] == seen["binary"]["expected"]
    assert base64.b64decode(seen["binary"]["blob"]) == bytes(range(256))
    assert base64.b64decode(seen["binary"]["nested"]) == b"x"
    assert seen["serverAck"] == [42]
    assert seen["custom"] == [["custom", "hi"]]

    whoami = seen["whoami"]
    assert whoami["protocol"] == protocol
    assert whoami["namespace"] == "/"
    assert whoami["auth"] == {}  # Engine.IO's own query parameters are not auth
    if "," in transports:
        assert seen["upgradedWhoami"]["transport"] == "websocket"
        assert seen["upgradedWhoami"]["sid"] == whoami["sid"]
    else:
        assert whoami["transport"] == transports

    if version == "v4":
        assert seen["refused"] == {"message": "not authorized", "data": {"reason": "bad token"}}
    else:
        assert seen["refused"] == {"data": {"reason": "bad token"}}
    assert seen["serverDisconnect"][0] == "io server disconnect"
