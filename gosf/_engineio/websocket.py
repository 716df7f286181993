"""The websocket transport: new sessions, and the polling → websocket upgrade.

A websocket connection is served by one ASGI call, which reads: it feeds the
session. A session born on the websocket lives in that call (under its
cancel scope; its tasks run in a group of their own, opened while it has
some); an upgraded one moves into it from the task it had while polling
(see ``EngineSession.host``). Writes go through the session's
:class:`~gosf._engineio.wswriter.WebSocketWriter`. When the session
closes, its last packets are written (a graceful close ends with a CLOSE
packet), then the websocket is closed; a client that reads none of it within
pingTimeout has its TCP connection aborted instead (see ``_abort``). One task
per idle client: the ASGI server's.

The probe dance and which websocket may take a session over are the session
machine's rules (``gosf/protocol/session.py``); this module reads and writes
the frames.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import anyio

from ..protocol.engineio import TYPE_DIGITS, Packet, decode_ws, encode_ws
from ..protocol.errors import PayloadTooLarge, RemoteProtocolError
from ..protocol.session import CloseReason, Transport, WebSocketVerdict
from .abort import find_abort
from .http import Receive, Scope, Send, websocket_connected
from .server import EngineServer
from .session import EngineSession
from .wswriter import WebSocketWriter

__all__ = ("open_websocket_session", "serve_adopted", "serve_upgrade")

log = logging.getLogger("gosf.engineio")

_CLOSE_NORMAL = 1000
_CLOSE_POLICY = 1008
_CLOSE_TOO_BIG = 1009


def open_websocket_session(
    engine: EngineServer,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    protocol: int,
    b64: bool,
) -> Awaitable[None]:
    """What serves a websocket that opens a new session, to be awaited
    (the ``websocket.connect`` message not yet received).

    The session lives in this ASGI call, which reads it under the session's
    cancel scope (no task of gosf's, nor task group, per idle client). A
    plain function, so that the call holds no suspended frame of it (a fast
    path: see "Fast paths" in docs/performance.md).

    Raises:
        ServerNotRunning: the server is not running.
    """
    born = engine.new_session(protocol=protocol, transport="websocket", b64=b64, scope=scope)
    reader = _Reader(born, receive, send, engine.options.max_payload, born=True)
    return reader.serve()


async def serve_adopted(
    engine: EngineServer,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    sid: str,
    protocol: int,
    b64: bool,
    messages: Sequence[str | bytes],
    queued: Sequence[Packet],
) -> None:
    """Serve, on this websocket (accepted, its upgrade done), the session
    ``sid`` that the process which made it handed over while it was held:
    the layer above is told of it here, then handed ``messages`` (what the
    client sent meanwhile); ``queued`` goes to the client first.

    Raises:
        ServerNotRunning: the server is not running.
        ValueError: this process has a session ``sid`` already.
    """
    adopted = engine.new_session(
        protocol=protocol, transport="websocket", b64=b64, scope=scope, sid=sid
    )
    reader = _Reader(adopted, receive, send, engine.options.max_payload)
    reader.adopted = (list(messages), list(queued))
    await reader.serve()


async def serve_upgrade(
    session: EngineSession,
    receive: Receive,
    send: Send,
    *,
    b64: bool,
    max_payload: int,
    connect: bool = False,
    hand_over: Callable[[EngineSession], Awaitable[bool]] | None = None,
) -> None:
    """Accept a websocket that upgrades ``session`` (polling until now) and serve it.

    ``connect``: receive the ASGI ``websocket.connect`` message first.
    ``hand_over``: the websocket is relayed from another process, which can
    carry the session on itself; called once the upgrade is done, it says
    whether the session went there (then this call ends).
    """
    if connect and not await websocket_connected(receive):
        return
    if session.websocket_request() is not WebSocketVerdict.PROBE:
        # A websocket carries the session already, or is taking it over, or
        # it has just closed: as the reference server does, this one is
        # accepted and closed (a refused handshake would surface in a stock
        # client as an error of its own) and the first one goes on.
        await send({"type": "websocket.accept"})
        await _close(send, _CLOSE_POLICY)
        return
    if await _upgrade(session, receive, send, max_payload):
        if hand_over is not None and await hand_over(session):
            return
        session.b64 = b64  # from now on frames follow this transport's capability
        # The session's life moves into this call, as if it had begun here.
        reader = _Reader(session, receive, send, max_payload)
        await reader.serve(take_over=True)


async def _read_frame(receive: Receive, max_payload: int) -> str | bytes | None:
    """The next frame's payload, or ``None`` once the client is gone.

    Raises:
        PayloadTooLarge: the frame is larger than ``max_payload``.
    """
    message = await receive()
    if message["type"] != "websocket.receive":
        return None
    text: str | None = message.get("text")
    data: str | bytes = text if text is not None else message.get("bytes") or b""
    if len(data) > max_payload:
        raise PayloadTooLarge(f"message of {len(data)} bytes exceeds maxPayload")
    return data


async def _upgrade(session: EngineSession, receive: Receive, send: Send, max_payload: int) -> bool:
    """The probe dance on a websocket the session is UPGRADING to; whether it
    carries the session now. Otherwise the websocket is closed and the
    session goes on polling."""
    try:
        await send({"type": "websocket.accept"})
        with session.upgrade_scope():  # cancelled when the machine gives up (its deadline)
            while session.transport is Transport.POLLING:
                frame = await _read_frame(receive, max_payload)
                if frame is None:
                    return False
                reply = session.probe(decode_ws(frame, session.protocol))
                if reply is not None:  # the probe's pong
                    text = encode_ws(reply, session.protocol)
                    await send({"type": "websocket.send", "text": text})
                    session.probe_answered()
            return not session.closed
        log.info("session %s: upgrade given up (timed out, or the session closed)", session.sid)
    except RemoteProtocolError as exc:
        log.info("session %s: upgrade failed: %s", session.sid, exc)
    await _close(send, _CLOSE_POLICY)
    return False


class _Reader:
    """Reads one websocket into its session; says how to close it afterwards.

    ``born``: the session is new on this websocket, which :meth:`read`
    accepts and opens first.
    """

    __slots__ = (
        "adopted",
        "born",
        "client_gone",
        "code",
        "max_payload",
        "receive",
        "send",
        "session",
    )

    def __init__(
        self,
        session: EngineSession,
        receive: Receive,
        send: Send,
        max_payload: int,
        *,
        born: bool = False,
    ) -> None:
        self.session = session
        self.receive = receive
        self.send = send
        self.max_payload = max_payload
        self.born = born
        self.code = _CLOSE_NORMAL
        self.client_gone = False
        self.adopted: tuple[list[str | bytes], list[Packet]] | None = None
        """A session handed over by another process: what it kept back and queued."""

    def send_frame(self, packet: Packet) -> Awaitable[None]:
        """Write one packet: the ASGI ``send``'s awaitable, returned as it is."""
        data = packet.data
        if type(data) is str:  # the hot path: what encode_ws does for text
            return self.send({"type": "websocket.send", "text": TYPE_DIGITS[packet.type] + data})
        frame = encode_ws(packet, self.session.protocol, b64=self.session.b64)
        if isinstance(frame, str):
            return self.send({"type": "websocket.send", "text": frame})
        return self.send({"type": "websocket.send", "bytes": frame})

    async def serve(self, *, take_over: bool = False) -> None:
        """Host the session and feed it until the client goes, sends bad
        input or the session closes; then the session ends and the websocket
        is closed (``EngineSession.host``, in its two halves, around the
        reading in this frame: an idle client holds one suspended frame of
        gosf's, this one). ``take_over``: the session began with long-polling."""
        session = self.session
        reading = session.begin_hosting(take_over=take_over)
        if reading is None:  # closed, or taken, before it could move here
            await self.close()
            return
        finished = False
        try:
            with reading:  # closing the session cancels this reading
                if not self.born or await self._open():
                    await self._begin_reading(reading)
                    receive, max_payload = self.receive, self.max_payload
                    on_message = session.handler.on_message
                    machine = session.machine
                    writer = session.writer
                    assert writer is not None
                    try:
                        if machine.queued and not writer.writing:
                            await writer.write_queued()  # what opening it queued
                        while not session.closed:
                            message = await receive()
                            if message["type"] != "websocket.receive":
                                self.client_gone = True
                                session.transport_closed()
                                break
                            frame: str | bytes | None = message.get("text")
                            if frame is None:
                                frame = message.get("bytes") or b""
                            if len(frame) > max_payload:
                                raise PayloadTooLarge(
                                    f"message of {len(frame)} bytes exceeds maxPayload"
                                )
                            writer.in_message = True
                            try:
                                if type(frame) is str and frame[:1] == "4":
                                    # The fast path, a text MESSAGE (both
                                    # protocols) on an open session: straight to
                                    # the layer above, which is what the
                                    # machine's receive() would decide.
                                    await on_message(session, frame[1:])
                                else:
                                    await session.receive(decode_ws(frame, session.protocol))
                            finally:
                                writer.in_message = False
                            if machine.queued and not writer.writing:
                                await writer.write_queued()  # a writer busy meanwhile drains it all
                    except RemoteProtocolError as exc:
                        self._bad_input(exc)
            finished = True
        finally:
            await session.end_hosting(reading, self.close, take_over=take_over, finished=finished)

    async def _begin_reading(self, reading: anyio.CancelScope) -> None:
        """Attach the websocket to the session, and open an upgraded held
        session or an adopted one.

        This task serves this client only: after each message it writes what
        it queued (the CONNECT answer, say), so a writer task started
        meanwhile finds nothing to do and ends. (It does not set
        current_session: what it sends through send() is queued, which costs
        one writer task, where setting the context variable would add to
        every idle client's memory.)
        """
        session = self.session
        session.attach_websocket(WebSocketWriter(session, self.send_frame, reading, self.abort))
        if self.adopted is not None:
            await self._adopt(self.adopted)
        elif session.machine.held:
            await session.open_held()  # upgraded while held: it opens here

    def _bad_input(self, exc: RemoteProtocolError) -> None:
        session = self.session
        log.info("session %s: closing on bad input: %s", session.sid, exc)
        too_big = isinstance(exc, PayloadTooLarge)
        self.code = _CLOSE_TOO_BIG if too_big else _CLOSE_POLICY
        session.bad_input(CloseReason.PAYLOAD_TOO_LARGE if too_big else CloseReason.PARSE_ERROR)

    async def _open(self) -> bool:
        """Accept the websocket of a session born on it and send the OPEN
        packet; ``False``: the client went away first."""
        session = self.session
        if not await websocket_connected(self.receive):
            self.client_gone = True
            session.transport_closed()
            return False
        await self.send({"type": "websocket.accept"})
        await session.server.start_session(session)
        await self.send(
            {"type": "websocket.send", "text": encode_ws(session.open_packet(), session.protocol)}
        )
        return True

    async def _adopt(self, adopted: tuple[list[str | bytes], list[Packet]]) -> None:
        """Open a session handed over by another process, as if it began here."""
        session = self.session
        messages, queued = adopted
        self.adopted = None
        if queued:
            session.send_nowait(queued)
        await session.server.start_session(session)
        for data in messages:
            await session.handler.on_message(session, data)

    def abort(self) -> None:
        """Drop the websocket's TCP connection at once (see ``_abort``)."""
        abort = find_abort(self.send, self.session.scope)
        if abort is None:
            log.warning(
                "session %s: cannot abort its connection under this ASGI server; "
                "a write to it may wait for as long as the client stays",
                self.session.sid,
            )
        else:
            abort()

    async def close(self) -> None:
        """Detach the websocket from the session and close it, unless the
        client is gone or writing to it failed (the session bounds this)."""
        writer = self.session.writer
        failed = writer is not None and writer.failed
        if writer is not None:
            self.session.detach_websocket(writer)
        if not self.client_gone and not failed:
            await _close(self.send, self.code)


async def _close(send: Send, code: int) -> None:
    try:
        await send({"type": "websocket.close", "code": code})
    except Exception:  # the ASGI server may already consider it closed
        log.debug("websocket already closed", exc_info=True)
