"""HTTP long-polling: the handshake GET, the data GETs and the data POSTs."""

from __future__ import annotations

import logging

import anyio

from ..protocol.engineio import Packet, PacketType, decode_payload, encode_payload
from ..protocol.errors import RemoteProtocolError
from ._engine import EngineServer, EngineSession, Flush, OutItem, release_flushes
from ._http import (
    EngineError,
    Receive,
    Scope,
    Send,
    cors_headers,
    header,
    send_error,
    send_response,
)

__all__ = ("handle_polling",)

log = logging.getLogger("gosf.engineio")

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
        body, content_type = encode_payload([new.open_packet()], protocol, b64=b64)
        await send_response(send, 200, body, content_type=content_type.encode(), headers=cors)
        return

    session = engine.sessions.get(sid)
    if session is None:
        raise EngineError(EngineError.UNKNOWN_SID)
    if session.transport != "polling":
        raise EngineError(EngineError.BAD_REQUEST, detail="session uses another transport")
    if method == "GET":
        await _poll(session, receive, send, cors)
    elif method == "POST":
        await _post(session, engine.options.max_payload, scope, receive, send, cors)
    else:
        raise EngineError(EngineError.BAD_REQUEST, detail=f"method {method} not allowed")


async def _poll(
    session: EngineSession, receive: Receive, send: Send, cors: list[tuple[bytes, bytes]]
) -> None:
    if session.polling_get_active:
        # Two GETs at once means a broken client: the reference server closes it.
        session.close("overlapping GET requests", discard=True)
        raise EngineError(EngineError.BAD_REQUEST, detail="overlapping GET requests")
    session.polling_get_active = True
    try:
        if not session.upgrading:
            gone = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope, gone)
                await session.outbox.wait()
                tg.cancel_scope.cancel()
            if gone.is_set():
                return  # the client went away; whatever is queued stays queued
        items: list[OutItem] = [] if session.upgrading else session.outbox.drain()
        packets = [item for item in items if not isinstance(item, Flush)]
        if session.upgrading:
            packets = [_NOOP]
        elif not packets:
            packets = [_CLOSE] if session.closed else [_NOOP]
        elif len(packets) > 1 and packets[-1].type is PacketType.CLOSE:
            # The CLOSE goes in a response of its own, as the reference server
            # does: socket.io-client handles the packets before it on the next
            # tick, and would otherwise see the transport close first.
            session.outbox.putback([packets.pop()])
    finally:
        session.polling_get_active = False
    try:
        body, content_type = encode_payload(packets, session.protocol, b64=session.b64)
        await send_response(send, 200, body, content_type=content_type.encode(), headers=cors)
    finally:
        release_flushes(items)


async def _cancel_on_disconnect(
    receive: Receive, scope: anyio.CancelScope, gone: anyio.Event
) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            scope.cancel()
            return


async def _post(
    session: EngineSession,
    max_payload: int,
    scope: Scope,
    receive: Receive,
    send: Send,
    cors: list[tuple[bytes, bytes]],
) -> None:
    if session.polling_post_active:
        session.close("overlapping POST requests", discard=True)
        raise EngineError(EngineError.BAD_REQUEST, detail="overlapping POST requests")
    session.polling_post_active = True
    try:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_payload:
                session.close("payload too large", discard=True)
                await send_error(
                    send,
                    EngineError(EngineError.BAD_REQUEST, status=413, detail="payload too large"),
                    cors,
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            packets = decode_payload(
                b"".join(chunks), session.protocol, content_type=header(scope, b"content-type")
            )
            for packet in packets:
                if session.closed:
                    break
                await session.receive(packet)
        except RemoteProtocolError as exc:
            log.info("session %s: bad payload: %s", session.sid, exc)
            session.close("parse error", discard=True)
            await send_error(send, EngineError(EngineError.BAD_REQUEST, detail=str(exc)), cors)
            return
    finally:
        session.polling_post_active = False
    await send_response(send, 200, b"ok", content_type=b"text/html", headers=cors)
