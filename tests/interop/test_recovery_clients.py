"""Connection state recovery with third-party clients (issue 15): the stock npm
socket.io-client v4, and python-socketio's client.

``tests/js/recovery.cjs`` drives the client against ``tests/apps/recovery_app.py``
under each ASGI server and transport, and reports what it saw: the
assertions are here. socket.io-client 4.6+ speaks recovery with no code of
its own: it sends back the ``pid`` of the CONNECT reply and the last offset
it received when it reconnects.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
import socketio

from tests.apps.recovery_app import LIMIT
from tests.conftest import SERVERS, Served, serving
from tests.node import run_scenario

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module", params=SERVERS)
def recovery_server(request: pytest.FixtureRequest) -> Iterator[Served]:
    with serving(str(request.param), "tests.apps.recovery_app:asgi") as server:
        yield server


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_npm_client_recovers_its_session(recovery_server: Served, transport: str) -> None:
    seen = run_scenario("recovery.cjs", recovery_server.url, transport, str(LIMIT))

    recovered = seen["recovered"]
    # The 5 broadcasts went out while the client was away, and it came back on its own.
    assert recovered["order"] == ["disconnect", "broadcasts sent", "connect"]
    assert recovered["recovered"] is True
    assert recovered["sameId"] is True
    # Each exactly once, in order, with its offset; then a new one, without joining again.
    assert [item["n"] for item in recovered["news"]] == [1, 2, 3, 4, 5, 6]
    assert {item["offset"] for item in recovered["news"]} == {"string"}
    # Rooms and state came back, and the connect handler did not run again.
    assert recovered["recall"] == {
        "value": "kept",
        "connects": 1,
        "recovered": True,
        "rooms": ["room"],
    }

    for scenario in ("deliberate", "expired"):
        fresh = seen[scenario]
        assert fresh["recovered"] is False, scenario
        assert fresh["sameId"] is False, scenario
        assert fresh["recall"] == {
            "value": None,
            "connects": 1,
            "recovered": False,
            "rooms": [],
        }, scenario


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # python-socketio needs asyncio
async def test_python_socketio_handlers_get_the_offset_as_a_last_argument(
    anyio_backend: str,
) -> None:
    # What docs/guide.md says: python-socketio's client does not speak
    # recovery, and passes the offset on to its handlers; acks are unchanged.
    with serving("hypercorn-asyncio", "tests.apps.recovery_app:asgi") as server:
        client = socketio.AsyncClient(reconnection=False)
        got: list[tuple[object, ...]] = []
        arrived = anyio.Event()

        async def news(*args: object) -> None:
            got.append(args)
            arrived.set()

        client.on("news", news)
        await client.connect(server.url, transports=["websocket"], wait_timeout=5)
        try:
            with anyio.fail_after(10):
                assert await client.call("join", "room", timeout=5) is None
                assert await client.call("recall", timeout=5) == {
                    "value": None,
                    "connects": 1,
                    "recovered": False,
                    "rooms": ["room"],
                }
                await client.call("shout", ("room", 1), timeout=5)
                await arrived.wait()
            ((n, offset),) = got
            assert n == 1 and isinstance(offset, str)
        finally:
            await client.disconnect()
