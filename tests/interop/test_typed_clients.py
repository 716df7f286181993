"""Typed endpoints over the network: tests/apps/typed_app.py served by hypercorn
(asyncio and trio workers), driven by the npm socket.io-client v4 and by gosf's
own client (under asyncio and trio).

What each proves: a valid body reaches the controller as its model; an
invalid one is answered ``BAD_REQUEST`` (as the ack and as the event, the
ids echoed) with each error's path, never the value sent, and the controller
does not run (``calls`` lists the controllers that ran).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import gosf
from tests.conftest import Served, serving
from tests.node import run_scenario

pytestmark = pytest.mark.interop

TARGET = "tests.apps.typed_app:app"


@pytest.fixture(scope="module", params=["hypercorn-asyncio", "hypercorn-trio"])
def typed_server(request: pytest.FixtureRequest) -> Iterator[Served]:
    with serving(str(request.param), TARGET) as server:
        yield server


def paths(failure: dict[str, Any]) -> list[str]:
    return [error["path"] for error in failure["body"]["errors"]]


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_npm_client_sends_valid_and_invalid_bodies(typed_server: Served, transports: str) -> None:
    seen = run_scenario("typed_scenarios.cjs", typed_server.url, transports)
    assert seen["valid"] == {
        "id": 1,
        "success": True,
        "body": {"order_id": "o-7", "items": 3, "sizes": ["large", "small"]},
    }
    invalid = seen["invalid"]
    assert (invalid["id"], invalid["guid"], invalid["success"], invalid["text"]) == (
        2,
        "g-2",
        False,
        "BAD_REQUEST",
    )
    assert paths(invalid) == ["body.customerId", "body.lines.0.sku", "body.lines.0.qty"]
    assert "hunter2" not in str(invalid) and "seven" not in str(invalid)
    assert seen["invalidSync"]["text"] == "BAD_REQUEST"
    assert paths(seen["invalidSync"]) == ["body.street", "body.city"]
    assert seen["validSync"] == {"id": 4, "success": True, "text": "Main St 1, Ghent"}
    # Only the valid requests ran a controller (the server's calls so far end with them).
    assert seen["calls"]["body"]["calls"][-2:] == ["order.place", "address.check"]
    assert seen["events"]["order.place"] == [seen["valid"], invalid]
    assert seen["events"]["address.check"] == [seen["invalidSync"], seen["validSync"]]


@pytest.mark.anyio
async def test_gosf_client_sends_valid_and_invalid_bodies(
    typed_server: Served, anyio_backend: str
) -> None:
    client = gosf.SocketIOClient()
    with anyio.fail_after(20):
        async with client.connect(typed_server.url):
            before = (await client.call("calls", {}))["body"]["calls"]
            bad = await client.call(
                "order.place", {"id": 9, "body": {"customerId": 1, "lines": []}}
            )
            good = await client.call(
                "order.place",
                {"id": 10, "body": {"customerId": 1, "lines": [{"sku": "XYZ-9", "qty": 5}]}},
            )
            after = (await client.call("calls", {}))["body"]["calls"]
    assert bad["text"] == "BAD_REQUEST" and bad["id"] == 9
    assert bad["body"]["errors"] == [
        {"path": "body.lines", "message": bad["body"]["errors"][0]["message"], "type": "too_short"}
    ]
    assert good == {
        "id": 10,
        "success": True,
        "body": {"order_id": "o-1", "items": 5, "sizes": ["small"]},
    }
    assert after[len(before) :] == ["order.place"]  # the invalid request ran no controller
