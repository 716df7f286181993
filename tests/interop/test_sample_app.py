"""The sample app (examples/sample_app), served the way its docstring says, against python-socketio.

``hypercorn examples.sample_app:app`` (asyncio and trio workers) and uvicorn
serve it in a child process; python-socketio's ``AsyncClient`` (asyncio
only) drives the three endpoints exactly as the GOSF sample page does, and
the npm socket.io-client (v4, and v2 as the sample page uses) checks GOSF's
double delivery: every response as the ack and as an event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest
import socketio

from tests.conftest import SERVERS, Served, serving
from tests.node import run_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

TIMEOUT = 10
FIXED_BODY = {
    "oneThing": "this is one thing",
    "anotherThing": {"moreDetail": "and another thing..."},
}
EVENTS = ("auth.register", "admin.register", "util.echo", "util.groupEcho")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


@pytest.fixture(scope="module", params=SERVERS)
def sample_server(request: pytest.FixtureRequest) -> Iterator[Served]:
    """examples.sample_app:app under hypercorn (asyncio, trio) and uvicorn, from their CLIs."""
    with serving(str(request.param), "examples.sample_app:app", cli=True) as server:
        yield server


class Client:
    """A python-socketio client that records every sample-app event it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[Any]] = {name: [] for name in EVENTS}
        self._changed = anyio.Event()
        for name in EVENTS:
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(data: Any) -> None:
            self.events[name].append(data)
            self._changed.set()
            self._changed = anyio.Event()

        return record

    async def wait_for(self, name: str, count: int = 1) -> list[Any]:
        """The events ``name`` received, once there are ``count`` of them."""
        with anyio.fail_after(TIMEOUT):
            while len(self.events[name]) < count:
                await self._changed.wait()
        return self.events[name]

    async def call(self, endpoint: str, payload: dict[str, Any]) -> Any:
        with anyio.fail_after(TIMEOUT):
            return await self.sio.call(endpoint, payload, timeout=TIMEOUT)


@asynccontextmanager
async def connected(
    server: Served, count: int = 1, transports: list[str] | None = None
) -> AsyncIterator[list[Client]]:
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(count):
            client = Client()
            with anyio.fail_after(TIMEOUT):
                await client.sio.connect(
                    server.url, transports=transports or ["websocket"], wait_timeout=5
                )
            stack.push_async_callback(client.sio.disconnect)
            clients.append(client)
        yield clients


async def test_auth_register_replies_and_joins_test_room(sample_server: Served) -> None:
    async with connected(sample_server) as [client]:
        # What scaffolding.html sends on connect; `data` is not a Message field.
        ack = await client.call("auth.register", {"id": 1, "data": {"version": 1}})
        events = await client.wait_for("auth.register")
    expected = {"id": 1, "success": True, "text": "client registered"}
    assert ack == expected
    assert events == [expected]
    # The admin.register broadcast went to room "admin" (written out before the
    # reply on the same connection); the caller is not in it.
    assert client.events["admin.register"] == []


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
async def test_util_echo_as_in_the_sample_page(
    sample_server: Served, transports: list[str]
) -> None:
    request = {
        "id": 3,
        "guid": "1111-1111-1111-1111-1111",
        "text": "hi",
        "body": {"description": "this is in scaffolding.html"},
    }
    async with connected(sample_server, transports=transports) as [client]:
        ack = await client.call("util.echo", request)
        events = await client.wait_for("util.echo")
        plain = await client.call("util.echo", {"id": 4, "uuid": "u-4", "text": "plain"})
        await client.wait_for("util.echo", 2)
    expected = {
        "id": 3,
        "guid": "1111-1111-1111-1111-1111",
        "success": True,
        "text": "hi - this is in scaffolding.html",
        "body": FIXED_BODY,
    }
    assert ack == expected
    assert events[0] == expected
    expected_plain = {"id": 4, "uuid": "u-4", "success": True, "text": "plain", "body": FIXED_BODY}
    assert plain == expected_plain
    assert events[1] == expected_plain


async def test_util_echo_rejects_a_non_string_description(sample_server: Served) -> None:
    async with connected(sample_server) as [client]:
        ack = await client.call("util.echo", {"id": 5, "text": "hi", "body": {"description": 7}})
        follow_up = await client.call("util.echo", {"id": 6, "text": "still here"})
    assert ack == {
        "id": 5,
        "success": False,
        "text": "BAD_REQUEST",
        "body": {"reason": "body.description: expected a string"},
    }
    assert follow_up["text"] == "still here"


async def test_util_group_echo_reaches_the_other_room_members(sample_server: Served) -> None:
    async with connected(sample_server, 3) as [sender, member, outsider]:
        for client in (sender, member):
            await client.call("auth.register", {"id": 1})
        request = {"id": 7, "guid": "g-7", "text": "hello", "body": {"description": "all"}}
        ack = await sender.call("util.groupEcho", request)
        (received,) = await member.wait_for("util.groupEcho")
        (reply_event,) = await sender.wait_for("util.groupEcho")
        # Had the outsider been sent the broadcast, it would have been written to
        # it before this reply (one ordered connection, broadcast done before the ack above).
        await outsider.call("util.echo", {"id": 8, "text": "ping"})
    bare = {"id": 7, "guid": "g-7", "success": True}
    assert ack == bare
    assert reply_event == bare  # the sender's only util.groupEcho: no broadcast copy
    assert received == {"success": True, "text": "hello - all", "body": FIXED_BODY}
    assert outsider.events["util.groupEcho"] == []


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
@pytest.mark.parametrize("version", ["v4", "v2"])
def test_npm_clients_see_gosf_double_delivery(
    sample_server: Served, version: str, transports: str
) -> None:
    seen = run_scenario("gosf_scenarios.cjs", version, sample_server.url, transports)
    fixed_body = {
        "oneThing": "this is one thing",
        "anotherThing": {"moreDetail": "and another thing..."},
    }
    echo = {
        "id": 3,
        "guid": "1111-1111-1111-1111-1111",
        "success": True,
        "text": "hi - this is in scaffolding.html",
        "body": fixed_body,
    }
    assert seen["register"] == {"id": 1, "success": True, "text": "client registered"}
    assert seen["events"]["auth.register"] == [seen["register"]]
    assert seen["echo"] == echo
    assert seen["notFound"] == {"success": False, "text": "NOT_FOUND"}
    assert seen["badRequest"]["text"] == "BAD_REQUEST"
    # every response came as an event too, the un-acked request's included, in order
    assert seen["events"]["util.echo"][0] == echo
    assert seen["events"]["util.echo"][1] == {
        "id": 4,
        "success": True,
        "text": "no ack",
        "body": fixed_body,
    }
    assert seen["events"]["util.echo"][2] == seen["badRequest"]
