"""One worker of a cluster with connection state recovery on: two of them share
a Redis broker (``GOSF_BROKER``), for tests/interop/test_recovery_cluster.py
and tests/js/recovery_cluster.cjs.

The events are those of ``tests/apps/recovery_app.py``, and ``whoami``
(this worker's process id: the test checks where a client landed). With
``GOSF_STREAMS`` set the broker runs in Streams mode.
"""

from __future__ import annotations

import os
from typing import Any

import gosf
from gosf.brokers import Broker, RedisBroker, from_url


def _broker() -> Broker:
    """``GOSF_BROKER``; with ``GOSF_STREAMS`` set, the Redis broker in Streams
    mode, reconnecting soon (the test cuts it off from Redis for a while)."""
    url = os.environ.get("GOSF_BROKER")
    if url and os.environ.get("GOSF_STREAMS"):
        return RedisBroker(url, streams=True, backoff_max=0.5)
    return from_url(url)


server = gosf.SocketIOServer(
    ping_interval=1.0,
    ping_timeout=2.0,
    recovery=gosf.Recovery(),
    broker=_broker(),
)
asgi = server.asgi


@server.on("join")
async def join(socket: gosf.Socket, room: str) -> None:
    socket.join(room)


@server.on("remember")
async def remember(socket: gosf.Socket, value: Any) -> None:
    socket.state["value"] = value


@server.on("recall")
async def recall(socket: gosf.Socket) -> dict[str, Any]:
    return {
        "value": socket.state.get("value"),
        "recovered": socket.recovered,
        "rooms": sorted(room for room in socket.rooms if room != socket.sid),
    }


@server.on("shout")
async def shout(socket: gosf.Socket, room: str, n: int) -> None:
    """Broadcast ``news`` ``n`` to ``room``, in every worker."""
    await server.emit("news", n, to=room)


@server.on("whoami")
async def whoami(socket: gosf.Socket) -> int:
    return os.getpid()
