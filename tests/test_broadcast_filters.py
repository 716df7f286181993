"""Broadcasts that leave rooms out (Node's ``except``) and volatile emits, on one
server in memory; tests/interop/test_sio4_npm.py has the npm client's view
and tests/interop/test_cluster.py the cluster's."""

from __future__ import annotations

import anyio
import pytest

import gosf
import gosf.testing
from tests.test_rooms import make_server, peers, settle

pytestmark = pytest.mark.anyio


def filtering_server() -> gosf.SocketIOServer:
    server = make_server()  # join, leave, rooms, to

    @server.on("except")
    async def except_(socket: gosf.Socket, to: str | None, left_out: list[str]) -> int:
        return await server.emit("note", socket.sid, to=to, skip_rooms=left_out)

    @server.on("burst")
    async def burst(socket: gosf.Socket) -> list[int]:
        # Nothing awaits between the first two: the first is still queued
        # when the second is emitted, so the volatile one finds the buffer
        # not empty (Node: the transport not writable) and is dropped.
        sent = [await server.emit("note", "queued", to=socket.sid)]
        sent.append(await server.emit("note", "volatile behind it", to=socket.sid, volatile=True))
        await socket.flush()
        sent.append(await server.emit("note", "volatile alone", to=socket.sid, volatile=True))
        await socket.emit("note", "volatile to one, behind it", volatile=True)
        await socket.flush()
        await socket.emit("note", "volatile to one, alone", volatile=True)
        return sent

    return server


async def test_skip_rooms_leave_out_every_member_of_them(anyio_backend: str) -> None:
    with anyio.fail_after(10):
        async with peers(filtering_server(), 3) as (a, b, c):
            await a.call("join", "red")
            await b.call("join", "red")
            await b.call("join", "muted")
            await c.call("join", "muted")
            # to("red").except("muted"): b is in both, left out.
            assert await c.call("except", "red", ["muted"]) == 1
            # everyone but "muted" and a's own room: nobody left.
            assert await c.call("except", None, ["muted", a.sid]) == 0
            assert await a.call("except", None, ["red"]) == 1  # c only
            for peer in (a, b, c):
                await settle(peer)
            assert a.notes == [c.sid] and b.notes == [] and c.notes == [a.sid]


async def test_a_volatile_emit_is_dropped_when_the_client_cannot_take_it_now(
    anyio_backend: str,
) -> None:
    server = filtering_server()
    with anyio.fail_after(10):
        async with peers(server, 1) as (a,):
            assert await a.call("burst") == [1, 0, 1]
            await settle(a)
            assert a.notes == ["queued", "volatile alone", "volatile to one, alone"]
            assert server.namespace("/").adapter.volatile_dropped == 2


async def test_an_app_broadcast_leaves_out_skip_rooms(anyio_backend: str) -> None:
    app = gosf.App()

    @app.listen("join")
    async def join(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        client.join(request.message.text)
        return gosf.Message.success("joined")

    @app.listen("shout")
    async def shout(client: gosf.Client, request: gosf.Request) -> None:
        text = request.message.text
        await client.broadcast("", "heard", gosf.Message.success(text), skip_rooms="muted")
        await app.broadcast("", "heard", gosf.Message.success("from the app"), skip_rooms=["muted"])

    with anyio.fail_after(10):
        async with gosf.testing.serve(app) as served:
            async with served.client() as a, served.client() as b, served.client() as c:
                await b.request("join", {"text": "muted"})
                await c.request("shout", {"text": "hi"})
                first = await a.next_event("heard")
                assert first is not None and first.text == "hi"
                assert (await a.next_event("heard")).text == "from the app"
                assert (await c.next_event("heard")).text == "from the app"
                await b.request("join", {"text": "x"})  # a round trip
                assert b.events("heard") == []


async def test_flush_waits_for_the_writes_and_returns_once_disconnected(anyio_backend: str) -> None:
    server = make_server()
    flushed: list[str] = []
    gone = anyio.Event()

    @server.on("flush")
    async def flush(socket: gosf.Socket) -> bool:
        await socket.emit("note", "before the flush")
        async with anyio.create_task_group() as tg:
            tg.start_soon(socket.flush)  # still a coroutine function's worth
        await socket.flush()
        flushed.append("connected")
        return True

    @server.on_disconnect
    async def disconnected(socket: gosf.Socket, reason: str) -> None:
        await socket.flush()  # not connected any more: nothing to wait for
        flushed.append("disconnected")
        gone.set()

    with anyio.fail_after(10):
        async with peers(server, 1) as (a,):
            assert await a.call("flush") is True
            assert a.notes == ["before the flush"]
        await gone.wait()
    assert flushed == ["connected", "disconnected"]
