"""gosf.admin: the Admin UI's server on /admin, driven by gosf's own client in
memory (tests/interop/test_admin_npm.py drives it with npm socket.io-client,
tests/e2e/test_admin_ui.py with the real UI): auth that must be spelled out,
sessions, read-only and production modes, the bounded queue, a cluster of
two processes, and the UI's files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pydantic
import pytest

import gosf.admin
import gosf.testing
from gosf import SocketIOClient, SocketIOServer
from gosf._client.asgi import asgi_connector
from gosf.admin._server import QUEUE_SIZE
from gosf.admin._stats import IN, OUT, EventCounts
from gosf.admin._ui import AdminUI
from gosf.brokers import MemoryBus
from tests.admin_events import UI_EVENTS, WAIT, Seen

pytestmark = pytest.mark.anyio

HASH = gosf.admin.hash_password("secret", rounds=4)


@asynccontextmanager
async def admin_client(
    server: SocketIOServer, auth: dict[str, Any] | None = None
) -> AsyncIterator[tuple[SocketIOClient, Seen]]:
    client, seen = SocketIOClient(), Seen()
    for name in UI_EVENTS:
        client.on(name, seen.handler(name), namespace="/admin")
    async with client.connect(
        "http://testserver", namespaces="/admin", auth=auth, connector=asgi_connector(server)
    ):
        yield client, seen


@asynccontextmanager
async def user(server: SocketIOServer) -> AsyncIterator[SocketIOClient]:
    client = SocketIOClient()
    async with client.connect("http://testserver", connector=asgi_connector(server)):
        yield client


def app_server(**admin: Any) -> SocketIOServer:
    server = SocketIOServer(**admin.pop("server", {}))

    @server.on("join")
    async def join(socket: gosf.Socket, room: str) -> str:
        socket.join(room)
        return socket.sid

    admin.setdefault("auth", False)
    gosf.admin.instrument(server, **admin)
    return server


def test_a_password_in_plain_text_is_refused() -> None:
    with pytest.raises(ValueError, match="bcrypt hash"):
        gosf.admin.BasicAuth("admin", "secret")
    auth = gosf.admin.BasicAuth("admin", HASH)
    assert auth.check("admin", "secret")
    assert not auth.check("admin", "wrong")
    assert not auth.check("root", "secret")
    assert not auth.check("admin", None)


def test_letting_anyone_in_must_be_spelled_out() -> None:
    with pytest.raises(TypeError, match="False"):
        gosf.admin.Admin(SocketIOServer(), auth=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gosf.admin.instrument(SocketIOServer())  # type: ignore[call-arg]


def test_sessions_are_bounded_and_expire() -> None:
    now = [0.0]
    sessions = gosf.admin.Sessions(limit=2, ttl=10.0, clock=lambda: now[0])
    first, second = sessions.issue(), sessions.issue()
    third = sessions.issue()  # the oldest goes
    assert (sessions.valid(first), sessions.valid(second), sessions.valid(third)) == (
        False,
        True,
        True,
    )
    assert not sessions.valid("not issued") and not sessions.valid(None)
    now[0] = 10.0
    assert not sessions.valid(third)
    sessions.issue()
    assert len(sessions) == 1


async def test_login_session_and_refusal(anyio_backend: str) -> None:
    server = app_server(auth=gosf.admin.BasicAuth("admin", HASH))
    async with server:
        with pytest.raises(gosf.ConnectionRefused, match="invalid credentials"):
            async with admin_client(server, {"username": "admin", "password": "nope"}):
                pass
        async with admin_client(server, {"username": "admin", "password": "secret"}) as (_, seen):
            (session_id,) = await seen.until("session")
            await seen.until("all_sockets")
        async with admin_client(server, {"sessionId": session_id}) as (_, again):
            await again.until("all_sockets")
            assert again.events["session"] == []


async def test_read_only_offers_no_action(anyio_backend: str) -> None:
    server = app_server(read_only=True)
    async with server, admin_client(server) as (_, seen):
        ((config,),) = [await seen.until("config")]
        assert config == {"supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"]}
        assert server.namespace("/admin").handlers == {}


async def test_production_mode_sends_only_stats(anyio_backend: str) -> None:
    server = app_server(mode="production")
    async with server, admin_client(server) as (_, seen), user(server) as client:
        await client.call("join", "red", timeout=WAIT)
        (stats,) = await seen.until("server_stats", lambda s: s["clientsCount"] == 2)
        assert {"name": "/", "socketsCount": 1} in stats["namespaces"]
        assert seen.events["socket_connected"] == seen.events["room_joined"] == []
        assert seen.events["all_sockets"] == []


async def test_a_full_queue_drops_and_counts(anyio_backend: str) -> None:
    server = SocketIOServer()
    admin = gosf.admin.instrument(server, auth=False)
    # Not running: nothing takes the jobs, the queue fills up.
    for _ in range(QUEUE_SIZE + 3):
        admin._to_ui("room_joined", "/", "red", "sid", "now")
    assert admin.dropped == 3


async def test_a_cluster_of_two(anyio_backend: str) -> None:
    """The UI on the first process sees a client of the second, and disconnects it."""
    bus = MemoryBus()
    first = app_server(server={"broker": bus.broker()}, server_id="first")
    second = app_server(server={"broker": bus.broker()}, server_id="second")
    async with first, second, admin_client(first) as (admin, seen), AsyncExitStack() as stack:
        far = await stack.enter_async_context(user(second))
        sid = await far.call("join", "red", timeout=WAIT)
        (info, _) = await seen.until("socket_connected", lambda s, t: s["id"] == sid)
        assert info["nsp"] == "/"
        await seen.until("room_joined", lambda nsp, room, id_, t: (room, id_) == ("red", sid))
        await seen.until("server_stats", lambda s: s["serverId"] == "second")
        await admin.emit("_disconnect", "/", False, sid, namespace="/admin")
        await seen.until("socket_disconnected", lambda nsp, id_, reason, t: id_ == sid)
        with anyio.fail_after(WAIT):
            await far.wait_disconnected()


async def call_ui(app: Any, method: str, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    await app(scope, receive, send)
    return (
        sent[0]["status"],
        dict(sent[0]["headers"]),
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


async def test_the_ui_is_served_offline(anyio_backend: str) -> None:
    ui = AdminUI("/admin-ui")
    status, headers, _ = await call_ui(ui, "GET", "/admin-ui")
    assert (status, headers[b"location"]) == (308, b"/admin-ui/")
    status, headers, page = await call_ui(ui, "GET", "/admin-ui/")
    assert (status, headers[b"content-type"]) == (200, b"text/html; charset=utf-8")
    assert b"Socket.IO Admin UI" in page
    assert b"://" not in page  # no CDN: every file is ours
    status, headers, font = await call_ui(
        ui, "GET", "/admin-ui/fonts/mdi/fonts/materialdesignicons-webfont.woff2"
    )
    assert (status, headers[b"content-type"], font[:4]) == (200, b"font/woff2", b"wOF2")
    assert (await call_ui(ui, "GET", "/admin-ui/../../__init__.py"))[0] == 404
    assert (await call_ui(ui, "GET", "/admin-ui/licenses/../../_ui.py"))[0] == 404
    assert (await call_ui(ui, "POST", "/admin-ui/"))[0] == 405
    assert (await call_ui(ui, "GET", "/elsewhere"))[0] == 404
    head = await call_ui(ui, "HEAD", "/admin-ui/")
    assert head[0] == 200 and head[2] == b"" and int(head[1][b"content-length"]) == len(page)


async def test_the_app_config_key(anyio_backend: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="auth: false"):
        gosf.App(admin={})
    with pytest.raises(ValueError, match="bcrypt hash"):
        gosf.App(admin={"username": "admin", "password_hash": "secret"})
    app = gosf.App(admin={"username": "admin", "password_hash": HASH, "read_only": True})
    async with gosf.testing.serve(app):
        async with admin_client(app.server, {"username": "admin", "password": "secret"}) as (
            _,
            seen,
        ):
            ((config,),) = [await seen.until("config")]
            assert "EMIT" not in config["supportedFeatures"]
    status, _, page = await call_ui(app, "GET", "/admin-ui/")
    assert status == 200 and b"Socket.IO Admin UI" in page
    assert (await call_ui(gosf.App(admin={"auth": False}, path="/x/"), "GET", "/x/admin-ui/"))[
        0
    ] == 200
    assert (await call_ui(gosf.App(), "GET", "/admin-ui/"))[0] == 404


def test_events_are_counted_per_second() -> None:
    now = [100.2]
    counts = EventCounts(clock=lambda: now[0])
    counts.traffic(IN, 1, 10)
    counts.traffic(OUT, 3, 30)
    counts.add("rawConnection")
    now[0] = 101.5
    counts.traffic(IN, 1, 5)
    counts.add("rawDisconnection", "transport close")
    taken = {(c["timestamp"], c["type"], c["subType"]): c["count"] for c in counts.take()}
    assert taken == {
        (100_000, "rawConnection", None): 1,
        (100_000, "packetsIn", None): 1,
        (100_000, "bytesIn", None): 10,
        (100_000, "packetsOut", None): 3,
        (100_000, "bytesOut", None): 30,
        (101_000, "rawDisconnection", "transport close"): 1,
        (101_000, "packetsIn", None): 1,
        (101_000, "bytesIn", None): 5,
    }
    assert counts.take() == []
