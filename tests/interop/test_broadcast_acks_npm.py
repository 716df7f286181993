"""npm socket.io-client v4 sockets answer a gosf broadcast with acks (issue 16.1).

The server is a ``SocketIOServer`` served by hypercorn in the test's own event
loop (asyncio or trio); the clients are ``tests/js/broadcast_acks.cjs``, run
in a worker thread beside it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
import pytest

from gosf import SocketIOServer
from tests.harness import serve_app
from tests.node import run_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


def voting_server() -> SocketIOServer:
    server = SocketIOServer()

    @server.on("vote-join")
    async def vote_join(socket: Any) -> str:
        socket.join("voters")
        return str(socket.sid)

    @server.on("collect")
    async def collect(socket: Any, seconds: float) -> dict[str, Any]:
        result = await server.emit_with_ack("poll", "tea?", to="voters", timeout=seconds)
        await server.emit("collected", to="voters")
        return {
            "answers": dict(result.answers),
            "timed_out": sorted(result.timed_out),
            "disconnected": sorted(result.disconnected),
        }

    return server


async def test_npm_clients_answer_a_broadcast_with_acks(anyio_backend: str) -> None:
    async with serve_app(voting_server()) as host:
        scenario = partial(run_scenario, "broadcast_acks.cjs", f"http://{host}")
        seen = await anyio.to_thread.run_sync(scenario)
    sids = seen["sids"]
    result = seen["result"]
    assert result["answers"] == {sids[name]: f"{name} says yes to tea?" for name in ("a", "b", "c")}
    # "late" answered after the timeout, "quitter" disconnected mid-collection
    assert result["timed_out"] == sorted([sids["late"], sids["quitter"]])
    assert result["disconnected"] == [sids["quitter"]]
    assert seen["late"] is True
    # A second collection: the late answer of the first changed nothing; "late"
    # (whose handler no longer answers) times out again, "quitter" is gone.
    after = seen["after"]
    assert after["answers"] == result["answers"]
    assert after["timed_out"] == [sids["late"]]
