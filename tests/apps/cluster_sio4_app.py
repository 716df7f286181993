"""One worker of the cluster of tests/interop/test_cluster_sio4.py: volatile
broadcasts, dynamic namespaces, msgpack and a GOSF app in ``/api``, across
processes (``hypercorn tests.apps.cluster_sio4_app:app`` with ``GOSF_BROKER``
set, and ``GOSF_PARSER`` to ``msgpack`` for the msgpack cluster).

``app`` is a GOSF :class:`gosf.App` in ``/api``: ``shout`` broadcasts the
message's text to every client of ``/api`` as ``heard``, ``app.broadcast("",
...)``. Its server has, in namespace ``"/"``:

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
``heard`` to the children this worker has.
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


tenants.on("where", where)
tenants.on("emit-to", emit_to)
tenants.on("shout", shout)
