"""The npm socket.io-client v4, as the Admin UI uses it, against gosf's ``/admin``
(``tests/apps/admin_app.py``) under hypercorn's asyncio and trio workers.

``tests/js/admin_scenarios.cjs`` drives the clients; the assertions here are
what the reference server (npm ``@socket.io/admin-ui``, ``lib/index.ts``)
sends for the same steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Served, serving
from tests.node import run_scenario

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module", params=["hypercorn-asyncio", "hypercorn-trio"])
def admin_server(request: pytest.FixtureRequest) -> Iterator[Served]:
    with serving(str(request.param), "tests.apps.admin_app:asgi") as served:
        yield served


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_the_admin_protocol(admin_server: Served, transports: str) -> None:
    seen: dict[str, Any] = run_scenario("admin_scenarios.cjs", admin_server.url, transports)
    # A wrong password, a wrong user, no credentials and an unknown session: refused.
    assert seen["wrongPassword"] == seen["wrongUser"] == "invalid credentials"
    assert seen["noAuth"] == seen["staleSession"] == "invalid credentials"
    # The right password: a session id first, then the config, then every socket.
    assert seen["firstEvents"] == ["session", "config", "all_sockets"]
    assert len(seen["sessionId"]) == 32
    assert seen["config"] == {
        "supportedFeatures": [
            "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
            "AGGREGATED_EVENTS", "ALL_EVENTS",
        ]
    }  # fmt: skip
    assert [s["nsp"] for s in seen["allSockets"]] == ["/admin"]
    # The session id lets a reloaded page in without a password, and no new id is sent.
    assert seen["reused"] == 0

    stats = seen["stats"]
    assert stats["serverId"] == "gosf-test"
    assert {"hostname", "pid", "uptime", "clientsCount", "pollingClientsCount"} <= set(stats)
    assert stats["memoryUsage"]["rss"] > 0
    assert {"name": "/admin", "socketsCount": 1} in stats["namespaces"]

    connected = seen["connected"]
    assert connected["nsp"] == "/"
    assert connected["transport"] == transports
    assert connected["rooms"] == [connected["id"]]
    assert connected["data"] == {}
    assert len(connected["clientId"]) == 12
    assert {"address", "headers", "query", "issued", "time", "url"} <= set(connected["handshake"])
    assert seen["clientRooms"] == sorted([connected["id"], "red"])
    assert seen["roomJoined"][:3] == ["/", "red", connected["id"]]
    assert seen["eventReceived"][:3] == ["/", connected["id"], ["join", "red"]]
    # An ack is not an event: the first event sent to the client is its pong.
    assert seen["eventSent"][:3] == ["/", connected["id"], ["pong", 7]]

    # The actions.
    assert seen["note"] == ["hi", 2]
    assert seen["joinedBlue"][:3] == ["/", "blue", connected["id"]]
    assert seen["leftBlue"][:3] == ["/", "blue", connected["id"]]
    assert seen["clientReason"] == "io server disconnect"
    assert seen["disconnected"][:3] == ["/", connected["id"], "server namespace disconnect"]
    events = {e["type"] for e in seen["laterStats"]["aggregatedEvents"]}
    assert {"rawDisconnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut"} <= events
