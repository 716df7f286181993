"""Rooms of a SocketIOServer, in memory: a socket's own room (its sid) is kept
as a flag rather than a set, and must behave as any other room."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest

import gosf
from gosf.testing import asgi_connector

pytestmark = pytest.mark.anyio


def make_server() -> gosf.SocketIOServer:
    server = gosf.SocketIOServer()

    @server.on("join")
    async def join(socket: gosf.Socket, room: str) -> list[str]:
        socket.join(room)
        return sorted(socket.rooms)

    @server.on("leave")
    async def leave(socket: gosf.Socket, room: str) -> list[str]:
        socket.leave(room)
        return sorted(socket.rooms)

    @server.on("rooms")
    async def rooms(socket: gosf.Socket) -> list[str]:
        return sorted(socket.rooms)

    @server.on("to")
    async def to(socket: gosf.Socket, rooms: str | list[str]) -> int:
        return await server.emit("note", socket.sid, to=rooms)

    return server


class Peer:
    def __init__(self, sio: gosf.SocketIOClient) -> None:
        self.sio = sio
        self.notes: list[str] = []
        sio.on("note", self.notes.append)

    @property
    def sid(self) -> str:
        sid = self.sio.sid()
        assert sid is not None
        return sid

    async def call(self, event: str, *args: Any) -> Any:
        return await self.sio.call(event, *args, timeout=5)


@asynccontextmanager
async def peers(server: gosf.SocketIOServer, count: int) -> AsyncIterator[list[Peer]]:
    connector = asgi_connector(server)
    async with server:
        clients = [gosf.SocketIOClient() for _ in range(count)]
        async with AsyncExitStack() as stack:
            for sio in clients:
                await stack.enter_async_context(
                    sio.connect("http://testserver", path="/socket.io", connector=connector)
                )
            yield [Peer(sio) for sio in clients]


async def settle(peer: Peer) -> None:
    """Events emitted before an ack to ``peer`` arrive before it: a round trip
    after an emit makes sure what was sent to ``peer`` is there."""
    await peer.call("rooms")


async def test_a_socket_is_in_its_own_room_and_can_leave_and_rejoin_it(
    anyio_backend: str,
) -> None:
    with anyio.fail_after(10):
        async with peers(make_server(), 2) as (a, b):
            assert await a.call("rooms") == [a.sid]
            assert await b.call("to", a.sid) == 1
            await settle(a)
            assert a.notes == [b.sid] and b.notes == []

            assert await a.call("join", "red") == sorted([a.sid, "red"])
            assert await a.call("leave", a.sid) == ["red"]
            assert await b.call("to", a.sid) == 0
            assert await b.call("to", "red") == 1
            await settle(a)
            assert a.notes == [b.sid, b.sid]

            assert await a.call("join", a.sid) == sorted([a.sid, "red"])
            assert await b.call("to", [a.sid, "red"]) == 1  # once, though in both
            await settle(a)
            assert a.notes == [b.sid] * 3


async def test_a_room_named_by_another_sid_holds_its_owner_and_who_joined_it(
    anyio_backend: str,
) -> None:
    with anyio.fail_after(10):
        async with peers(make_server(), 3) as (a, b, c):
            assert await b.call("join", a.sid) == sorted([a.sid, b.sid])
            assert await c.call("to", a.sid) == 2
            await settle(a)
            await settle(b)
            assert a.notes == [c.sid] and b.notes == [c.sid]
            # a leaving its own room leaves b in the room named by a's sid
            await a.call("leave", a.sid)
            assert await c.call("to", a.sid) == 1
            await settle(b)
            assert b.notes == [c.sid, c.sid] and a.notes == [c.sid]


async def test_rooms_are_left_on_disconnect(anyio_backend: str) -> None:
    server = make_server()
    seen: list[frozenset[str]] = []
    done = anyio.Event()

    @server.on_disconnect
    async def gone(socket: gosf.Socket, reason: str) -> None:
        seen.append(socket.rooms)  # still the rooms it was in
        done.set()

    with anyio.fail_after(10):
        async with peers(server, 1) as (a,):
            sid = a.sid
            await a.call("join", "red")
            await a.sio.disconnect()
            await done.wait()
        assert seen == [frozenset({sid, "red"})]
        namespace = server.namespaces["/"]
        assert namespace.rooms == {} and namespace.members(sid) == []


async def test_a_refused_socket_leaves_the_rooms_its_connect_handler_joined(
    anyio_backend: str,
) -> None:
    server = make_server()
    left: list[str] = []

    @server.on_connect
    async def join_then_refuse(socket: gosf.Socket, auth: dict[str, Any]) -> None:
        socket.join("red")
        socket.join(socket.sid)
        if auth.get("refuse"):
            raise gosf.ConnectionRefused("no")

    class Leaves(gosf.Observer):
        def room_left(self, socket: gosf.Socket, room: str) -> None:
            left.append(room)

    server.observe(Leaves())
    with anyio.fail_after(10):
        async with peers(server, 1) as (a,):
            assert await a.call("rooms") == sorted([a.sid, "red"])
            with pytest.raises(gosf.ConnectionRefused):
                refused = gosf.SocketIOClient()
                async with refused.connect(
                    "http://testserver",
                    path="/socket.io",
                    connector=asgi_connector(server),
                    auth={"refuse": True},
                ):
                    pass
            # The refused socket is in no room (nor kept alive by one).
            assert server.namespaces["/"].rooms == {"red": set(server.namespace("/").members())}
            assert len(left) == 2 and "red" in left
            assert await server.cluster_rooms() == {"red": 1}
            assert await a.call("to", "red") == 1
