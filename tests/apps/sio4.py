"""The server of tests/interop/test_sio4_npm.py: except-rooms, volatile emits,
dynamic namespaces (``asgi``, a SocketIOServer) and a GOSF app in ``/api``
(``app``), each served under hypercorn (asyncio or trio) by ``tests/serve.py``.

``asgi``, namespace ``"/"``:

* ``join(room)``: join it, ack the socket's rooms;
* ``except(to, left_out)``: a ``note`` with the caller's sid to ``to`` (``null``:
  everyone) but the members of ``left_out``; ack how many it was queued for;
* ``burst()``: ``note`` events, volatile ones among them, ack what the
  broadcasts were queued for (tests/test_broadcast_filters.py says which
  volatile ones are dropped);
* namespaces ``/tenant-{id}``: ``where()`` acks the namespace's name,
  ``shout(text)`` emits ``heard`` to every tenant (the parent).

``app``, namespace ``/api``: ``echo`` answers the message's text, ``shout``
broadcasts it to every client as ``heard``.
"""

from __future__ import annotations

import gosf

server = gosf.SocketIOServer()
asgi = server.asgi


@server.on("join")
async def join(socket: gosf.Socket, room: str) -> list[str]:
    socket.join(room)
    return sorted(socket.rooms)


@server.on("except")
async def except_(socket: gosf.Socket, to: str | None, left_out: list[str]) -> int:
    return await server.emit("note", socket.sid, to=to, skip_rooms=left_out)


@server.on("burst")
async def burst(socket: gosf.Socket) -> list[int]:
    sent = [await server.emit("note", "queued", to=socket.sid)]
    sent.append(await server.emit("note", "volatile behind it", to=socket.sid, volatile=True))
    await socket.flush()
    sent.append(await server.emit("note", "volatile alone", to=socket.sid, volatile=True))
    await socket.emit("note", "volatile to one, behind it", volatile=True)
    await socket.flush()
    await socket.emit("note", "volatile to one, alone", volatile=True)
    return sent


tenants = server.dynamic_namespace("/tenant-{id}")


async def where(socket: gosf.Socket) -> str:
    return socket.namespace.name


async def shout(socket: gosf.Socket, text: str) -> int:
    return await tenants.emit("heard", text)


tenants.on("where", where)
tenants.on("shout", shout)


app = gosf.App(namespace="/api")


@app.listen("echo")
async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message.success(request.message.text)


@app.listen("shout")
async def app_shout(client: gosf.Client, request: gosf.Request) -> None:
    await app.broadcast("", "heard", gosf.Message.success(request.message.text))
