"""Relaying a websocket upgrade that reached a process other than the session's owner.

A polling client upgrades by opening a websocket with its sid. Without sticky
sessions that websocket may reach any process. The process it reaches (the
*edge*) accepts it and becomes a pipe: frames from the client go to the
owner, frames from the owner go to the client, each as one direct message
through the broker. The owner serves the relayed websocket with the very
code that serves its own websockets (probe, upgrade, heartbeats, the
session's outbox), fed through ASGI-like ``receive``/``send`` callables.

A young session may move instead (see :mod:`.adopt`): an edge that can
adopt sessions says so when it opens the relay (``h``); once the client's
``5`` has gone through, it reads nothing more from the client until the
owner says ``ws-keep`` (the relay goes on) or ``ws-adopt`` (the session is
the edge's now), at most ``UPGRADE_TIMEOUT`` seconds; then it closes the
client's websocket.

Messages (see :mod:`._forward` for the framing; ``r`` is the relay id the
edge chose, ``f`` the edge's node id, ``t`` 1 for a text frame, 0 for binary)::

    edge → owner   {"k": "ws-open", "f", "r", "s": sid, "b": b64, "h": 1 if it adopts}
                                                 answered by a "reply":
                                                 status 101 (go on) or an error to refuse with
                   {"k": "ws-in", "f", "r", "t"}  body: a frame from the client
                   {"k": "ws-gone", "f", "r"}     the client went away (or the edge gave up)
    owner → edge   {"k": "ws-out", "r", "t"}      body: a frame for the client
                   {"k": "ws-close", "r", "code"} close the client's websocket
                   {"k": "ws-credit", "r", "n"}   the owner took n more frames
                   {"k": "ws-keep", "r"}          after the "5": the relay goes on
                   {"k": "ws-adopt", "r", "p": protocol, "n": how many kept messages}
                                                  body: the kept messages (as MESSAGE
                                                  packets) then the queued packets, one
                                                  Engine.IO v4 payload

Bounds: the edge forwards at most ``WINDOW`` client frames the owner has not
taken yet, then stops reading the client's websocket (backpressure reaches
the client as it does without a relay). Frames for the client wait in a
queue of ``max_outbound_buffer`` frames at the edge; a client that lets it
fill is disconnected, as a slow client is anyway. When the owner or the edge
becomes unreachable the other side notices at its next message
(:meth:`~gosf.brokers.Broker.send_to` says so) or by the session's
heartbeat, and the session ends; the client reconnects.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._engineio.http import ASGIMessage, Receive, Send
from .._engineio.server import UPGRADE_TIMEOUT
from .._engineio.session import EngineSession
from ..protocol.session import CloseReason
from .adopt import Adoption
from .wire import encode_forward

__all__ = ("WINDOW", "EdgeRelay", "OwnerRelay", "SendTo")

log = logging.getLogger("gosf.engineio")

WINDOW = 64
"""Client frames in flight from the edge to the owner, at most."""

_CLOSE_GOING_AWAY = 1001
_CLOSE_INTERNAL = 1011

SendTo = Callable[[str, bytes], Awaitable[bool]]
"""``send_to(node_id, data)``: a broker's direct message; whether ``node_id`` got it."""

_UPGRADE = "5"
"""The client's UPGRADE packet as a websocket frame (both protocols)."""


def _frame_message(body: bytes, text: bool) -> ASGIMessage:
    if text:
        return {"type": "websocket.receive", "text": body.decode()}
    return {"type": "websocket.receive", "bytes": body}


class EdgeRelay:
    """The edge's end: the client's websocket, piped to the owner."""

    def __init__(
        self, rid: int, owner: str, edge_id: str, buffer: int, *, adopts: bool = False
    ) -> None:
        self.rid = rid
        self.owner = owner
        self.edge_id = edge_id
        self.adopts = adopts
        """It asked the owner to hand a held session over after the ``5``."""
        self.adoption: Adoption | None = None
        """The session the owner handed over: this process serves it now."""
        self.decided = anyio.Event()  # the owner's word after the "5"
        self._kept = False
        self.credits = WINDOW
        self.credit_event = anyio.Event()
        self.out_send: MemoryObjectSendStream[tuple[str, bytes, int]]
        self.out_receive: MemoryObjectReceiveStream[tuple[str, bytes, int]]
        self.out_send, self.out_receive = anyio.create_memory_object_stream(buffer)
        self.overflow = False

    def from_owner(self, head: dict[str, Any], body: bytes) -> None:
        """A message of the owner (never blocks)."""
        kind = head["k"]
        if kind == "ws-keep":
            self._kept = True
            self.decided.set()
            return
        if kind == "ws-credit":
            n = head.get("n")
            if isinstance(n, int) and n > 0:
                self.credits += n
                self.credit_event.set()
            return
        if kind == "ws-out":
            item = ("frame", body, 1 if head.get("t") else 0)
        elif kind == "ws-adopt":
            # Behind the frames the owner sent before it: the client gets them first.
            try:
                self.adoption = Adoption.decode(head, body)
            except ValueError as exc:
                log.warning("relay %s: a handover that does not decode: %s", self.rid, exc)
                item = ("close", b"", _CLOSE_INTERNAL)
            else:
                item = ("adopt", b"", 0)
        else:  # ws-close
            code = head.get("code")
            item = ("close", b"", code if isinstance(code, int) else 1000)
        try:
            self.out_send.send_nowait(item)
        except anyio.WouldBlock:
            # The client does not read: what a slow client gets anyway.
            self.overflow = True
            self.out_send.close()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def run(self, receive: Receive, send: Send, send_to: SendTo, stall: float) -> None:
        """Pipe until one side ends; the websocket has been accepted.

        ``stall`` bounds the wait for the owner's credits: an owner that takes
        none of the client's frames for that long (it is gone, or its session
        is: its heartbeat would have ended it) ends the relay.
        """
        node_head = {"f": self.edge_id, "r": self.rid}
        closed_by_owner = False

        async def to_client() -> None:
            nonlocal closed_by_owner
            async with self.out_receive:
                async for kind, body, value in self.out_receive:
                    if kind == "adopt":
                        closed_by_owner = True  # the session is this process's now
                        self.decided.set()
                        return
                    if kind == "close":
                        closed_by_owner = True
                        await _close(send, value)
                        return
                    if value:
                        await send({"type": "websocket.send", "text": body.decode()})
                    else:
                        await send({"type": "websocket.send", "bytes": body})
            if self.overflow:
                log.warning("relay %s: client does not read; disconnecting it", self.rid)
                await _close(send, _CLOSE_GOING_AWAY)

        async def from_client() -> None:
            while True:
                if self.credits <= 0:
                    self.credit_event = anyio.Event()
                    with anyio.move_on_after(stall):
                        await self.credit_event.wait()
                    if self.credits <= 0:
                        log.info("relay %s: the owner %s took no frame", self.rid, self.owner)
                        await _close(send, _CLOSE_INTERNAL)
                        return
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                text: str | None = message.get("text")
                if text is not None:
                    head, body = {"k": "ws-in", **node_head, "t": 1}, text.encode()
                else:
                    head, body = {"k": "ws-in", **node_head, "t": 0}, message.get("bytes") or b""
                self.credits -= 1
                if not await send_to(self.owner, encode_forward(head, body)):
                    log.info("relay %s: the owner %s is gone", self.rid, self.owner)
                    await _close(send, _CLOSE_INTERNAL)
                    return
                if self.adopts and text == _UPGRADE:
                    # The upgrade is done: nothing more goes to the owner
                    # until it says whether it hands the session over.
                    self.adopts = False
                    with anyio.move_on_after(min(stall, UPGRADE_TIMEOUT)):
                        await self.decided.wait()
                    if not self.decided.is_set():
                        log.info("relay %s: the owner %s did not say", self.rid, self.owner)
                        await _close(send, _CLOSE_INTERNAL)
                        return
                    if not self._kept:
                        return  # adopted (pump_out ends too), or closed

        async with anyio.create_task_group() as tg:

            async def pump_out() -> None:
                try:
                    await to_client()
                except Exception:  # the client is gone: how the ASGI server says it varies
                    log.debug("relay %s: send to client failed", self.rid, exc_info=True)
                tg.cancel_scope.cancel()

            tg.start_soon(pump_out)
            await from_client()
            tg.cancel_scope.cancel()
        if not closed_by_owner:
            with anyio.CancelScope(shield=True):
                await send_to(self.owner, encode_forward({"k": "ws-gone", **node_head}))


class OwnerRelay:
    """The owner's end: a websocket whose frames come and go through the edge."""

    def __init__(self, edge: str, rid: int) -> None:
        self.edge = edge
        self.rid = rid
        # WINDOW frames at most, plus the end marker: the edge respects its credits.
        self.in_send: MemoryObjectSendStream[ASGIMessage]
        self.in_receive: MemoryObjectReceiveStream[ASGIMessage]
        self.in_send, self.in_receive = anyio.create_memory_object_stream(WINDOW + 1)
        self.scope = anyio.CancelScope()
        self.session: EngineSession | None = None  # set by serve()
        self._taken = 0
        self._lock = anyio.Lock()

    def from_edge(self, head: dict[str, Any], body: bytes) -> None:
        """A message of the edge (never blocks)."""
        if head["k"] == "ws-gone":
            message: ASGIMessage = {"type": "websocket.disconnect", "code": _CLOSE_GOING_AWAY}
        else:
            message = _frame_message(body, bool(head.get("t")))
        try:
            self.in_send.send_nowait(message)
        except anyio.WouldBlock:
            log.warning("relay %s from %s: more frames than its window", self.rid, self.edge)
            if self.session is not None:  # it lives in this relay's task once upgraded
                self.session.close(CloseReason.RELAY_OVERFLOW, discard=True)
            self.scope.cancel()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def serve(
        self,
        session: EngineSession,
        serve_websocket: Callable[[Receive, Send], Awaitable[None]],
        send_to: SendTo,
    ) -> None:
        """Serve the relayed websocket like a local one, until it ends.

        Once upgraded, the session lives in this task (as in a websocket's
        ASGI call): cancelling :attr:`scope` ends it.
        """
        self.session = session

        async def receive() -> ASGIMessage:
            try:
                message = await self.in_receive.receive()
            except anyio.EndOfStream:
                return {"type": "websocket.disconnect", "code": _CLOSE_GOING_AWAY}
            self._taken += 1
            if self._taken >= WINDOW // 2:
                credit, self._taken = self._taken, 0
                credit_message = {"k": "ws-credit", "r": self.rid, "n": credit}
                await send_to(self.edge, encode_forward(credit_message))
            return message

        async def send(message: ASGIMessage) -> None:
            kind = message["type"]
            if kind == "websocket.accept":
                return  # the edge accepted it
            async with self._lock:  # frames leave in order
                if kind == "websocket.send":
                    text: str | None = message.get("text")
                    if text is not None:
                        head, body = {"k": "ws-out", "r": self.rid, "t": 1}, text.encode()
                    else:
                        head, body = {"k": "ws-out", "r": self.rid, "t": 0}, message["bytes"]
                elif kind == "websocket.close":
                    head, body = {"k": "ws-close", "r": self.rid, "code": message["code"]}, b""
                else:
                    return
                if not await send_to(self.edge, encode_forward(head, body)):
                    raise ConnectionError(f"the relaying process {self.edge} is gone")

        try:
            with self.scope:
                await serve_websocket(receive, send)
        except Exception as exc:  # the edge is gone (send_to said so) mid-upgrade
            log.info("session %s: relay from %s failed: %s", session.sid, self.edge, exc)
            if session.transport == "websocket":
                session.close(CloseReason.TRANSPORT_ERROR, discard=True)
        if self.scope.cancelled_caught:
            session.close(CloseReason.RELAY_OVERFLOW, discard=True)


async def _close(send: Send, code: int) -> None:
    try:
        await send({"type": "websocket.close", "code": code})
    except Exception:  # the ASGI server may already consider it closed
        log.debug("websocket already closed", exc_info=True)
