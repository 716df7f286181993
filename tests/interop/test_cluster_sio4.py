"""npm socket.io-client v4 against two gosf workers on a real redis-server:
volatile broadcasts, dynamic namespaces, binary data in broadcasts and in
broadcasts with acks, and a GOSF app in another namespace, across processes
(issue 16).

The workers are ``tests/apps/cluster_sio4_app.py`` under hypercorn's asyncio
and trio workers (both asyncio, both trio, one of each), joined by the
module's redis-server (``tests/cluster_workers.py``), with the JSON parser and
then with msgpack (``GOSF_PARSER``; the npm clients then use
socket.io-msgpack-parser). ``tests/js/cluster_sio4.cjs`` drives the npm
clients, one run per scenario, and reports what they saw; the assertions are
here. In each scenario, ``A`` is the first worker and ``B`` the second.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import redis_fixtures
from tests.cluster_workers import KIND_IDS, KINDS, Cluster, start_cluster, stop_cluster
from tests.node import run_scenario
from tests.redis_fixtures import RedisServer

pytestmark = pytest.mark.interop

redis_server = redis_fixtures.redis_server

APP = "tests.apps.cluster_sio4_app:app"

_tags = itertools.count()


@dataclass
class Workers:
    cluster: Cluster
    parser: str


def workers(kinds: tuple[str, str], redis: RedisServer, parser: str) -> Iterator[Workers]:
    running = start_cluster(kinds, redis.url, APP, {"GOSF_PARSER": parser})
    try:
        yield Workers(running, parser)
        assert running.alive(), "a worker died during the tests"
    finally:
        stop_cluster(running)


PARSERS = ["json", "msgpack"]


@pytest.fixture(
    scope="module",
    params=[(kinds, parser) for parser in PARSERS for kinds in KINDS],
    ids=[f"{parser}-{name}" for parser in PARSERS for name in KIND_IDS],
)
def cluster(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Workers]:
    kinds, parser = request.param
    yield from workers(kinds, redis_server, parser)


def scenario(workers: Workers, name: str) -> dict[str, Any]:
    tag = f"{name}-{next(_tags)}"
    first, second = workers.cluster.first, workers.cluster.second
    seen = run_scenario("cluster_sio4.cjs", name, first.url, second.url, tag, workers.parser)
    assert workers.cluster.alive()
    return seen


def test_a_volatile_broadcast_is_dropped_only_where_it_cannot_go(cluster: Workers) -> None:
    seen = scenario(cluster, "volatile")
    assert seen["pausedState"] == "paused"
    assert seen["queuedOnA"] == 1  # A's one member of the room could take it
    assert seen["ticks"] == {"a": ["tick from A"], "b": ["tick from A"], "paused": []}
    # B left it out for its member with no GET pending, and counted it; A dropped nothing.
    assert seen["dropped"] == {"a": 0, "b": 1}


def test_dynamic_namespaces_across_workers(cluster: Workers) -> None:
    seen = scenario(cluster, "dynamic")
    assert seen["where"] == ["/tenant-7", "/tenant-7", "/tenant-8"]
    # server.emit(namespace=...) reaches a child wherever it has sockets, even
    # one this worker does not have (A has no /tenant-8).
    assert (seen["toSeven"], seen["toEight"]) == (1, 0)
    # The parent's emit goes to the children of the worker it runs in, each
    # carried to the other workers: A has /tenant-7 only, B both.
    assert (seen["parentA"], seen["parentB"]) == (1, 2)
    both = ["end A", "end B", "parent from A", "parent from B", "to seven from A"]
    assert seen["heard"]["a7"] == seen["heard"]["b7"] == both
    assert seen["heard"]["b8"] == ["end A", "end B", "parent from B", "to eight from A"]
    # emit_with_ack to a child A does not have: B's socket answers, through A.
    assert seen["asked"] == {"answers": {seen["b8"]: "who? from b8"}, "timed_out": []}


def test_binary_broadcasts_and_acks_across_workers(cluster: Workers) -> None:
    """msgpack carries bytes inline; JSON as attachments, in the broadcast, the
    question and each answer forwarded from B."""
    seen = scenario(cluster, "binary")
    blob = base64.b64encode(bytes(range(256))).decode()
    end = ["end", base64.b64encode(b"end").decode()]
    assert seen["toRoom"] == 1
    assert seen["bin"]["a"] == seen["bin"]["b"] == [["to the room", blob], end]
    assert seen["bin"]["bOut"] == [end]
    sids = seen["sids"]
    answers = {sid: base64.b64decode(answer) for sid, answer in seen["answers"].items()}
    assert answers == {sids["a"]: b"\x01\x02a", sids["b"]: b"\x01\x02b"}
    assert seen["timedOut"] == []


def test_an_app_in_another_namespace_broadcasts_across_workers(cluster: Workers) -> None:
    seen = scenario(cluster, "app")
    tag = seen["heard"]["a"][0][0]["text"]
    assert seen["heard"]["a"] == seen["heard"]["b"] == [[{"success": True, "text": tag}]]
    assert seen["heard"]["root"] == []
    # The app's cluster helpers act in its namespace, not in "/": its rooms (the
    # root client's room is not one), its clients.
    assert seen["rooms"].get(seen["apiRoom"]) == 1
    assert not [room for room in seen["rooms"] if room.startswith("settle-")]
    assert (seen["pulled"], seen["pushed"], seen["kicked"]) == (True, True, True)
    assert seen["reason"] == "io server disconnect"
