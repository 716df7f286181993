"""The Admin UI's protocol across two gosf worker processes joined by a real
redis-server: the UI connected to one worker sees the clients and the
``server_stats`` of both, and its actions reach a client of the other.

The workers are ``tests/apps/admin_app.py``'s ``app`` (its ``admin`` config
key) under hypercorn, asyncio and trio; clients are gosf's own
``SocketIOClient`` playing the UI and a user.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

import gosf
from tests import redis_fixtures
from tests.admin_events import UI_EVENTS, WAIT, Seen
from tests.cluster_workers import two_workers
from tests.conftest import Served
from tests.redis_fixtures import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

redis_server = redis_fixtures.redis_server

APP = "tests.apps.admin_app:app"


@pytest.fixture(scope="module")
def workers(redis_server: RedisServer) -> Iterator[tuple[Served, Served]]:
    with two_workers(redis_server.url, APP) as running:
        yield running


async def test_the_ui_on_one_worker_acts_on_the_other(
    workers: tuple[Served, Served], anyio_backend: str
) -> None:
    first, second = workers
    ui, seen = gosf.SocketIOClient(), Seen()
    for name in UI_EVENTS:
        ui.on(name, seen.handler(name), namespace="/admin")
    login = {"username": "admin", "password": "secret"}
    async with ui.connect(first.url, namespaces="/admin", auth=login):
        # Both workers report, each under its own id.
        (stats,) = await seen.until("server_stats")
        (other,) = await seen.until("server_stats", lambda s: s["serverId"] != stats["serverId"])
        assert stats["pid"] != other["pid"]

        far = gosf.SocketIOClient()
        async with far.connect(second.url):
            sid = far.sid()
            (info, _) = await seen.until("socket_connected", lambda s, t: s["id"] == sid)
            assert info["nsp"] == "/" and info["rooms"] == [sid]

            await ui.emit("join", "/", "blue", sid, namespace="/admin")
            await seen.until("room_joined", lambda nsp, room, id_, t: (room, id_) == ("blue", sid))
            await ui.emit("_disconnect", "/", False, sid, namespace="/admin")
            with anyio.fail_after(WAIT):
                await far.wait_disconnected()
            await seen.until("socket_disconnected", lambda nsp, id_, reason, t: id_ == sid)
            assert far.disconnect_reason == "io server disconnect"
