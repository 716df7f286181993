"""Connection state recovery across two gosf workers on a real Redis, without
sticky sessions (issue 15, item 3), with the stock npm socket.io-client v4.

The workers (``tests/apps/recovery_cluster_app.py``) run under hypercorn,
asyncio or trio, beside a redis-server the tests start
(``tests/redis_fixtures.py``). ``tests/js/recovery_cluster.cjs`` connects
through a round-robin balancer (``tests/proxy.py``) so that the client's
reconnection lands on the other worker, and reports what it saw: the
assertions are here.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import anyio
import pytest

from gosf._socketio.handover import HANDOVER_TIMEOUT
from tests import redis_fixtures
from tests.conftest import Served, start_server, stop_server
from tests.node import run_scenario
from tests.proxy import round_robin
from tests.redis_fixtures import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

redis_server = redis_fixtures.redis_server

APP = "tests.apps.recovery_cluster_app:asgi"


@pytest.fixture(
    scope="module",
    params=[("hypercorn-asyncio",) * 2, ("hypercorn-trio",) * 2],
    ids=["asyncio-workers", "trio-workers"],
)
def workers(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[list[Served]]:
    started: list[Served] = []
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("GOSF_BROKER", redis_server.url)  # start_server passes os.environ on
            for kind in request.param:
                started.append(start_server(kind, APP))
        yield started
        assert all(worker.alive() for worker in started), "a worker died during the tests"
    finally:
        for worker in started:
            stop_server(worker.process)


def host_of(served: Served) -> str:
    return f"127.0.0.1:{served.port}"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the balancer runs beside node
async def test_npm_client_recovers_on_the_other_worker(workers: list[Served]) -> None:
    first, second = (host_of(worker) for worker in workers)
    async with round_robin([first, second]) as balancer:
        scenario = partial(
            run_scenario,
            "recovery_cluster.cjs",
            f"http://{balancer.host}",
            f"http://{first}",
            f"http://{second}",
        )
        seen: dict[str, Any] = await anyio.to_thread.run_sync(scenario)
    assert seen["movedWorker"] is True  # the reconnection landed on the other worker
    assert seen["recovered"] is True
    assert seen["sameId"] is True
    numbers = [item["n"] for item in seen["news"]]
    # Each exactly once, each worker's in the order it sent them, with its offset.
    assert sorted(numbers) == [0, 1, 2, 3, 4, 5, 6, 7], numbers
    assert [n for n in numbers if n in (0, 1, 2, 3, 7)] == [0, 1, 2, 3, 7]
    assert [n for n in numbers if n in (4, 5, 6)] == [4, 5, 6]
    assert {item["offset"] for item in seen["news"]} == {"string"}
    assert seen["recall"] == {"value": "kept", "recovered": True, "rooms": ["room"]}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_redis_hanging_mid_restore_gives_a_fresh_session_in_time(
    workers: list[Served], redis_server: RedisServer
) -> None:
    """Redis frozen (it accepts nothing and answers nothing): the worker the
    client comes back to cannot fetch its session, and gives it a fresh one
    within the handover's bound rather than hanging."""
    first, second = (host_of(worker) for worker in workers)
    redis_server.pause()
    try:
        async with round_robin([first, second]) as balancer:
            scenario = partial(
                run_scenario,
                "recovery_cluster.cjs",
                f"http://{balancer.host}",
                f"http://{first}",
                f"http://{second}",
                "hang",
            )
            seen: dict[str, Any] = await anyio.to_thread.run_sync(scenario)
    finally:
        redis_server.resume()
    assert seen["movedWorker"] is True
    assert seen["recovered"] is False
    assert seen["sameId"] is False
    assert seen["recall"] == {"value": None, "recovered": False, "rooms": []}
    # The reconnection delay, then at most the handover's bound and some slack.
    assert seen["seconds"] < HANDOVER_TIMEOUT + 2, seen
    assert all(worker.alive() for worker in workers)
