"""Forwarding: requests for a session that another process holds.

Without sticky sessions, the HTTP requests of one long-polling client land
on any process of the cluster (``hypercorn --workers N``, a round-robin load
balancer in front of several machines). Every sid names the process that
made it (``<node id>.<random>``, see :func:`~._engine.owner_of`), so the
process a GET or POST lands on, when it does not hold the session, sends it
to that owner as a direct message through the broker
(:meth:`gosf.brokers.Broker.send_to`); the owner serves it exactly as it
serves its own requests (same checks, same long-poll wait, same flush
markers) and sends back the response, which the first process passes on. A
websocket upgrade that lands on the wrong process is relayed instead: see
:mod:`._relay`; :class:`Forwarder` routes both kinds of messages.

Messages (version 1, framed as :mod:`._forward_wire` says)::

    request: {"v": 1, "k": "get" | "post", "f": <asker's node id>, "r": <request id>,
              "s": <sid>, "c": <Content-Type of a POST, or null>}     body: the POST body
    cancel:  {"v": 1, "k": "cancel", "f": <asker's node id>, "r": <request id>}
    reply:   {"v": 1, "k": "reply", "r": <request id>, "st": <HTTP status>,
              "c": <Content-Type>}                                    body: the response body

A ``cancel`` tells the owner that the client of a forwarded GET went away (or
the asker gave up waiting): whatever the GET would have taken stays queued,
as it does for a client of the owner's own that leaves.

Bounds: an asker waits for a reply at most ``ping_interval + ping_timeout``
(a live session answers a GET within a ping interval: a ping is queued by
then); an owner that is not reachable (not subscribed, or the broker down)
is known at once from :meth:`~gosf.brokers.Broker.send_to`, and the request
is refused as one for an unknown session, which makes the client reconnect.

A reply that does not reach its asker (the broker is reconnecting: a Redis
restart) is sent again, with a short capped backoff, for as long as the
asker may still be waiting for it. The client's long-poll is held open at
the asker meanwhile; without the retry that client would stay connected but
deaf (its packets gone with the lost reply, no new GET possible) until the
asker gives up. A reply that arrives twice is harmless: the asker takes the
first one for a request id and drops the others.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .._engineio.http import EngineError, Receive, Scope, Send, cors_headers, header, send_response
from .._engineio.polling import (
    client_left,
    deliver_payload,
    poll,
    posting,
    read_body,
    session_for_polling,
    unless_gone,
)
from .._engineio.server import UPGRADE_TIMEOUT, EngineServer, RelayRefused, session_for_upgrade
from .._engineio.session import EngineSession
from .._engineio.websocket import serve_upgrade
from .adopt import hand_over, serve_adoption
from .relay import EdgeRelay, OwnerRelay, SendTo
from .wire import decode_forward, encode_forward

__all__ = ("Forwarder", "ForwardingStatistics")

log = logging.getLogger("gosf.engineio")

_HANDS_OVER = b"hands over"
"""The body of an owner's 101 to an edge that adopts: it answers every relayed "5"."""

_REPLY_RETRY_FIRST = 0.05
"""Seconds before a reply that did not reach its asker is sent again (then doubled)."""
_REPLY_RETRY_MAX = 0.5
"""The longest pause between two sendings of one reply."""


@dataclass(frozen=True)
class ForwardingStatistics:
    """How much of one process's traffic took the way through the broker
    (:meth:`Forwarder.statistics`): counts since it started.

    Tests and benchmarks assert on these to know which way a client was
    served (through its owner, or relayed) instead of guessing from timing.
    """

    requests_forwarded: int
    """Polling requests this process sent on to their session's owner."""
    requests_served: int
    """Polling requests of other processes this process answered for its sessions."""
    websockets_relayed: int
    """Websocket upgrades this process accepted and relayed to their owner (as
    the edge), those whose session it then adopted included."""
    relays_served: int
    """Relayed websockets this process served for its own sessions (as the owner)."""
    relays_open: int
    """Relays running now, at either end."""
    sessions_handed_over: int
    """Held sessions of this process handed over to the process their websocket reached."""
    sessions_adopted: int
    """Sessions of other processes handed over to this one, served here since."""


class _Reply:
    __slots__ = ("body", "content_type", "done", "status")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.status = 500
        self.content_type = b""
        self.body = b""


class ForwardObserver(Protocol):
    """What a forwarder reports to (the Socket.IO server's observers)."""

    def forwarded(self, owner: str, method: str) -> None: ...

    def relayed(self, owner: str) -> None: ...


class Forwarder:
    """Forwards this process's polling requests and websocket upgrades for
    other processes' sessions, and serves theirs for its own sessions.

    :meth:`run` lives in the server's task group (the requests it serves for
    other processes run in it); :meth:`inbox` is the broker's ``inbox``.
    """

    def __init__(self, engine: EngineServer, send_to: SendTo) -> None:
        self._engine = engine
        self._send_to = send_to
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Reply] = {}  # requests of ours, by id
        self._serving: dict[tuple[str, int], anyio.Event] = {}  # theirs: set = cancelled
        self._edges: dict[int, EdgeRelay] = {}  # websockets relayed to their owner, by id
        self._owned: dict[tuple[str, int], OwnerRelay] = {}  # relayed to us, by edge and id
        self._tg: TaskGroup | None = None
        self.observer: ForwardObserver | None = None
        """Told of each request forwarded and each websocket relayed (none: nobody)."""
        self._forwarded = 0
        self._served = 0
        self._relayed = 0
        self._relays_served = 0
        self._handed_over = 0
        self._adopted = 0

    def statistics(self) -> ForwardingStatistics:
        """What went through the broker so far (see :class:`ForwardingStatistics`)."""
        return ForwardingStatistics(
            requests_forwarded=self._forwarded,
            requests_served=self._served,
            websockets_relayed=self._relayed,
            relays_served=self._relays_served,
            relays_open=len(self._edges) + len(self._owned),
            sessions_handed_over=self._handed_over,
            sessions_adopted=self._adopted,
        )

    @property
    def timeout(self) -> float:
        """Longest wait for the owner's reply to a forwarded request."""
        options = self._engine.options
        return options.ping_interval + options.ping_timeout

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve other processes' requests until cancelled."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None  # the requests and relays it served ended with its task group

    # -- asking the owner -------------------------------------------------------------

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, *, owner: str, sid: str
    ) -> None:
        """Have ``owner`` answer this GET or POST for its session ``sid``; send its response.

        Raises:
            EngineError: the owner is unreachable or did not answer in time
                (answered as an unknown sid: the client reconnects).
        """
        options = self._engine.options
        method = scope["method"]
        if self.observer is not None:
            self.observer.forwarded(owner, method)
        body = b""
        content_type = None
        if method == "POST":
            data = await read_body(receive, options.max_payload)
            if data is None:
                return  # the client went away before it finished sending
            body, content_type = data, header(scope, b"content-type")
        rid = next(self._ids)
        reply = self._waiting[rid] = _Reply()
        try:
            head = {"k": method.lower(), "f": self._engine.node_id, "r": rid, "s": sid}
            if not await self._send_to(owner, encode_forward({**head, "c": content_type}, body)):
                raise EngineError(EngineError.UNKNOWN_SID, detail="its process is not reachable")
            self._forwarded += 1
            # A GET's client may leave while the owner long-polls for it.
            gone = partial(client_left, receive) if method == "GET" else anyio.sleep_forever
            answered = False
            with anyio.move_on_after(self.timeout) as waiting:
                answered = await unless_gone(reply.done.wait, gone)
            if not answered:
                with anyio.CancelScope(shield=True):
                    cancel = {"k": "cancel", "f": self._engine.node_id, "r": rid}
                    await self._send_to(owner, encode_forward(cancel))
                if not waiting.cancelled_caught:
                    return  # the client left
                log.warning("session %s: its process %s did not answer in time", sid, owner)
                raise EngineError(EngineError.UNKNOWN_SID, detail="its process did not answer")
        finally:
            del self._waiting[rid]
        headers = cors_headers(options, scope)
        await send_response(
            send, reply.status, reply.body, content_type=reply.content_type, headers=headers
        )

    # -- serving for the asker ----------------------------------------------------------

    def inbox(self, data: bytes) -> None:
        """A forwarding message from another process (never blocks)."""
        try:
            head, body = decode_forward(data)
        except ValueError as exc:
            log.warning("dropped a forwarding message it cannot decode: %s", exc)
            return
        kind, rid = head["k"], head["r"]
        if kind in ("ws-out", "ws-close", "ws-credit", "ws-keep", "ws-adopt"):
            edge = self._edges.get(rid)
            if edge is not None:
                edge.from_owner(head, body)
            return
        if kind in ("ws-in", "ws-gone"):
            owned = self._owned.get((head["f"], rid))
            if owned is not None:
                owned.from_edge(head, body)
            elif kind == "ws-in" and self._tg is not None:
                # A relay this process no longer serves (it gave up on the edge):
                # have the edge close its client's websocket.
                close = encode_forward({"k": "ws-close", "r": rid, "code": 1011})
                self._tg.start_soon(self._tell, head["f"], close)
            return
        if kind == "ws-open":
            self._open_relay(head)
            return
        if kind == "reply":
            reply = self._waiting.get(rid)
            if reply is not None and not reply.done.is_set():
                reply.status, reply.content_type, reply.body = head["st"], head["c"].encode(), body
                reply.done.set()
            return
        key = (head["f"], rid)
        if kind == "cancel":
            cancelled = self._serving.get(key)
            if cancelled is not None:
                cancelled.set()
            return
        if self._tg is None or key in self._serving:
            return  # not running, or a repeat
        cancelled = self._serving[key] = anyio.Event()
        self._served += 1
        self._tg.start_soon(self._serve, key, head, body, cancelled)

    async def _serve(
        self, key: tuple[str, int], head: dict[str, Any], body: bytes, cancelled: anyio.Event
    ) -> None:
        asker = key[0]
        deadline = anyio.current_time() + self.timeout  # the asker waits no longer
        polled: EngineSession | None = None  # a GET's session, once it has its answer
        try:
            try:
                session = session_for_polling(self._engine, head["s"])
                if head["k"] == "get":
                    result = await poll(session, cancelled.wait)
                    if result is None:
                        return  # the asker's client went away
                    payload, content_type = result
                    polled = session
                else:
                    max_payload = self._engine.options.max_payload
                    with posting(session):
                        await deliver_payload(session, body, head.get("c"), max_payload)
                    payload, content_type = b"ok", b"text/html"
                status = 200
            except EngineError as exc:
                status, content_type, payload = exc.status, b"application/json", exc.body()
            # What the GET took counts as written only once the reply has
            # reached the asker (or it is given up on).
            reply = partial(self._reply, key, status, content_type, payload)
            if not await self._until_received(reply, deadline, cancelled):
                log.info(
                    "session %s: the answer did not reach the process that asked (%s); dropped",
                    head["s"],
                    asker,
                )
        finally:
            if polled is not None:
                polled.poll_written()
            self._serving.pop(key, None)

    async def _until_received(
        self, reply: Callable[[], Awaitable[bool]], deadline: float, cancelled: anyio.Event
    ) -> bool:
        """``reply()`` again until it reaches the asker; whether it did.

        Gives up at ``deadline`` (the asker has given up by then) or once the
        asker cancels the request (its client left, or it gave up early).
        """
        pause = _REPLY_RETRY_FIRST
        while not await reply():
            left = deadline - anyio.current_time()
            if left <= 0 or cancelled.is_set():
                return False
            with anyio.move_on_after(min(pause, left)):
                await cancelled.wait()
            pause = min(2 * pause, _REPLY_RETRY_MAX)
        return True

    # -- websocket upgrades -------------------------------------------------------------

    async def relay_websocket(
        self, scope: Scope, receive: Receive, send: Send, *, owner: str, sid: str, b64: bool
    ) -> None:
        """Relay this (not yet accepted) websocket upgrade of ``owner``'s session ``sid``.

        When this process can take sessions over (``upgrade_handover``) and
        the owner hands this one over after the upgrade (it was still held),
        it is served here from then on, no longer relayed.

        Raises:
            RelayRefused: the owner refused the upgrade, is unreachable or did
                not answer; the caller answers the handshake with it.
        """
        if self.observer is not None:
            self.observer.relayed(owner)
        rid = next(self._ids)
        reply = self._waiting[rid] = _Reply()
        engine = self._engine
        me = engine.node_id
        adopts = engine.holds_new_sessions and engine.config.hold > 0
        edge = EdgeRelay(rid, owner, me, engine.options.max_outbound_buffer, adopts=adopts)
        self._edges[rid] = edge
        try:
            opening = {"k": "ws-open", "f": me, "r": rid, "s": sid, "b": b64, "h": int(adopts)}
            if not await self._send_to(owner, encode_forward(opening)):
                error = EngineError(EngineError.UNKNOWN_SID, detail="its process is not reachable")
                raise RelayRefused(error.status, error.body())
            with anyio.move_on_after(UPGRADE_TIMEOUT):
                await reply.done.wait()
            del self._waiting[rid]
            if not reply.done.is_set():
                error = EngineError(EngineError.UNKNOWN_SID, detail="its process did not answer")
                raise RelayRefused(error.status, error.body())
            if reply.status != 101:
                raise RelayRefused(reply.status, reply.body)
            # An owner that will say, after the "5", whether it hands over
            # answers so; with one that will not, the relay never pauses.
            edge.adopts = adopts and reply.body == _HANDS_OVER
            await send({"type": "websocket.accept"})
            self._relayed += 1
            await edge.run(receive, send, self._send_to, self.timeout)
        finally:
            self._waiting.pop(rid, None)
            del self._edges[rid]
        if edge.adoption is not None:
            self._adopted += 1
            await serve_adoption(self._engine, scope, receive, send, sid, b64, edge.adoption)

    def _open_relay(self, head: dict[str, Any]) -> None:
        """An edge asks to relay the upgrade of one of our sessions (never blocks)."""
        tg = self._tg
        key = (head["f"], head["r"])
        if tg is None or key in self._owned:
            return  # not running, or a repeat
        try:
            session = session_for_upgrade(self._engine, head["s"])
        except EngineError as exc:
            tg.start_soon(self._reply, key, exc.status, b"application/json", exc.body())
            return
        relay = self._owned[key] = OwnerRelay(*key)
        self._relays_served += 1
        serve = partial(
            serve_upgrade,
            session,
            b64=bool(head.get("b")),
            max_payload=self._engine.options.max_payload,
            hand_over=partial(self._hand_over, key) if head.get("h") else None,
        )

        async def run() -> None:
            try:
                answer = _HANDS_OVER if head.get("h") else b""
                await self._reply(key, 101, b"text/plain", answer)
                await relay.serve(session, serve, self._send_to)
            finally:
                del self._owned[key]

        tg.start_soon(run)

    async def _hand_over(self, key: tuple[str, int], session: EngineSession) -> bool:
        """The relayed websocket from ``key``'s edge has upgraded ``session``:
        hand it over if it is still held (see :func:`.adopt.hand_over`)."""
        handed = await hand_over(self._send_to, key, session)
        self._handed_over += handed
        return handed

    async def _tell(self, node: str, data: bytes) -> None:
        await self._send_to(node, data)

    async def _reply(
        self, key: tuple[str, int], status: int, content_type: bytes, body: bytes
    ) -> bool:
        """Send the reply to the request ``key``; whether its asker got it."""
        asker, rid = key
        reply = {"k": "reply", "r": rid, "st": status, "c": content_type.decode("latin-1")}
        return await self._send_to(asker, encode_forward(reply, body))
