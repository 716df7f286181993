"""One connection of :class:`~gosf._client.client.SocketIOClient`: its namespaces and its reader.

A :class:`JoinedNamespace` (the client's side of a namespace, not
``gosf.Namespace``) goes *connecting* → *connected* (CONNECT) or *refused*
(CONNECT_ERROR), then *closed*; ``ready`` is set when it leaves *connecting*,
whichever way, so ``connect`` can wait on it. Closing fails its pending calls.

:meth:`Connection.read` is the reader task. It dispatches packets in order:
CONNECT and ACK packets wake whoever waits on them; an EVENT runs its handler,
a sync one inline and an async one in its own task once one of the handler
slots is free (until then the reader waits: that is the backpressure). A
handler's return value is sent as the ack when the server asked for one, its
exceptions are logged. When the reader ends, for whatever reason, the
connection is over: :meth:`Connection.end` fails every pending call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .._errors import ConnectionRefused, Disconnected
from ..protocol.errors import LocalProtocolError, ProtocolError
from ..protocol.parser import JSON_PARSER, Parser
from ..protocol.socketio import Packet, PacketType
from .engineio import ClientDisconnectReason, EngineClient, EngineClosed

ANY_EVENT = "\x00any"
"""The handler key of events that have no handler of their own (``SocketIOClient.on_any``)."""

__all__ = (
    "ANY_EVENT",
    "CLOSE_TIMEOUT",
    "Connection",
    "Handler",
    "JoinedNamespace",
    "Waiter",
    "refusal",
)

log = logging.getLogger("gosf.client")

Handler = Callable[..., Any]

CLOSE_TIMEOUT = 2.0
"""Seconds a clean close may take (DISCONNECT packets and the websocket close)."""


class Waiter:
    """One call waiting for its ack."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: list[Any] = []
        self.error: Disconnected | None = None

    def value(self) -> Any:
        """The ack as a return value: no argument → ``None``, one → it, several → a tuple.

        Raises:
            Disconnected: the namespace closed before the ack came.
        """
        if self.error is not None:
            raise self.error
        args = self.result
        return None if not args else args[0] if len(args) == 1 else tuple(args)


class JoinedNamespace:
    """The client's state in one namespace."""

    __slots__ = (
        "acks",
        "connected",
        "error",
        "name",
        "offset",
        "pid",
        "ready",
        "recovered",
        "resumable",
        "sid",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.sid: str | None = None
        self.connected = False
        self.error: ConnectionRefused | None = None
        self.ready = anyio.Event()
        self.acks: dict[int, Waiter] = {}
        # Connection state recovery: the private session id the server gave
        # (None: recovery is off there), the offset of the last event received,
        # whether this connection took back the last one's session, and
        # whether the next may (not after a deliberate DISCONNECT, either way).
        self.pid: str | None = None
        self.offset: str | None = None
        self.recovered = False
        self.resumable = True

    def opened(self, sid: str, pid: str | None = None) -> None:
        if not self.ready.is_set():
            self.recovered = pid is not None and pid == self.pid
            self.sid, self.pid, self.connected = sid, pid, True
            self.ready.set()

    def resume_from(self, last: JoinedNamespace | None) -> dict[str, str]:
        """Take over ``last``'s recovery session, if it may be resumed; what the
        CONNECT's auth then carries (``pid`` and ``offset``, as socket.io-client 4.6+)."""
        if last is None or last.pid is None or not last.resumable:
            return {}
        self.pid, self.offset = last.pid, last.offset
        if last.offset is None:  # it received no event: the server replays from the connection
            return {"pid": last.pid}
        return {"pid": last.pid, "offset": last.offset}

    def refused(self, error: ConnectionRefused) -> None:
        if not self.ready.is_set():
            self.error = error
            self.ready.set()

    def close(self, error: Disconnected) -> None:
        self.connected = False
        self.ready.set()
        acks, self.acks = self.acks, {}
        for waiter in acks.values():
            waiter.error = error
            waiter.done.set()


def refusal(data: Any) -> ConnectionRefused:
    """The exception for a CONNECT_ERROR payload: protocol 5 sends ``{"message",
    "data"?}``; protocol 4 servers send the error's data, or its message."""
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return ConnectionRefused(data["message"], data.get("data"))
    if isinstance(data, str):
        return ConnectionRefused(data)
    return ConnectionRefused("Connection refused", data)


def _ack_args(result: Any) -> list[Any]:
    if result is None:
        return []
    return list(result) if isinstance(result, tuple) else [result]


class Connection:
    """An Engine.IO session, the namespaces joined over it, and how it ended."""

    def __init__(
        self,
        engine: EngineClient,
        protocol: int,
        names: list[str],
        handlers: Mapping[tuple[str, str], tuple[Handler, bool]],
        parser: Parser = JSON_PARSER,
    ) -> None:
        self.engine = engine
        self.parser = parser
        self.protocol = protocol
        self.namespaces = {name: JoinedNamespace(name) for name in names}
        self.closed = anyio.Event()
        self.reason: ClientDisconnectReason | None = None
        self._handlers = handlers
        self._decoder = parser.decoder(protocol, max_attachment_bytes=None)

    # -- sending --------------------------------------------------------------------------

    async def send(self, parts: list[str | bytes]) -> None:
        """Raises :class:`Disconnected` when the connection is over."""
        if self.closed.is_set():
            raise Disconnected(f"not connected: {self.reason}")
        try:
            await self.engine.send(parts)
        except EngineClosed as exc:
            raise Disconnected(f"not connected: {exc.reason}") from None

    async def send_quietly(self, parts: list[str | bytes]) -> None:
        try:
            await self.send(parts)
        except Disconnected:
            pass

    async def leave(self, ns: JoinedNamespace, reason: ClientDisconnectReason) -> None:
        """Send DISCONNECT for ``ns`` and close it."""
        if ns.connected:
            ns.resumable = False
            ns.close(Disconnected(reason))
            await self.send_quietly(
                self.parser.encode(Packet(PacketType.DISCONNECT, ns.name), self.protocol)
            )

    # -- lifecycle ------------------------------------------------------------------------

    async def shutdown(self, reason: ClientDisconnectReason) -> None:
        """Leave every namespace, close the websocket, wait for the reader to stop.

        Bounded by ``CLOSE_TIMEOUT``, shielded from cancellation; never raises.
        """
        if self.closed.is_set():
            return
        if self.reason is None:
            self.reason = reason
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            for ns in self.namespaces.values():
                await self.leave(ns, reason)
            await self.engine.ws.aclose()
            await self.closed.wait()

    def end(self, reason: ClientDisconnectReason) -> None:
        """The connection is over: keep the first reason, fail what waits (idempotent)."""
        if self.reason is None:
            self.reason = reason
        for ns in self.namespaces.values():
            ns.close(Disconnected(self.reason))
        self.closed.set()

    # -- the reader -----------------------------------------------------------------------

    async def read(self, tg: TaskGroup, limiter: anyio.Semaphore) -> None:
        """Dispatch the server's packets until the connection ends (then close it)."""
        reason = ClientDisconnectReason.TRANSPORT_CLOSE
        try:
            while True:
                packet = self._decoder.feed(await self.engine.receive())
                if packet is not None and not await self._dispatch(packet, tg, limiter):
                    reason = ClientDisconnectReason.IO_SERVER_DISCONNECT
                    break
        except EngineClosed as exc:
            reason = exc.reason
        except ProtocolError as exc:
            log.warning("closing the connection: the server sent a bad packet: %s", exc)
            reason = ClientDisconnectReason.PARSE_ERROR
        finally:
            self.end(reason)
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
                await self.engine.ws.aclose()

    async def _dispatch(self, packet: Packet, tg: TaskGroup, limiter: anyio.Semaphore) -> bool:
        """Handle one packet; ``False`` once the server has closed every namespace."""
        kind, ns = packet.type, self.namespaces.get(packet.namespace)
        if ns is None:
            log.debug("ignoring %s for namespace %s", kind.name, packet.namespace)
        elif kind is PacketType.EVENT or kind is PacketType.BINARY_EVENT:
            await self._event(ns, packet, tg, limiter)
        elif kind is PacketType.ACK or kind is PacketType.BINARY_ACK:
            waiter = ns.acks.pop(packet.id, None) if packet.id is not None else None
            if waiter is not None:
                waiter.result = packet.data
                waiter.done.set()
        elif kind is PacketType.CONNECT:
            data = packet.data
            pid = data.get("pid") if isinstance(data, dict) else None
            ns.opened(self._sid(ns.name, data), pid if isinstance(pid, str) else None)
        elif kind is PacketType.CONNECT_ERROR:
            if ns.connected:  # protocol 4 servers send errors at any time
                log.warning("error from the server in %s: %r", ns.name, packet.data)
            ns.refused(refusal(packet.data))
        elif kind is PacketType.DISCONNECT:
            ns.resumable = False
            ns.close(Disconnected(ClientDisconnectReason.IO_SERVER_DISCONNECT))
            return any(n.connected or not n.ready.is_set() for n in self.namespaces.values())
        return True

    def _sid(self, name: str, data: Any) -> str:
        if isinstance(data, dict) and isinstance(data.get("sid"), str):
            return str(data["sid"])
        return self.engine.sid if name == "/" else f"{name}#{self.engine.sid}"  # socket.io 2.x

    async def _event(
        self, ns: JoinedNamespace, packet: Packet, tg: TaskGroup, limiter: anyio.Semaphore
    ) -> None:
        event, *args = packet.data
        if ns.pid is not None and packet.id is None and args and isinstance(args[-1], str):
            # Recovery is on: the server's offset, for the client, not its handlers.
            ns.offset = args.pop()
        entry = self._handlers.get((ns.name, event)) if ns.connected else None
        if entry is None and ns.connected:
            entry = self._handlers.get((ns.name, ANY_EVENT))
            args = [event, *args]
        if entry is None:
            log.debug("no handler for %r in %s", event, ns.name)
            return
        handler, is_async = entry
        if is_async:
            await limiter.acquire()
            tg.start_soon(self._run_async, limiter, handler, ns.name, event, args, packet.id)
            return
        try:
            result = handler(*args)
        except Exception:
            log.exception("handler for %r in %s failed", event, ns.name)
            return
        if packet.id is not None:
            await self._ack(ns.name, packet.id, result)

    async def _run_async(
        self,
        limiter: anyio.Semaphore,
        handler: Handler,
        namespace: str,
        event: str,
        args: list[Any],
        ack_id: int | None,
    ) -> None:
        try:
            result = await handler(*args)
            if ack_id is not None:
                await self._ack(namespace, ack_id, result)
        except Exception:
            log.exception("handler for %r in %s failed", event, namespace)
        finally:
            limiter.release()

    async def _ack(self, namespace: str, ack_id: int, result: Any) -> None:
        packet = Packet(PacketType.ACK, namespace, _ack_args(result), ack_id)
        try:
            parts = self.parser.encode(packet, self.protocol)
        except LocalProtocolError:  # not JSON-serialisable: the handler's bug, not the server's
            log.exception("cannot send the ack of a handler in %s", namespace)
            return
        await self.send_quietly(parts)
