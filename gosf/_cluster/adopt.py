"""A young session handed over to the process its websocket upgrade reached.

Without sticky sessions a polling client's websocket may reach a process
other than the one holding its session (the *owner*); that process (the
*edge*) relays the probe to the owner (``relay.py``). While the session is
still *held* (``upgrade_handover``: the session machine's held opening, its
Socket.IO CONNECT not yet handed up) nothing of it exists above Engine.IO,
so once the client's ``5`` has gone through, the owner can give it up: it
sends the edge what the client sent meanwhile and what was queued for it
(:class:`Adoption`, a ``ws-adopt``) and the session ends there
(``HANDED_OVER``); the edge serves it on the client's websocket as if it had
begun there, with the same sid (:func:`serve_adoption`). Otherwise the owner
says ``ws-keep`` and the relay goes on. The owner's decision is one step of
its session machine (:meth:`~gosf.protocol.session.Session.hand_over`), so a
session never has two owners.

The reference: ``@socket.io/cluster-engine`` (its delayed connection and
its ``UPGRADE``/``UPGRADE_RESPONSE`` messages); there the edge answers the
probe itself, here the owner's machine does, over the relay, so every
Engine.IO rule stays in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .._engineio.http import Receive, Scope, Send
from .._engineio.server import EngineServer
from .._engineio.session import EngineSession
from .._engineio.websocket import serve_adopted
from ..protocol.engineio import Packet, PacketType, decode_payload, encode_payload
from ..protocol.errors import RemoteProtocolError
from .wire import encode_forward

__all__ = ("Adoption", "hand_over", "serve_adoption")

log = logging.getLogger("gosf.engineio")

_CLOSE_INTERNAL = 1011


class Adoption:
    """A session its owner handed over to the edge (a ``ws-adopt``)."""

    __slots__ = ("messages", "protocol", "queued")

    def __init__(self, protocol: int, messages: list[str | bytes], queued: list[Packet]) -> None:
        self.protocol = protocol
        self.messages = messages
        """What the client sent while the session was held, in order."""
        self.queued = queued
        """What was queued for the client, not yet taken."""

    def encode(self, rid: int) -> bytes:
        """The ``ws-adopt`` message carrying it: the kept messages (as MESSAGE
        packets), then the queued packets, in one Engine.IO v4 payload."""
        packets = [Packet(PacketType.MESSAGE, data) for data in self.messages]
        everything = [*packets, *self.queued]
        body = encode_payload(everything, 4)[0] if everything else b""
        head = {"k": "ws-adopt", "r": rid, "p": self.protocol, "n": len(self.messages)}
        return encode_forward(head, body)

    @classmethod
    def decode(cls, head: dict[str, Any], body: bytes) -> Adoption:
        """The session a ``ws-adopt`` carries.

        Raises:
            ValueError: the message does not decode.
        """
        count, protocol = head.get("n"), head.get("p")
        if not isinstance(count, int) or protocol not in (3, 4):
            raise ValueError("a ws-adopt without its counts")
        try:
            packets = decode_payload(body, 4, max_packets=1 << 20) if body else []
        except RemoteProtocolError as exc:
            raise ValueError(str(exc)) from None
        kept, queued = packets[:count], packets[count:]
        messages = [p.data for p in kept if p.type is PacketType.MESSAGE and p.data is not None]
        if len(messages) != count:
            raise ValueError("a ws-adopt whose kept messages are not messages")
        return cls(protocol, messages, queued)


async def hand_over(
    send_to: Callable[[str, bytes], Awaitable[bool]], key: tuple[str, int], session: EngineSession
) -> bool:
    """The owner's step once the websocket relayed from the edge ``key`` (its
    node id, the relay id) has upgraded ``session``: hand the session over
    if it is still held (it ends here), else tell the edge to go on
    relaying; whether it was handed over."""
    edge, rid = key
    taken = session.hand_over()
    if taken is None:
        await send_to(edge, encode_forward({"k": "ws-keep", "r": rid}))
        return False
    messages, queued = taken
    if not await send_to(edge, Adoption(session.protocol, messages, queued).encode(rid)):
        # Gone, with its client's websocket: that client reconnects.
        log.info("session %s: handed over to %s, which is gone", session.sid, edge)
    return True


async def serve_adoption(
    engine: EngineServer,
    scope: Scope,
    receive: Receive,
    send: Send,
    sid: str,
    b64: bool,
    adoption: Adoption,
) -> None:
    """The edge's step: serve the session ``sid`` its owner handed over, on
    this websocket (accepted, upgraded), until it ends."""
    if not engine.running or not engine.accepting or sid in engine.sessions:
        log.info("session %s: handed over to a process that cannot take it", sid)
        await send({"type": "websocket.close", "code": _CLOSE_INTERNAL})
        return
    await serve_adopted(
        engine,
        scope,
        receive,
        send,
        sid=sid,
        protocol=adoption.protocol,
        b64=b64,
        messages=adoption.messages,
        queued=adoption.queued,
    )
