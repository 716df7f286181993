"""Dynamic namespaces on one server, in memory: a pattern's parent makes the
children clients ask for, shares its handlers with them, and forgets them
once empty (gosf._socketio.dynamic has the rules)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

import gosf
from gosf.brokers import MemoryBus
from gosf.testing import asgi_connector

pytestmark = pytest.mark.anyio


def tenant_server(**options: int | bool) -> tuple[gosf.SocketIOServer, gosf.ParentNamespace]:
    server = gosf.SocketIOServer()
    tenants = server.dynamic_namespace("/tenant-{id}", **options)  # type: ignore[arg-type]

    async def where(socket: gosf.Socket) -> str:
        return socket.namespace.name

    async def shout(socket: gosf.Socket, text: str) -> int:
        return await tenants.emit("heard", text)

    tenants.on("where", where)
    tenants.on("shout", shout)
    return server, tenants


@asynccontextmanager
async def client(server: gosf.SocketIOServer, namespace: str) -> AsyncIterator[gosf.SocketIOClient]:
    sio = gosf.SocketIOClient()
    async with sio.connect(
        "http://testserver",
        path="/socket.io",
        namespaces=namespace,
        connector=asgi_connector(server),
    ):
        yield sio


async def test_a_matching_name_gets_a_child_with_the_parents_handlers(
    anyio_backend: str,
) -> None:
    server, tenants = tenant_server()
    heard: dict[str, list[str]] = {"/tenant-1": [], "/tenant-2": []}
    with anyio.fail_after(10):
        async with server, client(server, "/tenant-1") as one, client(server, "/tenant-2") as two:
            assert await one.call("where", namespace="/tenant-1", timeout=5) == "/tenant-1"
            assert await two.call("where", namespace="/tenant-2", timeout=5) == "/tenant-2"
            assert set(tenants.children) == {"/tenant-1", "/tenant-2"}
            one.on("heard", heard["/tenant-1"].append, namespace="/tenant-1")
            two.on("heard", heard["/tenant-2"].append, namespace="/tenant-2")
            # A broadcast to the parent reaches every child.
            assert await one.call("shout", "hi", namespace="/tenant-1", timeout=5) == 2
            await one.call("where", namespace="/tenant-1", timeout=5)
            await two.call("where", namespace="/tenant-2", timeout=5)
            assert heard == {"/tenant-1": ["hi"], "/tenant-2": ["hi"]}

            # A handler registered later reaches the children that exist.
            async def late(socket: gosf.Socket) -> str:
                return "late"

            tenants.on("late", late)
            assert await two.call("late", namespace="/tenant-2", timeout=5) == "late"


@pytest.mark.parametrize("name", ["/tenant-", "/tenant-1/x", "/other", "/tenant-1x/"])
async def test_a_name_no_pattern_accepts_is_an_invalid_namespace(
    anyio_backend: str, name: str
) -> None:
    server, tenants = tenant_server()
    with anyio.fail_after(10):
        async with server:
            with pytest.raises(gosf.ConnectionRefused) as refused:
                async with client(server, name):
                    pass
            assert refused.value.message == "Invalid namespace"
            assert tenants.children == {} and name not in server.namespaces


async def test_children_are_forgotten_once_empty_and_refused_ones_at_once(
    anyio_backend: str,
) -> None:
    server, tenants = tenant_server()
    gone = anyio.Event()

    async def refuse_seven(socket: gosf.Socket, auth: dict[str, object]) -> None:
        if socket.namespace.name == "/tenant-7":
            raise gosf.ConnectionRefused("no")

    async def left(socket: gosf.Socket, reason: str) -> None:
        gone.set()

    tenants.on_connect(refuse_seven)
    tenants.on_disconnect(left)
    with anyio.fail_after(10):
        async with server:
            async with client(server, "/tenant-1") as one:
                await one.call("where", namespace="/tenant-1", timeout=5)
                assert "/tenant-1" in server.namespaces
            await gone.wait()
            assert tenants.children == {} and "/tenant-1" not in server.namespaces
            with pytest.raises(gosf.ConnectionRefused):
                async with client(server, "/tenant-7"):
                    pass
            assert tenants.children == {} and "/tenant-7" not in server.namespaces


async def test_max_children_bounds_the_children_alive_at_once(anyio_backend: str) -> None:
    server, tenants = tenant_server(max_children=1)
    with anyio.fail_after(10):
        async with server, client(server, "/tenant-1"):
            with pytest.raises(gosf.ConnectionRefused) as refused:
                async with client(server, "/tenant-2"):
                    pass
            assert refused.value.message == "Invalid namespace"
            assert list(tenants.children) == ["/tenant-1"]


async def test_a_regex_or_a_predicate_are_patterns_too(anyio_backend: str) -> None:
    server = gosf.SocketIOServer()
    by_regex = server.dynamic_namespace(re.compile(r"/room-\d+"))
    by_predicate = server.dynamic_namespace(lambda name: name.endswith("-ok"))

    async def where(socket: gosf.Socket) -> str:
        return socket.namespace.name

    by_regex.on("where", where)
    by_predicate.on("where", where)
    with anyio.fail_after(10):
        async with server, client(server, "/room-42") as a, client(server, "/x-ok") as b:
            assert await a.call("where", namespace="/room-42", timeout=5) == "/room-42"
            assert await b.call("where", namespace="/x-ok", timeout=5) == "/x-ok"
            with pytest.raises(gosf.ConnectionRefused):
                async with client(server, "/room-4x"):
                    pass


def test_a_template_starts_with_a_slash() -> None:
    with pytest.raises(ValueError):
        gosf.SocketIOServer().dynamic_namespace("tenant-{id}")


async def test_an_emit_to_a_child_name_reaches_the_processes_that_have_it(
    anyio_backend: str,
) -> None:
    bus = MemoryBus()
    here, there = gosf.SocketIOServer(broker=bus.broker()), gosf.SocketIOServer(broker=bus.broker())
    for server in (here, there):
        server.dynamic_namespace("/tenant-{id}")
    heard: list[str] = []
    arrived = anyio.Event()

    def hear(text: str) -> None:
        heard.append(text)
        arrived.set()

    with anyio.fail_after(10):
        async with here, there, client(there, "/tenant-1") as sio:
            sio.on("news", hear, namespace="/tenant-1")
            # No child "/tenant-1" here: the emit is still published.
            assert "/tenant-1" not in here.namespaces
            assert await here.emit("news", "hi", namespace="/tenant-1") == 0
            await arrived.wait()
            assert heard == ["hi"]
            assert await here.emit("news", "lost", namespace="/elsewhere") == 0


async def test_one_client_cannot_take_every_child(anyio_backend: str) -> None:
    server, tenants = tenant_server(max_children_per_client=2)
    sio = gosf.SocketIOClient()
    with anyio.fail_after(10):
        async with server:
            with pytest.raises(gosf.ConnectionRefused) as refused:
                async with sio.connect(
                    "http://testserver",
                    path="/socket.io",
                    namespaces=["/tenant-1", "/tenant-2", "/tenant-3"],
                    connector=asgi_connector(server),
                ):
                    pass
            assert refused.value.message == "Invalid namespace"
            assert "/tenant-3" not in tenants.children
            # Another client still gets a child of its own.
            async with client(server, "/tenant-4") as other:
                assert await other.call("where", namespace="/tenant-4", timeout=5) == "/tenant-4"


async def test_children_speak_the_servers_parser() -> None:
    """A child made on CONNECT encodes with the parser its server was made with
    (a JSON child on a msgpack server would send text the client cannot read)."""
    server = gosf.SocketIOServer(parser="msgpack")
    tenants = server.dynamic_namespace("/tenant-{id}")

    async def echo(socket: gosf.Socket, data: bytes) -> bytes:
        await socket.emit("echoed", data)
        return data

    tenants.on("echo", echo)
    sio = gosf.SocketIOClient(parser="msgpack")
    echoed: list[bytes] = []
    got = anyio.Event()

    @sio.on("echoed", namespace="/tenant-7")
    async def on_echoed(data: bytes) -> None:
        echoed.append(data)
        got.set()

    with anyio.fail_after(5):
        async with (
            server,
            sio.connect(
                "http://testserver", namespaces="/tenant-7", connector=asgi_connector(server)
            ),
        ):
            assert await sio.call("echo", b"\x00\xff", namespace="/tenant-7") == b"\x00\xff"
            await got.wait()
    assert echoed == [b"\x00\xff"]
