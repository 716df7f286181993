"""The websocket transport: new sessions, and the polling → websocket upgrade.

A websocket connection is served by one ASGI call, which reads: it feeds the
session. The session's own task writes what other tasks queue (a handler
writes its own ack). When the session closes, that task sends what was
already queued (a graceful close ends with a CLOSE packet) and cancels the
reading; the ASGI call then closes the websocket. Two tasks per client, the
ASGI server's and the session's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

import anyio

from ..protocol.engineio import TYPE_DIGITS, Packet, PacketType, decode_ws, encode_ws
from ..protocol.errors import RemoteProtocolError
from ._engine import EngineServer, EngineSession
from ._http import Receive, Scope, Send

__all__ = ("serve_websocket",)

log = logging.getLogger("gosf.engineio")

UPGRADE_TIMEOUT = 10.0
"""Seconds a client has to finish the upgrade after opening the websocket."""

_CLOSE_NORMAL = 1000
_CLOSE_POLICY = 1008
_CLOSE_TOO_BIG = 1009


async def serve_websocket(
    engine: EngineServer,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    protocol: int,
    b64: bool,
    session: EngineSession | None,
) -> None:
    """Serve an accepted-to-be websocket: a new session, or the upgrade of ``session``."""
    await send({"type": "websocket.accept"})
    if session is None:
        session = await engine.open_session(
            protocol=protocol, transport="websocket", b64=b64, scope=scope
        )
        await send({"type": "websocket.send", "text": encode_ws(session.open_packet(), protocol)})
    elif await _upgrade(session, receive, send, engine.options.max_payload):
        session.b64 = b64  # from now on frames follow this transport's capability
    else:
        return
    await _pump(session, receive, send, engine.options.max_payload)


async def _read_frame(receive: Receive, max_payload: int) -> str | bytes | None:
    """The next frame's payload, or ``None`` once the client is gone.

    Raises:
        RemoteProtocolError: the frame is larger than ``max_payload``.
    """
    message = await receive()
    if message["type"] != "websocket.receive":
        return None
    text: str | None = message.get("text")
    data: str | bytes = text if text is not None else message.get("bytes") or b""
    if len(data) > max_payload:
        raise RemoteProtocolError(f"message of {len(data)} bytes exceeds maxPayload")
    return data


async def _upgrade(session: EngineSession, receive: Receive, send: Send, max_payload: int) -> bool:
    # The probe dance: client "2probe" -> server "3probe"; the pending polling
    # GET is answered with a NOOP so the client can pause polling; client "5"
    # -> the session switches to this websocket.
    session.upgrading = True
    try:
        with anyio.move_on_after(UPGRADE_TIMEOUT):
            frame = await _read_frame(receive, max_payload)
            if frame is None:
                return False
            packet = decode_ws(frame, session.protocol)
            if packet.type is not PacketType.PING or packet.data != "probe":
                raise RemoteProtocolError("expected a ping probe")
            await send(
                {
                    "type": "websocket.send",
                    "text": encode_ws(Packet(PacketType.PONG, "probe"), session.protocol),
                }
            )
            session.outbox.wake()
            while True:
                frame = await _read_frame(receive, max_payload)
                if frame is None:
                    return False
                packet = decode_ws(frame, session.protocol)
                if packet.type is PacketType.UPGRADE:
                    session.transport = "websocket"
                    session.outbox.wake()
                    return not session.closed
                if packet.type is not PacketType.NOOP:
                    raise RemoteProtocolError("expected the upgrade packet")
        log.info("session %s: upgrade timed out", session.sid)
    except RemoteProtocolError as exc:
        log.info("session %s: upgrade failed: %s", session.sid, exc)
    finally:
        session.upgrading = False
    await _close(send, _CLOSE_POLICY)
    return False


async def _pump(session: EngineSession, receive: Receive, send: Send, max_payload: int) -> None:
    # This task reads; the session's own task writes what other tasks queue
    # (whoever queues packets while nobody is writing writes them itself: a
    # handler's ack goes out without a hand-over). Once the session has closed
    # and its writer has written the last packets, the writer cancels this
    # task's reading, and the websocket is closed here.
    code = _CLOSE_NORMAL
    client_gone = False
    on_message = session.handler.on_message
    protocol, b64 = session.protocol, session.b64

    def send_frame(packet: Packet) -> Awaitable[None]:
        # A plain function returning the ASGI send's awaitable: one
        # coroutine less per frame.
        data = packet.data
        if type(data) is str:  # the hot path: what encode_ws does for text
            return send({"type": "websocket.send", "text": TYPE_DIGITS[packet.type] + data})
        frame = encode_ws(packet, protocol, b64=b64)
        if isinstance(frame, str):
            return send({"type": "websocket.send", "text": frame})
        return send({"type": "websocket.send", "bytes": frame})

    with anyio.CancelScope() as reading:
        session.attach_websocket(send_frame, reading)
        try:
            while not session.closed:
                message = await receive()
                if message["type"] != "websocket.receive":
                    client_gone = True
                    session.close("transport close", discard=True)
                    break
                frame: str | bytes | None = message.get("text")
                if frame is None:
                    frame = message.get("bytes") or b""
                if len(frame) > max_payload:
                    raise RemoteProtocolError(f"message of {len(frame)} bytes exceeds maxPayload")
                if type(frame) is str and frame[:1] == "4":
                    # A text MESSAGE (both protocols), the hot path: straight
                    # to the layer above, as EngineSession.receive would.
                    await on_message(session, frame[1:])
                else:
                    await session.receive(decode_ws(frame, session.protocol))
        except RemoteProtocolError as exc:
            log.info("session %s: closing on bad input: %s", session.sid, exc)
            code = _CLOSE_TOO_BIG if "maxPayload" in str(exc) else _CLOSE_POLICY
            session.close("parse error", discard=True)
    try:
        await session.wait_writer_done()
    finally:
        session.detach_websocket()
    if not client_gone and not session.transport_failed:
        await _close(send, code)


async def _close(send: Send, code: int) -> None:
    try:
        await send({"type": "websocket.close", "code": code})
    except Exception:  # the ASGI server may already consider it closed
        log.debug("websocket already closed", exc_info=True)
