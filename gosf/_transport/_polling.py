"""HTTP long-polling: the handshake GET, the data GETs and the data POSTs.

A GET or POST whose session another process of the cluster holds (the sid
names its owner, see :func:`~gosf._transport._engine.owner_of`) is handed to
the engine's forwarder, which has the owner answer it; :func:`poll` and
:func:`deliver_payload` are the halves both paths share.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import anyio

from ..protocol.engineio import Packet, PacketType, decode_payload, encode_payload
from ..protocol.errors import RemoteProtocolError
from ..protocol.session import CloseReason
from ._engine import EngineServer, EngineSession, Flush, OutItem, release_flushes
from ._http import (
    EngineError,
    Receive,
    Scope,
    Send,
    cors_headers,
    header,
    send_response,
)

__all__ = (
    "client_left",
    "deliver_payload",
    "handle_polling",
    "poll",
    "posting",
    "read_body",
    "session_for_polling",
    "unless_gone",
)

log = logging.getLogger("gosf.engineio")

MAX_PACKETS_PER_POLL = 16
"""Most packets one GET response carries; the rest wait for the next GET.

python-engineio's client (python-socketio's) refuses a response of more and
drops the connection (``Payload.max_decode_packets``); socket.io-client takes
any number, and one more round trip per 16 packets costs it little."""

UPGRADE_GRACE = 0.1
"""Longest wait, in seconds, of a GET that arrives once the client was told
``3probe``, for the upgrade to finish or be given up.

A stock client sends no GET then (it pauses polling to upgrade) unless the
NOOP that released its last one overtook the ``3probe``; a GET sent after its
``5`` may get here first, over its own connection. The reference server
answers the first kind with a NOOP at its next check for a fast upgrade (as
often as this) and refuses the second: it has read the ``5`` by then. Waiting
this long does both. A POST is not held back: a stock client in the middle of
an upgrade waits for its POST before it sends the ``5``."""

_NOOP = Packet(PacketType.NOOP)
_CLOSE = Packet(PacketType.CLOSE)


async def handle_polling(
    engine: EngineServer,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    protocol: int,
    sid: str | None,
    b64: bool,
) -> None:
    """Serve one polling request whose query has already been validated.

    Raises:
        EngineError: the request is refused; the caller answers it.
    """
    method = scope["method"]
    cors = cors_headers(engine.options, scope)
    if sid is None:
        if method != "GET":
            raise EngineError(EngineError.BAD_HANDSHAKE_METHOD)
        new = await engine.open_session(
            protocol=protocol, transport="polling", b64=b64, scope=scope
        )
        opening, kind = encode_payload([new.open_packet()], protocol, b64=b64)
        await send_response(send, 200, opening, content_type=kind.encode(), headers=cors)
        return
    remote = engine.remote_owner(sid)
    if remote is not None:
        if method not in ("GET", "POST"):
            raise EngineError(EngineError.BAD_REQUEST, detail=f"method {method} not allowed")
        owner, forwarder = remote
        await forwarder.forward(scope, receive, send, owner=owner, sid=sid)
        return
    session = session_for_polling(engine, sid)
    if method == "GET":
        result = await poll(session, partial(client_left, receive))
        if result is None:
            return  # the client went away; whatever is queued stays queued
        body, content_type, items = result
        try:
            await send_response(send, 200, body, content_type=content_type, headers=cors)
        finally:
            release_flushes(items)
    elif method == "POST":
        max_payload = engine.options.max_payload
        with posting(session):
            data = await read_body(receive, max_payload)
            if data is None:
                return  # the client went away before it finished sending
            await deliver_payload(session, data, header(scope, b"content-type"), max_payload)
        await send_response(send, 200, b"ok", content_type=b"text/html", headers=cors)
    else:
        raise EngineError(EngineError.BAD_REQUEST, detail=f"method {method} not allowed")


def session_for_polling(engine: EngineServer, sid: str) -> EngineSession:
    """The session ``sid`` of this process, if a polling request may use it.

    Raises:
        EngineError: no such session here, or it uses another transport.
    """
    session = engine.sessions.get(sid)
    if session is None or (session.closed and not len(session.outbox)):
        # A closed session is reachable only while its client has packets to
        # fetch (a graceful close's last ones); otherwise it is gone, as it
        # is from the reference server the moment it closes.
        raise EngineError(EngineError.UNKNOWN_SID)
    if session.transport != "polling":
        raise _other_transport()
    return session


def _other_transport() -> EngineError:
    return EngineError(EngineError.BAD_REQUEST, detail="session uses another transport")


async def _settled_upgrade(session: EngineSession) -> bool:
    """Wait for the upgrade of a session whose client was told ``3probe`` to
    finish, for :data:`UPGRADE_GRACE` at most; whether polling still carries
    the session (no websocket took it over)."""
    probed = session.upgrade_probed
    if probed is not None:
        with anyio.move_on_after(UPGRADE_GRACE):
            await probed.wait()
    return session.transport == "polling"


async def client_left(receive: Receive) -> None:
    """Return once the HTTP client has gone (``http.disconnect``)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_gone(
    wait: Callable[[], Awaitable[Any]], gone: Callable[[], Awaitable[None]]
) -> bool:
    """Await ``wait()``; cut short when ``gone()`` returns first. Whether ``wait()`` finished."""
    finished = False
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await gone()
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        await wait()
        finished = True
        tg.cancel_scope.cancel()
    return finished


async def poll(
    session: EngineSession, client_gone: Callable[[], Awaitable[None]]
) -> tuple[bytes, bytes, list[OutItem]] | None:
    """Wait for packets for a polling GET: ``(body, content type, items taken)``.

    ``None`` when ``client_gone()`` returns first (the packets stay queued).
    The caller sends the body, then sets the flush markers of the items
    (:func:`release_flushes`), whether sending worked or not.

    A GET is released with a NOOP, whatever is queued, once the client was
    told ``3probe`` (it pauses polling to upgrade) or its websocket took the
    session over: what is queued is the websocket's. A GET of a session that
    ends while it waits gets the CLOSE, or a NOOP when the client itself
    closed the session (with a POST), as the reference server answers.

    Raises:
        EngineError: a GET is already waiting for this session (a broken
            client: the session is closed, as the reference server does), or
            a websocket took the session over before this GET was looked at.
    """
    if session.polling_get_active:
        session.close(CloseReason.OVERLAPPING_GET, discard=True)
        raise EngineError(EngineError.BAD_REQUEST, detail="overlapping GET requests")
    session.polling_get_active = True
    items: list[OutItem] = []
    try:
        if session.upgrade_probed is not None:
            polling: list[bool] = []

            async def settle() -> None:
                polling.append(await _settled_upgrade(session))

            if not await unless_gone(settle, client_gone):
                return None
            if not polling[0]:
                raise _other_transport()
        outbox = session.outbox
        while True:
            if session.upgrade_probed is not None or session.transport != "polling":
                packets = [_NOOP]
                break
            if len(outbox) or session.closed:
                items = outbox.drain(MAX_PACKETS_PER_POLL)
                packets = [item for item in items if not isinstance(item, Flush)]
                if not packets:
                    ended = session.closed and session.close_reason is not CloseReason.CLIENT_CLOSE
                    packets = [_CLOSE] if ended else [_NOOP]
                elif len(packets) > 1 and packets[-1].type is PacketType.CLOSE:
                    # The CLOSE goes in a response of its own, as the reference
                    # server does: socket.io-client handles the packets before
                    # it on the next tick, and would otherwise see the
                    # transport close first.
                    outbox.putback([packets.pop()])
                break
            # Woken by packets, by the probe, by the websocket taking over or
            # by the session's end (a stale wake-up finds none: wait again).
            if not await unless_gone(outbox.wait, client_gone):
                return None
    finally:
        session.polling_get_active = False
    try:
        body, content_type = encode_payload(packets, session.protocol, b64=session.b64)
    except BaseException:
        release_flushes(items)
        raise
    return body, content_type.encode(), items


async def read_body(receive: Receive, max_payload: int) -> bytes | None:
    """The request body, at most ``max_payload + 1`` bytes of it; ``None`` if the client left.

    A result longer than ``max_payload`` means the body is too large (the
    rest was not read).
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > max_payload:
            return b"".join(chunks)[: max_payload + 1]
        if not message.get("more_body", False):
            return b"".join(chunks)


async def deliver_payload(
    session: EngineSession, data: bytes, content_type: str | None, max_payload: int
) -> None:
    """Hand the packets of a POST body to ``session``.

    Raises:
        EngineError: the body is too large (413) or not a valid payload (400),
            and the session is closed; or a websocket took the session over
            before the body was looked at (400, the session goes on).
    """
    if session.transport != "polling":  # the websocket took over while the body came
        raise _other_transport()
    if len(data) > max_payload:
        session.close(CloseReason.PAYLOAD_TOO_LARGE, discard=True)
        raise EngineError(EngineError.BAD_REQUEST, status=413, detail="payload too large")
    try:
        for packet in decode_payload(data, session.protocol, content_type=content_type):
            if session.closed:
                break
            await session.receive(packet)
    except RemoteProtocolError as exc:
        log.info("session %s: bad payload: %s", session.sid, exc)
        session.close(CloseReason.PARSE_ERROR, discard=True)
        raise EngineError(EngineError.BAD_REQUEST, detail=str(exc)) from None


@contextmanager
def posting(session: EngineSession) -> Iterator[None]:
    """Mark a POST in progress for ``session`` for the duration of the block.

    Raises:
        EngineError: another POST is in progress (a broken client: the
            session is closed, as the reference server does).
    """
    if session.polling_post_active:
        session.close(CloseReason.OVERLAPPING_POST, discard=True)
        raise EngineError(EngineError.BAD_REQUEST, detail="overlapping POST requests")
    session.polling_post_active = True
    try:
        yield
    finally:
        session.polling_post_active = False
