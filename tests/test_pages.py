"""The root page and the health endpoint of a ``gosf.App``.

Opening the URL a server prints (``http://host:port<path>``) shows a page
saying gosf is running and where Socket.IO answers; ``<path>healthz`` tells a
load balancer whether the app serves. Served in memory through httpx's
``ASGITransport`` under both backends, and once through hypercorn on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pydantic
import pytest

import gosf
import gosf.testing
from tests.harness import serve_app, watch_attribute

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def http(app: Any, base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling ``app`` in memory (the app's lifespan is the test's)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


async def websocket_close_code(app: Any, path: str) -> int | None:
    """The code ``app`` closes a websocket request to ``path`` with, before accepting it."""
    sent: list[dict[str, Any]] = []
    connect = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        if connect:
            return connect.pop()
        await anyio.sleep_forever()  # the app answers the handshake first
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "subprotocols": [],
    }
    with anyio.fail_after(5):
        await app(scope, receive, send)
    assert len(sent) == 1 and sent[0]["type"] == "websocket.close", sent
    code: int | None = sent[0].get("code")
    return code


# -- the root page ------------------------------------------------------------------------


async def test_the_root_page_says_gosf_runs_and_where_socketio_answers(
    anyio_backend: str,
) -> None:
    app = gosf.App()
    async with app.run(), http(app) as client:
        page = await client.get("/")
        head = await client.head("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>gosf is running</h1>" in page.text
    assert "Socket.IO answers at <code>/socket.io/</code>" in page.text
    assert "Health: <code>/healthz</code>" in page.text
    assert page.text.count("<a ") == 1  # the docs page, the one part with a page of its own
    assert '<a href="/asyncapi">API (AsyncAPI)</a>' in page.text
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(page.content))
    assert head.headers["content-type"] == page.headers["content-type"]


async def test_the_root_page_follows_the_mount_path(anyio_backend: str) -> None:
    app = gosf.App({"path": "/chat/"})
    async with app.run(), http(app) as client:
        with_slash = await client.get("/chat/")
        without = await client.get("/chat")
        health = await client.get("/chat/healthz")
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/healthz")).status_code == 404
    assert with_slash.status_code == without.status_code == 200
    assert "Socket.IO answers at <code>/chat/socket.io/</code>" in with_slash.text
    assert "Health: <code>/chat/healthz</code>" in with_slash.text
    assert health.json() == {"status": "ok"}


async def test_the_root_page_shows_the_links_it_is_given(anyio_backend: str) -> None:
    from gosf._application.pages import Link

    app = gosf.App()
    app.pages.links.append(Link("Docs & API", "/docs?x=<1>"))
    async with app.run(), http(app) as client:
        page = await client.get("/")
    assert '<li><a href="/docs?x=&lt;1&gt;">Docs &amp; API</a></li>' in page.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
async def test_other_methods_get_405(anyio_backend: str, method: str) -> None:
    app = gosf.App()
    async with app.run(), http(app) as client:
        for path in ("/", "/healthz"):
            answer = await client.request(method, path, content=b"x" * 1000)
            assert answer.status_code == 405, (path, answer)
            assert answer.headers["allow"] == "GET, HEAD"
        # The connection is still usable: the refused body was read.
        assert (await client.get("/healthz")).status_code == 200


async def test_other_paths_are_404_and_websockets_off_socketio_are_closed(
    anyio_backend: str,
) -> None:
    app = gosf.App()
    async with app.run(), http(app) as client:
        assert (await client.get("/index.html")).status_code == 404
        assert (await client.get("/healthz/more")).status_code == 404
        assert (await client.head("/nope")).status_code == 404
        assert await websocket_close_code(app, "/") == 1008
        assert await websocket_close_code(app, "/healthz") == 1008


async def test_the_root_page_and_the_health_endpoint_can_be_turned_off_or_moved(
    anyio_backend: str,
) -> None:
    app = gosf.App({"root_page": False, "health_endpoint": None})
    async with app.run(), http(app) as client:
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/healthz")).status_code == 404
    moved = gosf.App({"health_endpoint": "/status/live"})  # under path, with or without "/"
    async with moved.run(), http(moved) as client:
        assert (await client.get("/status/live")).json() == {"status": "ok"}
        assert (await client.get("/healthz")).status_code == 404
        assert "Health: <code>/status/live</code>" in (await client.get("/")).text


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "health_endpoint needs a name (None turns it off)"),
        ("/", "health_endpoint needs a name (None turns it off)"),
        ("socket.io", "health_endpoint cannot be on the Socket.IO path"),
        ("/socket.io/x", "health_endpoint cannot be on the Socket.IO path"),
    ],
)
def test_a_health_endpoint_with_no_name_or_on_socketio_is_refused(value: str, reason: str) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        gosf.App({"health_endpoint": value})
    (error,) = refused.value.errors()
    assert error["loc"] == ("health_endpoint",)
    assert error["msg"] == "Value error, " + reason


async def test_the_host_check_comes_first_on_the_pages_too(anyio_backend: str) -> None:
    app = gosf.App({"rejectInvalidHostnames": True, "valid_hostnames": ["good.example"]})
    async with app.run(), http(app, "http://good.example") as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/", headers={"host": "evil.example"})).status_code == 421
        assert (await client.get("/healthz", headers={"host": "evil.example"})).status_code == 421


# -- other_app --------------------------------------------------------------------------


async def test_other_app_gets_every_path_but_the_health_endpoint(anyio_backend: str) -> None:
    seen: list[str] = []

    async def site(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        body = f"site {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    app = gosf.App(other_app=site)
    async with app.run(), http(app) as client:
        assert (await client.get("/")).text == "site /"  # the user's index, not gosf's page
        assert (await client.post("/form")).text == "site /form"
        assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert seen == ["/", "/form"]
    no_health = gosf.App({"health_endpoint": None}, other_app=site)
    async with no_health.run(), http(no_health) as client:
        assert (await client.get("/healthz")).text == "site /healthz"


# -- health -----------------------------------------------------------------------------


async def test_health_is_ok_while_serving_and_503_while_draining_or_stopped(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = gosf.App({"shutdown_grace": 10})
    draining = watch_attribute(monkeypatch, gosf.App, "_draining")
    entered, release = anyio.Event(), anyio.Event()

    @app.listen("hold")
    async def hold(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        entered.set()
        await release.wait()
        return gosf.Message.success("done")

    async with http(app) as health:
        before = await health.get("/healthz")
        async with gosf.testing.serve(app) as server, server.client() as client:
            serving = await health.get("/healthz")
            async with anyio.create_task_group() as tg:
                replies: list[Any] = []

                async def call() -> None:
                    replies.append(await client.request("hold"))

                tg.start_soon(call)
                with anyio.fail_after(5):
                    await entered.wait()
                tg.start_soon(app.drain)
                await draining.until(lambda: app.status == "draining")
                # A request is in flight: the drain waits for it, and the load
                # balancer is told to send no more.
                during = await health.get("/healthz")
                head = await health.head("/healthz")
                release.set()
            after_drain = await health.get("/healthz")
        stopped = await health.get("/healthz")
    assert replies == [gosf.Message.success("done")]
    assert (before.status_code, before.json()) == (503, {"status": "stopped"})
    assert (serving.status_code, serving.json()) == (200, {"status": "ok"})
    assert (during.status_code, during.json()) == (503, {"status": "draining"})
    assert (head.status_code, head.content) == (503, b"")
    assert (after_drain.status_code, after_drain.json()) == (503, {"status": "draining"})
    assert (stopped.status_code, stopped.json()) == (503, {"status": "stopped"})
    assert during.headers["content-type"] == "application/json"
    assert during.headers["cache-control"] == "no-store"


async def test_health_is_ok_again_when_the_app_runs_again(anyio_backend: str) -> None:
    app = gosf.App()
    async with http(app) as client:
        async with app.run():
            await app.drain()
            assert (await client.get("/healthz")).json() == {"status": "draining"}
        async with app.run():
            assert (await client.get("/healthz")).json() == {"status": "ok"}


# -- on the network ---------------------------------------------------------------------


async def test_root_page_and_health_through_hypercorn(anyio_backend: str) -> None:
    app = gosf.App()
    async with serve_app(app) as host, httpx.AsyncClient(base_url=f"http://{host}") as client:
        page = await client.get("/")
        head = await client.head("/")
        health = await client.get("/healthz")
        refused = await client.post("/healthz", content=b"{}")
    assert page.status_code == 200 and "gosf is running" in page.text
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(page.content))
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert refused.status_code == 405
