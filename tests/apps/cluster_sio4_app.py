"""One worker of the cluster of tests/interop/test_cluster_sio4.py: volatile
broadcasts, dynamic namespaces, msgpack and a GOSF app in ``/api``, across
processes (``hypercorn tests.apps.cluster_sio4_app:app`` with ``GOSF_BROKER``
set, and ``GOSF_PARSER`` to ``msgpack`` for the msgpack cluster).

``app`` is a GOSF :class:`gosf.App` in ``/api`` (the request's ``text`` is
the room or the words):

* ``shout``: ``app.broadcast("", "heard", ...)``, to every client of ``/api``;
* ``join``: join the room ``text``, answer the client's sid;
* ``tell-room``: ``app.broadcast(body.room, "heard", ...)``;
* ``rooms``: ``app.cluster_rooms()`` as ``body.rooms``;
* ``pull-into``, ``push-out``, ``kick``: ``app.join_client(body.sid,
  body.room)``, ``app.leave_client(body.sid, body.room)``,
  ``app.disconnect_client(body.sid)``, whether a worker had the sid as
  ``body.found``.

Its server has, in namespace ``"/"``:

* ``join(room)``: join it, ack the socket's sid;
* ``volatile(room, text)``: a volatile ``tick`` to the room, ack how many of
  this worker's sockets it was queued for;
* ``end(room, text)``: an ``end`` to the room (not volatile);
* ``dropped()``: this worker's ``volatile_dropped`` count of ``"/"``;
* ``tell(room, text, blob)``: ``bin`` with ``{text, blob}`` to the room
  (``None``: everyone);
* ``collect(room, question, seconds)``: ``server.emit_with_ack("poll",
  question, to=room)``, ack ``{answers, timed_out}``;

and namespaces ``/tenant-{id}`` (dynamic): ``where()`` acks the namespace's
name, ``emit-to(names, text)`` has ``server.emit("heard", text,
namespace=name)`` for each name, ``shout(text)`` has the parent emit
``heard`` to the children this worker has, ``ask(name, question, seconds)``
acks what ``server.emit_with_ack("poll", question, namespace=name)`` gathered.
"""

from __future__ import annotations

import os
from typing import Any

import gosf

app = gosf.App(
    {
        "broker": os.environ.get("GOSF_BROKER") or None,
        "parser": os.environ.get("GOSF_PARSER") or "json",
        "namespace": "/api",
    }
)
server = app.server


@app.listen("shout")
async def app_shout(client: gosf.Client, request: gosf.Request) -> None:
    await app.broadcast("", "heard", gosf.Message.success(request.message.text))


@app.listen("join")
async def app_join(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    client.join(request.message.text)
    return gosf.Message.success(client.sid)


@app.listen("tell-room")
async def app_tell_room(client: gosf.Client, request: gosf.Request) -> None:
    room = str(request.message.body["room"])
    await app.broadcast(room, "heard", gosf.Message.success(request.message.text))


@app.listen("rooms")
async def app_rooms(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message.success(body={"rooms": await app.cluster_rooms()})


@app.listen("pull-into")
async def app_pull_into(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    body = request.message.body
    found = await app.join_client(str(body["sid"]), str(body["room"]))
    return gosf.Message.success(body={"found": found})


@app.listen("push-out")
async def app_push_out(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    body = request.message.body
    found = await app.leave_client(str(body["sid"]), str(body["room"]))
    return gosf.Message.success(body={"found": found})


@app.listen("kick")
async def app_kick(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    found = await app.disconnect_client(str(request.message.body["sid"]))
    return gosf.Message.success(body={"found": found})


@server.on("join")
async def join(socket: gosf.Socket, room: str) -> str:
    socket.join(room)
    return socket.sid


@server.on("volatile")
async def volatile(socket: gosf.Socket, room: str, text: str) -> int:
    return await server.emit("tick", text, to=room, volatile=True)


@server.on("end")
async def end(socket: gosf.Socket, room: str, text: str) -> int:
    return await server.emit("end", text, to=room)


@server.on("dropped")
async def dropped(socket: gosf.Socket) -> int:
    return server.namespace("/").adapter.volatile_dropped


@server.on("tell")
async def tell(socket: gosf.Socket, room: str | None, text: str, blob: bytes) -> int:
    return await server.emit("bin", {"text": text, "blob": blob}, to=room)


@server.on("collect")
async def collect(socket: gosf.Socket, room: str, question: Any, seconds: float) -> Any:
    result = await server.emit_with_ack("poll", question, to=room, timeout=seconds)
    return {"answers": dict(result.answers), "timed_out": sorted(result.timed_out)}


tenants = server.dynamic_namespace("/tenant-{id}")


async def where(socket: gosf.Socket) -> str:
    return socket.namespace.name


async def emit_to(socket: gosf.Socket, names: list[str], text: str) -> int:
    sent = 0
    for name in names:
        sent += await server.emit("heard", text, namespace=name)
    return sent


async def shout(socket: gosf.Socket, text: str) -> int:
    return await tenants.emit("heard", text)


async def ask(socket: gosf.Socket, name: str, question: str, seconds: float) -> Any:
    result = await server.emit_with_ack("poll", question, namespace=name, timeout=seconds)
    return {"answers": dict(result.answers), "timed_out": sorted(result.timed_out)}


tenants.on("where", where)
tenants.on("emit-to", emit_to)
tenants.on("shout", shout)
tenants.on("ask", ask)
