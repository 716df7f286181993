"""One worker of a cluster: ``hypercorn tests.apps.cluster_app:app`` with ``GOSF_BROKER`` set.

Used by tests/interop/test_cluster.py, which starts two of them on two ports
with ``GOSF_BROKER=redis://127.0.0.1:PORT/0``. Endpoints (the request's
``text`` is the room or the words):

* ``join``: join the room ``text``;
* ``say``: a client broadcast, event ``said``, to the room ``body.room`` (sender skipped);
* ``announce``: a global broadcast, event ``announced``, ``app.broadcast("", ...)``;
* ``tell-room``: a room broadcast, event ``told``, ``app.broadcast(body.room, ...)``,
  leaving out the members of the rooms ``body.skip`` if given;
* ``whoami``: this worker's process id (tests check that clients are spread);
* ``sid``: the caller's sid;
* ``rooms``: ``app.cluster_rooms()``, as ``body.rooms``, with ``body.elapsed`` (seconds);
* ``count``: ``app.cluster_client_count()``, as ``body.count``, with ``body.elapsed``;
* ``kick``, ``pull-into``, ``push-out``: ``app.disconnect_client(body.sid)``,
  ``app.join_client(body.sid, body.room)``, ``app.leave_client(body.sid, body.room)``,
  whether a worker had the sid as ``body.found``;
* ``poll-room``: ``app.broadcast_with_ack(body.room, "poll", ..., timeout=body.timeout)``,
  as ``body.answers`` (by sid), ``body.timed_out`` and ``body.disconnected``;
* ``fetch``: ``app.cluster_clients(text)``, as ``body.sockets`` (sid, node, rooms);
* ``join-all``, ``kick-room``: ``app.join_clients(body.room, body.into)``,
  ``app.disconnect_clients(body.room)``, how many as ``body.count``;
* ``local-count``: wait (at most ``body.timeout`` seconds) until this worker
  alone has ``body.count`` clients (each disconnect looks again); answers
  ``body.count`` as it is then;
* ``server-side-hello``: ``app.server.server_side_emit("hello", text)``, how many
  other workers took it as ``body.took``; each of them broadcasts ``announced``
  with ``heard <text> in <its pid>``;
* ``server-side-ping``: ``app.server.server_side_emit_with_ack("ping", text)``:
  ``body.answers`` (each other worker's ``[pid, text]``) and ``body.missing``;
* ``forwarding``: this worker's ``Forwarder.statistics()`` (requests forwarded,
  websockets relayed, sessions handed over and adopted) as the body;
* ``broker-state``: wait (at most ``body.timeout`` seconds) until this worker's
  Redis broker is subscribed (``body.connected`` true) or not (false); answers
  ``body.connected`` as it is then.
"""

from __future__ import annotations

import os
import time

import anyio

import gosf
from gosf.brokers import RedisBroker

app = gosf.App({"broker": os.environ.get("GOSF_BROKER") or None})


@app.listen("join")
async def join(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    client.join(request.message.text)
    return gosf.Message.success(request.message.text)


@app.listen("say")
async def say(client: gosf.Client, request: gosf.Request) -> None:
    room = str(request.message.body["room"])
    await client.broadcast(room, "said", gosf.Message.success(request.message.text))


@app.listen("announce")
async def announce(client: gosf.Client, request: gosf.Request) -> None:
    await app.broadcast("", "announced", gosf.Message.success(request.message.text))


@app.listen("tell-room")
async def tell_room(client: gosf.Client, request: gosf.Request) -> None:
    room = str(request.message.body["room"])
    skip_rooms = request.message.body.get("skip")  # rooms left out, in every worker
    message = gosf.Message.success(request.message.text)
    await app.broadcast(room, "told", message, skip_rooms=skip_rooms)


@app.listen("whoami")
async def whoami(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message.success(str(os.getpid()))


@app.listen("sid")
async def sid(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message.success(client.sid)


@app.listen("rooms")
async def rooms(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    start = time.monotonic()
    found = await app.cluster_rooms()
    return gosf.Message.success(body={"rooms": found, "elapsed": time.monotonic() - start})


@app.listen("count")
async def count(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    start = time.monotonic()
    found = await app.cluster_client_count()
    return gosf.Message.success(body={"count": found, "elapsed": time.monotonic() - start})


@app.listen("kick")
async def kick(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    found = await app.disconnect_client(str(request.message.body["sid"]))
    return gosf.Message.success(body={"found": found})


@app.listen("pull-into")
async def pull_into(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    body = request.message.body
    found = await app.join_client(str(body["sid"]), str(body["room"]))
    return gosf.Message.success(body={"found": found})


@app.listen("push-out")
async def push_out(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    body = request.message.body
    found = await app.leave_client(str(body["sid"]), str(body["room"]))
    return gosf.Message.success(body={"found": found})


@app.listen("poll-room")
async def poll_room(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    body = request.message.body
    result = await app.broadcast_with_ack(
        str(body["room"]),
        "poll",
        gosf.Message.success(request.message.text),
        timeout=float(body["timeout"]),
    )
    return gosf.Message.success(
        body={
            "answers": dict(result.answers),
            "timed_out": sorted(result.timed_out),
            "disconnected": sorted(result.disconnected),
        }
    )


@app.listen("fetch")
async def fetch(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    found = await app.cluster_clients(request.message.text)
    sockets = [{"sid": s.sid, "node": s.node, "rooms": sorted(s.rooms)} for s in found]
    return gosf.Message.success(body={"sockets": sockets})


@app.listen("join-all")
async def join_all(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    body = request.message.body
    count = await app.join_clients(str(body["room"]), str(body["into"]))
    return gosf.Message.success(body={"count": count})


@app.listen("kick-room")
async def kick_room(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    count = await app.disconnect_clients(str(request.message.body["room"]))
    return gosf.Message.success(body={"count": count})


@app.listen("broker-state")
async def broker_state(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    body = request.message.body
    broker = app.server.broker
    assert isinstance(broker, RedisBroker), "the cluster app runs with a Redis broker"
    with anyio.move_on_after(float(body["timeout"])):
        await broker.wait_connected(bool(body["connected"]))
    return gosf.Message.success(body={"connected": broker.connected})


@app.server.on_server_side("hello")
async def on_hello(text: str) -> None:
    await app.broadcast("", "announced", gosf.Message.success(f"heard {text} in {os.getpid()}"))


@app.server.on_server_side("ping")
async def on_ping(text: str) -> list[object]:
    return [os.getpid(), text]


@app.listen("server-side-hello")
async def server_side_hello(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    took = await app.server.server_side_emit("hello", request.message.text)
    return gosf.Message.success(body={"took": took})


@app.listen("server-side-ping")
async def server_side_ping(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    acks = await app.server.server_side_emit_with_ack("ping", request.message.text, timeout=5)
    answers = list(acks.answers.values())
    return gosf.Message.success(body={"answers": answers, "missing": acks.missing})


class _Left:
    """Set (and replaced) at each disconnect, for ``local-count`` to look again."""

    event: anyio.Event | None = None


@app.on_disconnect
async def left(client: gosf.Client, request: gosf.Request) -> None:
    # The socket has left the namespace's table by now (see Namespace._socket_closed).
    event, _Left.event = _Left.event, None
    if event is not None:
        event.set()


@app.listen("local-count")
async def local_count(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    body = request.message.body
    members = app.server.namespaces["/"].members
    with anyio.move_on_after(float(body["timeout"])):
        while len(members()) != int(body["count"]):
            if _Left.event is None:
                _Left.event = anyio.Event()
            await _Left.event.wait()
    return gosf.Message.success(body={"count": len(members())})


@app.listen("forwarding")
async def forwarding(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    """This worker's forwarding statistics (how its clients were reached), as the body."""
    from dataclasses import asdict

    from gosf._cluster.forward import Forwarder

    forwarder = app.server.engine.forwarder
    assert isinstance(forwarder, Forwarder)
    return gosf.Message.success(body=asdict(forwarder.statistics()))
