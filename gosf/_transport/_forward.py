"""Forwarding: polling requests for a session that another process holds.

Without sticky sessions, the HTTP requests of one long-polling client land
on any process of the cluster (``hypercorn --workers N``, a round-robin load
balancer in front of several machines). Every sid names the process that
made it (``<node id>.<random>``, see :func:`~._engine.owner_of`), so the
process a GET or POST lands on, when it does not hold the session, sends it
to that owner as a direct message through the broker
(:meth:`gosf.brokers.Broker.send_to`); the owner serves it exactly as it
serves its own requests (same checks, same long-poll wait, same flush
markers) and sends back the response, which the first process passes on.

Messages (version 1): ``header b"\\n" body``, the header a JSON object::

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
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
from anyio.abc import TaskGroup, TaskStatus

from ._engine import EngineServer, OutItem, release_flushes
from ._http import EngineError, Receive, Scope, Send, cors_headers, header, send_response
from ._polling import deliver_payload, poll, posting, read_body, session_for_polling

__all__ = ("Forwarder", "decode_forward", "encode_forward")

log = logging.getLogger("gosf.engineio")

VERSION = 1

SendTo = Callable[[str, bytes], Awaitable[bool]]
"""``send_to(node_id, data)``: a broker's direct message; whether ``node_id`` got it."""


def encode_forward(head: dict[str, Any], body: bytes = b"") -> bytes:
    """One forwarding message (the version is added to ``head``)."""
    return b"".join((orjson.dumps({"v": VERSION, **head}), b"\n", body))


def decode_forward(data: bytes) -> tuple[dict[str, Any], bytes]:
    """``(header, body)`` of a forwarding message.

    Raises:
        ValueError: ``data`` is not a forwarding message of this version.
    """
    newline = data.find(b"\n")
    if newline < 0:
        raise ValueError("no header")
    try:
        head = orjson.loads(data[:newline])
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"bad header: {exc}") from None
    if not isinstance(head, dict) or head.get("v") != VERSION:
        raise ValueError("not a header of this version")
    kind, rid = head.get("k"), head.get("r")
    if kind not in ("get", "post", "cancel", "reply"):
        raise ValueError(f"unknown kind {kind!r}")
    if not isinstance(rid, int) or isinstance(rid, bool):
        raise ValueError("the request id must be an integer")
    if kind != "reply" and not isinstance(head.get("f"), str):
        raise ValueError("the asker's node id must be a string")
    if kind in ("get", "post") and not isinstance(head.get("s"), str):
        raise ValueError("the sid must be a string")
    if kind == "reply" and not (isinstance(head.get("st"), int) and isinstance(head.get("c"), str)):
        raise ValueError("a reply needs a status and a content type")
    if head.get("c") is not None and not isinstance(head.get("c"), str):
        raise ValueError("the content type must be a string or null")
    return head, data[newline + 1 :]


class _Reply:
    __slots__ = ("body", "content_type", "done", "status")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.status = 500
        self.content_type = b""
        self.body = b""


class Forwarder:
    """Forwards this process's polling requests for other processes' sessions,
    and serves theirs for its own sessions.

    :meth:`run` lives in the server's task group (the requests it serves for
    other processes run in it); :meth:`inbox` is the broker's ``inbox``.
    """

    def __init__(self, engine: EngineServer, send_to: SendTo) -> None:
        self._engine = engine
        self._send_to = send_to
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Reply] = {}  # requests of ours, by id
        self._serving: dict[tuple[str, int], anyio.Event] = {}  # theirs: set = cancelled
        self._tg: TaskGroup | None = None

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
            self._tg = None
            for cancelled in self._serving.values():
                cancelled.set()

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
            gone = False
            with anyio.move_on_after(self.timeout):
                async with anyio.create_task_group() as tg:
                    if method == "GET":

                        async def watch() -> None:
                            nonlocal gone
                            while (await receive())["type"] != "http.disconnect":
                                pass
                            gone = True
                            tg.cancel_scope.cancel()

                        tg.start_soon(watch)
                    await reply.done.wait()
                    tg.cancel_scope.cancel()
            if not reply.done.is_set():
                with anyio.CancelScope(shield=True):
                    cancel = {"k": "cancel", "f": self._engine.node_id, "r": rid}
                    await self._send_to(owner, encode_forward(cancel))
                if gone:
                    return
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
        self._tg.start_soon(self._serve, key, head, body, cancelled)

    async def _serve(
        self, key: tuple[str, int], head: dict[str, Any], body: bytes, cancelled: anyio.Event
    ) -> None:
        asker, rid = key
        items: list[OutItem] = []
        try:
            try:
                session = session_for_polling(self._engine, head["s"])
                if head["k"] == "get":
                    result = await poll(session, cancelled.wait)
                    if result is None:
                        return  # the asker's client went away
                    payload, content_type, items = result
                else:
                    max_payload = self._engine.options.max_payload
                    with posting(session):
                        await deliver_payload(session, body, head.get("c"), max_payload)
                    payload, content_type = b"ok", b"text/html"
                status = 200
            except EngineError as exc:
                status, content_type, payload = exc.status, b"application/json", exc.body()
            reply = {"k": "reply", "r": rid, "st": status, "c": content_type.decode("latin-1")}
            if not await self._send_to(asker, encode_forward(reply, payload)):
                log.info("session %s: the process that asked (%s) is gone", head["s"], asker)
        finally:
            release_flushes(items)
            self._serving.pop(key, None)
