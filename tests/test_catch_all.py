"""A SocketIOServer's catch-all handler (``server.on_any``): it takes the events that
have no handler of their own, answers their acks itself, and is how gosf.App plugs
into the server. In memory, both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import gosf
from gosf.testing import asgi_connector

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def client_of(
    server: gosf.SocketIOServer, namespaces: tuple[str, ...] = ("/",)
) -> AsyncIterator[gosf.SocketIOClient]:
    sio = gosf.SocketIOClient()
    async with (
        server,
        sio.connect(
            "http://testserver",
            path="/socket.io",
            namespaces=list(namespaces),
            connector=asgi_connector(server),
        ),
    ):
        yield sio


def server_with_catch_all(
    caught: list[tuple[str, str, list[Any], int | None]],
) -> gosf.SocketIOServer:
    server = gosf.SocketIOServer()

    @server.on("own")
    async def own(socket: gosf.Socket, value: Any) -> Any:
        return ["own", value]

    @server.on_any
    async def catch_all(
        socket: gosf.Socket, event: str, args: list[Any], ack_id: int | None
    ) -> None:
        caught.append((socket.namespace.name, event, args, ack_id))
        if ack_id is not None:
            await socket.ack(ack_id, "caught", event, *args)

    return server


async def test_events_without_a_handler_reach_the_catch_all_with_their_acks(
    anyio_backend: str,
) -> None:
    caught: list[tuple[str, str, list[Any], int | None]] = []
    server = server_with_catch_all(caught)
    with anyio.fail_after(5):
        async with client_of(server) as sio:
            assert await sio.call("own", 1) == ["own", 1]  # its own handler: not caught
            assert caught == []
            assert await sio.call("other", 2, {"x": 3}) == ("caught", "other", 2, {"x": 3})
            await sio.emit("fire", "and forget")
            assert await sio.call("last") == ("caught", "last")  # after the emit: it was caught
    assert [(event, args) for _, event, args, _ in caught] == [
        ("other", [2, {"x": 3}]),
        ("fire", ["and forget"]),
        ("last", []),
    ]
    assert caught[0][3] is not None and caught[1][3] is None  # the ack id, when one was asked


async def test_a_catch_all_belongs_to_its_namespace(anyio_backend: str) -> None:
    caught: list[tuple[str, str, list[Any], int | None]] = []
    server = gosf.SocketIOServer()

    @server.on("sync")
    async def sync(socket: gosf.Socket) -> str:
        return "synced"

    @server.on("ping", namespace="/admin")
    async def ping(socket: gosf.Socket) -> str:
        return "pong"

    async def admin_catch_all(
        socket: gosf.Socket, event: str, args: list[Any], ack_id: int | None
    ) -> None:
        caught.append((socket.namespace.name, event, args, ack_id))
        if ack_id is not None:
            await socket.ack(ack_id, "admin")

    assert server.on_any(admin_catch_all, namespace="/admin") is admin_catch_all
    with anyio.fail_after(5):
        async with client_of(server, ("/", "/admin")) as sio:
            assert await sio.call("ping", namespace="/admin") == "pong"
            assert await sio.call("who", namespace="/admin") == "admin"
            # "/" has none: the event is dropped (read in order: done once "sync" answers)
            await sio.emit("who")
            assert await sio.call("sync") == "synced"
    assert [(ns, event) for ns, event, _, _ in caught] == [("/admin", "who")]


async def test_a_catch_all_that_raises_is_logged_and_the_client_served_on(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = gosf.SocketIOServer()

    @server.on("own")
    async def own(socket: gosf.Socket) -> str:
        return "fine"

    @server.on_any
    async def broken(socket: gosf.Socket, event: str, args: list[Any], ack_id: int | None) -> None:
        raise RuntimeError("broken catch-all")

    with anyio.fail_after(5):
        async with client_of(server) as sio:
            await sio.emit("anything")
            assert await sio.call("own") == "fine"
    assert any("broken catch-all" in (r.exc_text or "") for r in caplog.records)


def test_a_namespace_takes_one_async_catch_all() -> None:
    server = gosf.SocketIOServer()

    async def first(socket: gosf.Socket, event: str, args: list[Any], ack_id: int | None) -> None:
        pass

    def not_async(socket: gosf.Socket, event: str, args: list[Any], ack_id: int | None) -> None:
        pass

    with pytest.raises(TypeError, match="async"):
        server.on_any(not_async)  # type: ignore[arg-type]  # what the check is for
    server.on_any(first)
    with pytest.raises(ValueError, match="already has a catch-all"):
        server.on_any(first)
    server.on_any(first, namespace="/other")  # another namespace: its own


def test_the_app_plugs_in_through_the_catch_all() -> None:
    app = gosf.App()
    with pytest.raises(ValueError, match="already has a catch-all"):
        app.server.on_any(app._dispatch)
    assert not hasattr(app.server.namespace("/"), "dispatcher")
