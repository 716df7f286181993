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

from gosf import SocketIOClient
from gosf._socketio.handover import HANDOVER_TIMEOUT
from tests import redis_fixtures
from tests.conftest import Served, start_server, stop_server
from tests.harness import Watch
from tests.node import run_scenario
from tests.proxy import round_robin
from tests.redis_fixtures import RedisServer
from tests.test_redis_streams import cuttable

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

redis_server = redis_fixtures.redis_server

APP = "tests.apps.recovery_cluster_app:asgi"
WAIT = 10.0
"""Bound on each single wait."""


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


# -- Streams mode: a worker cut off from Redis for a while ---------------------------------


@pytest.mark.parametrize("kind", ["hypercorn-asyncio", "hypercorn-trio"])
async def test_a_worker_cut_off_from_redis_loses_no_broadcast_in_streams_mode(
    redis_server: RedisServer, kind: str
) -> None:
    """The second worker reaches Redis through a pipe the test cuts while the
    first goes on broadcasting, then mends: in Streams mode its client gets
    every broadcast, in order, once (on pub/sub it would have lost those;
    tests/test_redis_streams.py shows both, broker to broker)."""
    got: list[int] = []
    arrived = Watch()

    def news(n: int) -> None:
        got.append(n)
        arrived.notify()

    workers: list[Served] = []
    async with cuttable(redis_server.port) as pipe:
        try:
            for url in (redis_server.url, pipe.url):
                with pytest.MonkeyPatch.context() as patch:
                    patch.setenv("GOSF_BROKER", url)
                    patch.setenv("GOSF_STREAMS", "1")
                    workers.append(await anyio.to_thread.run_sync(start_server, kind, APP))
            first, second = (f"http://{host_of(worker)}" for worker in workers)
            listener = SocketIOClient()
            listener.on("news", news)
            async with (
                listener.connect(second) as on_second,
                SocketIOClient().connect(first) as on_first,
            ):
                await on_second.call("join", "room", timeout=WAIT)
                await on_first.call("shout", "room", 0, timeout=WAIT)
                await arrived.until(lambda: 0 in got, WAIT)
                pipe.cut()
                for n in range(1, 11):
                    await on_first.call("shout", "room", n, timeout=WAIT)
                pipe.mend()
                await on_first.call("shout", "room", 11, timeout=WAIT)
                await arrived.until(lambda: 11 in got, 3 * WAIT)
            assert got == list(range(12))  # in order, once each
            assert all(worker.alive() for worker in workers)
        finally:
            for worker in workers:
                stop_server(worker.process)
