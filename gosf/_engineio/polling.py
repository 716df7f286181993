"""HTTP long-polling: the handshake GET, the data GETs and the data POSTs.

A GET or POST whose session another process of the cluster holds (the sid
names its owner, see :func:`~gosf._engineio.server.owner_of`) is handed to
the engine's forwarder, which has the owner answer it; :func:`poll` and
:func:`deliver_payload` are the halves both paths share.

Which request is served, refused or held, and what a GET answers, are the
session machine's rules (``gosf/protocol/session.py``); this module reads
the requests and writes the responses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import anyio

from ..protocol.engineio import decode_payload, encode_payload
from ..protocol.errors import RemoteProtocolError
from ..protocol.session import CloseReason, PollVerdict, Transport
from .http import (
    EngineError,
    Receive,
    Scope,
    Send,
    cors_headers,
    header,
    send_response,
)
from .server import EngineServer
from .session import EngineSession

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
        body, content_type = result
        try:
            await send_response(send, 200, body, content_type=content_type, headers=cors)
        finally:
            session.poll_written()
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
    if session is None or session.machine.closed:
        # A closing session is reachable while its client has packets to
        # fetch (a graceful close's last ones); a closed one is gone, as it
        # is from the reference server the moment it closes.
        raise EngineError(EngineError.UNKNOWN_SID)
    if session.transport is not Transport.POLLING:
        raise _other_transport()
    return session


def _other_transport() -> EngineError:
    return EngineError(EngineError.BAD_REQUEST, detail="session uses another transport")


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


def _refusal(verdict: PollVerdict, what: str) -> EngineError:
    """The HTTP error for a polling request the session machine does not serve."""
    if verdict is PollVerdict.UNKNOWN_SID:
        return EngineError(EngineError.UNKNOWN_SID)
    if verdict is PollVerdict.OVERLAP:
        return EngineError(EngineError.BAD_REQUEST, detail=f"overlapping {what} requests")
    return _other_transport()


async def poll(
    session: EngineSession, client_gone: Callable[[], Awaitable[None]]
) -> tuple[bytes, bytes] | None:
    """Wait for the answer to a polling GET: ``(body, content type)``.

    ``None`` when ``client_gone()`` returns first (what is queued stays
    queued). The caller sends the body, then calls
    :meth:`EngineSession.poll_written`, whether sending worked or not.

    What a GET answers and when (packets, a NOOP once the client was told
    ``3probe``, the CLOSE of a session that ended) is the session machine's
    rule: see :meth:`gosf.protocol.session.Session.poll_answer`.

    Raises:
        EngineError: a GET is already waiting for this session (a broken
            client: the session is closed, as the reference server does), or
            a websocket carries the session (also one that took over while
            this GET waited for the ``5``).
    """
    verdict = session.get_request()
    if verdict is not PollVerdict.SERVE:
        raise _refusal(verdict, "GET")
    answer = None
    try:
        while answer is None:
            answer = session.poll_answer()
            # None: wait until woken by packets, by the probe, by the websocket
            # taking over, by a deadline or by the session's end.
            if answer is None and not await unless_gone(session.wait_changed, client_gone):
                return None
    finally:
        if answer is None:  # the client left, or this request was cancelled
            session.get_abandoned()
    if isinstance(answer, PollVerdict):
        raise _refusal(answer, "GET")
    try:
        body, content_type = encode_payload(answer, session.protocol, b64=session.b64)
    except BaseException:
        session.poll_written()
        raise
    return body, content_type.encode()


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
    if session.transport is not Transport.POLLING:  # the websocket took over while the body came
        raise _other_transport()
    if len(data) > max_payload:
        session.bad_input(CloseReason.PAYLOAD_TOO_LARGE)
        raise EngineError(EngineError.BAD_REQUEST, status=413, detail="payload too large")
    try:
        for packet in decode_payload(data, session.protocol, content_type=content_type):
            if session.closed:
                break
            await session.receive(packet)
    except RemoteProtocolError as exc:
        log.info("session %s: bad payload: %s", session.sid, exc)
        session.bad_input(CloseReason.PARSE_ERROR)
        raise EngineError(EngineError.BAD_REQUEST, detail=str(exc)) from None


@contextmanager
def posting(session: EngineSession) -> Iterator[None]:
    """Mark a POST in progress for ``session`` for the duration of the block.

    Raises:
        EngineError: another POST is in progress (a broken client: the
            session is closed, as the reference server does), or the session
            is gone or carried by a websocket.
    """
    with session.posting() as verdict:
        if verdict is not PollVerdict.SERVE:
            raise _refusal(verdict, "POST")
        yield
