"""A client's connection to one namespace, as the server sees it.

A :class:`Socket` talks to its client (events, calls and their acks) and
closes; it keeps no room state (the namespace's adapter, ``gosf._socketio.adapter``,
holds it all) and runs its handlers in its workers (``gosf._socketio.workers``).
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, Protocol, TypeAlias

import anyio

from .._engineio.event import Event
from .._engineio.http import header
from .._engineio.session import EngineSession
from .._errors import Disconnected
from ..protocol.engineio import Packet as EnginePacket
from ..protocol.parser import Parser
from ..protocol.session import CloseReason
from ..protocol.socketio import Packet, PacketType
from .adapter import Adapter, to_engine
from .workers import Workers

__all__ = (
    "AckSink",
    "DisconnectReason",
    "Dispatcher",
    "EventHandler",
    "Socket",
    "SocketNamespace",
    "SocketObserver",
)

log = logging.getLogger("gosf")

DISCONNECT_GRACE = 10.0
"""Seconds a closed socket's handlers get to end, and then its disconnect handlers
to run (see :meth:`Socket._finish`)."""


class DisconnectReason(enum.StrEnum):
    """Why a socket left its namespace by a Socket.IO DISCONNECT packet.

    A socket whose Engine.IO session ended gets the session's
    :class:`~gosf.protocol.session.CloseReason` instead: disconnect handlers
    receive one or the other. Both are :class:`str` enums whose members are
    the reference server's words, the strings gosf has always given.
    """

    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"
    """The client left the namespace (socket.io-client's ``socket.disconnect()``)."""
    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"
    """The application called :meth:`Socket.disconnect`."""


EventHandler: TypeAlias = Callable[..., Awaitable[Any]]
"""``async def handler(socket, *args) -> ack`` (the return value is the ack)."""

Dispatcher: TypeAlias = Callable[["Socket", str, list[Any], int | None], Awaitable[None]]
"""``async def dispatch(socket, event, args, ack_id)``: a namespace's catch-all
(:meth:`gosf.SocketIOServer.on_any`), which takes every event that has no handler of
its own and answers the ack itself (:meth:`Socket.ack`)."""


class SocketObserver(Protocol):
    """What a socket reports to its server's observers: the socket's side of
    ``gosf._socketio.observer.Observers``, which fans each report out to every
    :class:`gosf.Observer` (and builds what they receive only then).

    A protocol rather than that class, which names :class:`Socket` in its
    methods: this module cannot import it back.
    """

    def sent_event(
        self,
        socket: Socket,
        event: str,
        args: tuple[Any, ...],
        ack_id: int | None,
        parts: list[str | bytes],
    ) -> None: ...

    def sent_ack(
        self, socket: Socket, ack_id: int, args: tuple[Any, ...], parts: list[str | bytes]
    ) -> None: ...

    def sent(self, socket: Socket | None, packet: Packet, parts: list[str | bytes]) -> None: ...

    def disconnected(self, socket: Socket, reason: CloseReason | DisconnectReason) -> None: ...

    def acked(self, socket: Socket, event: str, latency: float) -> None: ...


class SocketNamespace(Protocol):
    """A socket's namespace as the socket and the server see it (:class:`gosf.Namespace` is one).

    A protocol rather than the class: the namespace module holds sockets, so
    this module cannot import it back.
    """

    @property
    def name(self) -> str: ...

    @property
    def adapter(self) -> Adapter[Socket]:
        """Who holds the namespace's rooms, the socket's among them."""
        ...

    @property
    def handlers(self) -> dict[str, EventHandler]: ...

    @property
    def parser(self) -> Parser:
        """The server's codec: how the socket's packets are encoded."""
        ...

    @property
    def observer(self) -> SocketObserver | None:
        """The server's observers, ``None`` while it has none (the test on the hot path)."""
        ...

    @property
    def catch_all(self) -> Dispatcher | None:
        """What takes the events that have no handler (set by ``on_any``)."""
        ...

    async def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        skip: Socket | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        volatile: bool = False,
    ) -> int:
        """Broadcast to the namespace or to rooms in it (see :meth:`gosf.Namespace.emit`)."""
        ...

    def members(self, room: str | None = None) -> list[Socket]:
        """The connected sockets in ``room`` (all of the namespace's for ``None``)."""
        ...

    async def _socket_closed(self, socket: Socket) -> None:
        """Forget ``socket`` and run the disconnect handlers (once its handlers ended)."""
        ...


AckSink: TypeAlias = Callable[[str, list[Any] | None], None]
"""Takes a broadcast's ack of one socket (``gosf._socketio.acks``): its sid and the
ack's arguments, or ``None`` when the socket closed before answering (never blocks)."""


class _AckWaiter:
    __slots__ = ("done", "error", "result")

    def __init__(self, done: Event) -> None:
        self.done = done  # the server's kind of event (see _engineio/event.py)
        self.result: list[Any] = []
        self.error: BaseException | None = None


class Socket:
    """One client connected to one namespace.

    Created by the server when a CONNECT packet is accepted; handlers receive
    it as their first argument. Its handlers run in its :attr:`workers`,
    tasks of the session's task group, so they are cancelled when the client
    disconnects (from this namespace or altogether); the disconnect handlers
    run once they have ended. An idle socket has no task of its own.
    """

    def __init__(
        self,
        namespace: SocketNamespace,
        session: EngineSession,
        auth: Mapping[str, Any],
        siblings: dict[str, Socket],
    ) -> None:
        self.sid = secrets.token_urlsafe(15)
        """This socket's id in its namespace (also the name of its own room)."""
        self.namespace = namespace
        """The namespace it is connected to."""
        self.session = session
        """The Engine.IO session under it, shared by the client's namespaces."""
        self.auth: Mapping[str, Any] = auth
        """The auth payload of the client's CONNECT (protocol 4: the query)."""
        self.connected = False
        """Whether the socket is connected (from its CONNECT until it closes)."""
        self.disconnect_reason: CloseReason | DisconnectReason | None = None
        """Why the socket was closed (the first reason given); ``None`` until then."""
        self.state: dict[str, Any] = {}
        """Per-connection scratch space for the application."""
        self.pid: str | None = None
        """The private session id of connection state recovery (``None``: off,
        or a socket.io 2.x client); never shown to other clients."""
        self.recovered = False
        """Whether this socket took back a session that dropped (its sid, rooms,
        state and the events it missed): see ``gosf.Recovery``."""
        self._since = ""  # the recovery log's position when it connected
        # Made with its first event (see ``workers``): an idle client holds none.
        self._workers: Workers | None = None
        self._next_ack_id = 0
        self._acks: dict[int, _AckWaiter] | None = None  # calls waiting for their ack
        self._sinks: dict[int, AckSink] | None = None  # broadcasts waiting for its ack
        self._closed = False
        self._early: list[list[EnginePacket]] | None = None  # emitted before the CONNECT went out
        self._siblings = siblings  # the client's sockets by namespace, this one included

    def __repr__(self) -> str:
        return f"<Socket sid={self.sid!r} namespace={self.namespace.name!r}>"

    # -- about the client -------------------------------------------------------

    @property
    def engine_sid(self) -> str:
        """The Engine.IO session id (shared by the client's namespaces)."""
        return self.session.sid

    @property
    def protocol(self) -> int:
        """Socket.IO protocol revision: 5 (socket.io 3+) or 4 (socket.io 2.x)."""
        return 5 if self.session.protocol >= 4 else 4

    @property
    def transport(self) -> str:
        """``"polling"`` or ``"websocket"`` (changes when the client upgrades)."""
        return self.session.transport

    @property
    def remote_address(self) -> tuple[str, int] | None:
        """The peer's ``(host, port)`` as the ASGI server saw it (``None`` when unknown)."""
        client = self.session.scope.get("client")
        return (client[0], client[1]) if client else None

    @property
    def headers(self) -> dict[str, str]:
        """Headers of the request that opened the session (lower-case names)."""
        return {
            bytes(k).decode("latin-1"): bytes(v).decode("latin-1")
            for k, v in self.session.scope.get("headers", ())
        }

    def header(self, name: str) -> str | None:
        """One header of the request that opened the session (any case), or ``None``."""
        return header(self.session.scope, name.lower().encode("latin-1"))

    @property
    def rooms(self) -> frozenset[str]:
        """The rooms this socket is in (a snapshot)."""
        return self.namespace.adapter.rooms_of(self)

    # -- rooms --------------------------------------------------------------------

    def join(self, room: str) -> None:
        """Put this socket in ``room`` (joining twice is harmless)."""
        self.namespace.adapter.add(self, room)

    def leave(self, room: str) -> None:
        """Take this socket out of ``room``."""
        self.namespace.adapter.remove(self, room)

    def leave_all(self) -> None:
        """Take this socket out of every room, its own sid room included."""
        self.namespace.adapter.remove_all(self)

    # -- talking to the client ------------------------------------------------------

    async def emit(self, event: str, *args: Any, volatile: bool = False) -> None:
        """Send an event to this client.

        Waits while the client's outbound buffer is full (backpressure); does
        nothing once the client is gone. ``volatile``: sent only if the client
        can take it at once (see :attr:`gosf.protocol.session.Session.writable`),
        else dropped, never waited for, and counted
        (:attr:`gosf._socketio.adapter.Adapter.volatile_dropped`).
        """
        if volatile and not (self.connected and self.session.writable):
            if not self._closed:
                self.namespace.adapter.volatile_dropped += 1
            return
        parts = self.namespace.parser.encode_event(self.namespace.name, event, args)
        observer = self.namespace.observer
        if observer is not None and not self._closed:
            observer.sent_event(self, event, args, None, parts)
        await self._send(to_engine(parts) if volatile else self._event_packets(parts))

    def _event_packets(self, parts: list[str | bytes]) -> list[EnginePacket]:
        """An event without ack (and not volatile) for this client: logged for
        recovery, with its offset, when the client has a recovery session."""
        store = self.namespace.adapter.recovery
        if store is None or self.pid is None:
            return to_engine(parts)
        return store.record(parts, (self.sid,), None)

    async def call(self, event: str, *args: Any, timeout: float = 30.0) -> Any:  # noqa: ASYNC109
        """Send an event and wait for the client's acknowledgement.

        Returns the ack's argument (``None`` for none, a tuple for several).

        Raises:
            TimeoutError: no ack within ``timeout`` seconds.
            Disconnected: the client disconnected first.
        """
        if self._closed:
            raise Disconnected(self.sid)
        ack_id = self._next_ack_id
        self._next_ack_id = ack_id + 1
        acks = self._acks
        if acks is None:
            acks = self._acks = {}
        waiter = acks[ack_id] = _AckWaiter(self.session.server.primitives.event())
        sent_at = time.perf_counter()
        try:
            with anyio.fail_after(timeout):
                parts = self.namespace.parser.encode_event(self.namespace.name, event, args, ack_id)
                observer = self.namespace.observer
                if observer is not None:
                    observer.sent_event(self, event, args, ack_id, parts)
                await self._send(to_engine(parts))
                await waiter.done.wait()
        finally:
            acks.pop(ack_id, None)
        if waiter.error is not None:
            raise waiter.error
        observer = self.namespace.observer
        if observer is not None:
            observer.acked(self, event, time.perf_counter() - sent_at)
        result = waiter.result
        return None if not result else result[0] if len(result) == 1 else tuple(result)

    def ack(self, ack_id: int, *args: Any) -> Coroutine[Any, Any, object]:
        """Answer the client's event ``ack_id`` with ``args`` (used by dispatchers).

        Await it (a coroutine like the other methods; :meth:`_send` says why
        it is built by a plain method).

        Raises:
            LocalProtocolError: JSON cannot carry ``args`` (raised by the call
                itself, before anything is queued).
        """
        parts = self.namespace.parser.encode_ack(self.namespace.name, ack_id, args)
        observer = self.namespace.observer
        if observer is not None and not self._closed:
            observer.sent_ack(self, ack_id, args, parts)
        return self._send(to_engine(parts))

    def emit_and_ack(
        self, event: str, data: Any, ack_id: int | None
    ) -> Coroutine[Any, Any, object]:
        """Send ``data`` as an ``event`` and, when ``ack_id`` is given, as that ack,
        queued together (GOSF's double delivery of a response).

        Await it (a plain method returning :meth:`_send`'s coroutine, as
        :meth:`ack` is: a fast path, see "Fast paths" in docs/performance.md).

        Raises:
            LocalProtocolError: JSON cannot carry ``data`` (raised by the call
                itself, before anything is queued).
        """
        ns = self.namespace
        parts, ack_parts = ns.parser.encode_event_and_ack(ns.name, event, data, ack_id)
        packets = self._event_packets(parts)
        if ack_parts is not None:
            packets = [*packets, *to_engine(ack_parts)]  # not +=: the log holds the event's list
        observer = ns.observer
        if observer is not None and not self._closed:
            observer.sent_event(self, event, (data,), None, parts)
            if ack_id is not None and ack_parts is not None:
                observer.sent_ack(self, ack_id, (data,), ack_parts)
        return self._send(packets)

    def flush(self) -> Coroutine[Any, Any, None]:
        """Wait until everything queued for this client so far has been written out.

        Returns early when the client disconnects. Await it (a plain method
        returning :meth:`EngineSession.flush`'s coroutine, as :meth:`ack` is:
        a fast path, see "Fast paths" in docs/performance.md).
        """
        if self.connected:
            return self.session.flush()
        return _nothing_to_flush()

    def _send(self, packets: list[EnginePacket]) -> Coroutine[Any, Any, object]:
        # Returns the coroutine of EngineSession.send itself: one await level
        # less per packet (a fast path: see "Fast paths" in
        # docs/performance.md); still a real coroutine, so
        # tg.start_soon(socket.emit, ...) and asyncio.create_task() keep working.
        if self.connected:
            return self.session.send(packets)
        return self._send_early(packets)

    async def _send_early(self, packets: list[EnginePacket]) -> None:
        if self._closed:
            return
        early = self._early
        if early is None:
            early = self._early = []
        if len(early) >= self.session.max_buffer:
            self.session.close(CloseReason.SLOW_CLIENT, discard=True)
            return
        early.append(packets)

    def _sent_early(self, packets: list[EnginePacket]) -> bool:
        """Whether ``packets`` (the very list) wait to go out after the CONNECT."""
        return any(packets is early for early in self._early or ())

    def disconnect(self) -> None:
        """Disconnect the client from this namespace (the whole connection when it is the last)."""
        if self._closed:
            return
        packet = Packet(PacketType.DISCONNECT, self.namespace.name)
        parts = self.namespace.parser.encode(packet, self.protocol)
        observer = self.namespace.observer
        if observer is not None:
            observer.sent(self, packet, parts)
        self.session.send_nowait(to_engine(parts))
        self._close(DisconnectReason.SERVER_NAMESPACE_DISCONNECT)
        if self._siblings.get(self.namespace.name) is self:
            del self._siblings[self.namespace.name]
        if not self._siblings:
            self.session.close(CloseReason.SERVER_DISCONNECT)

    # -- lifecycle (driven by the server) --------------------------------------------

    def _on_ack(self, ack_id: int, args: list[Any]) -> None:
        waiter = self._acks.get(ack_id) if self._acks else None
        if waiter is not None:
            waiter.result = args
            waiter.done.set()
        elif self._sinks:
            sink = self._sinks.pop(ack_id, None)
            if sink is not None:
                sink(self.sid, args)

    def _expect_ack(self, ack_id: int, sink: AckSink) -> bool:
        """Hand the ack ``ack_id`` to ``sink`` when it comes (a broadcast's, see
        ``gosf._socketio.acks``), or ``None`` if the socket closes first.
        ``False`` (and nothing registered) when it is closed already."""
        if self._closed:
            return False
        if self._sinks is None:
            self._sinks = {}
        self._sinks[ack_id] = sink
        return True

    def _forget_ack(self, ack_id: int) -> None:
        """Stop waiting for the ack ``ack_id`` of a broadcast (its collection is over)."""
        if self._sinks:
            self._sinks.pop(ack_id, None)

    def _close(self, reason: CloseReason | DisconnectReason) -> None:
        """Close the socket (idempotent): cancel its handlers, fail its pending calls.

        Its disconnect handlers run once its handlers have ended: in a task of
        the session's when the session lives on (a namespace disconnect),
        else when the server finishes the session (:meth:`_finish`).
        """
        if self._closed:
            return
        self._closed = True
        if self.disconnect_reason is None:
            self.disconnect_reason = reason
        self.connected = False
        log.debug(
            "socket %s left %s (%s): %s", self.sid, self.namespace.name, self.transport, reason
        )
        observer = self.namespace.observer
        if observer is not None:
            # Before anything is undone: observers still see its rooms and state.
            observer.disconnected(self, self.disconnect_reason)
        if self._workers is not None:
            self._workers.cancel()
        for waiter in self._acks.values() if self._acks else ():
            waiter.error = Disconnected(self.sid)
            waiter.done.set()
        sinks, self._sinks = self._sinks, None
        for sink in sinks.values() if sinks else ():
            sink(self.sid, None)
        if not self.session.closed:
            try:
                self.session.start_soon(self._finish)
            except RuntimeError:  # the session is ending: the server finishes the socket
                pass

    async def _finish(self) -> None:
        """Wait for the socket's handlers to end, then forget the socket and run
        its disconnect handlers.

        Shielded. The wait for the handlers is bounded by ``DISCONNECT_GRACE``
        seconds, and so are the disconnect handlers: a handler still running
        then (a plain ``def`` controller's worker thread, which cannot be
        cancelled) does not keep the socket in the namespace's tables nor its
        disconnect handlers from running. Whatever it sends later is dropped
        (the socket is closed).
        """
        grace = DISCONNECT_GRACE  # read at each call: tests shorten it
        workers = self._workers
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(grace) as waiting:
                if workers is not None:
                    await workers.drain()
            if workers is not None and waiting.cancelled_caught:
                log.warning(
                    "%s: %d handler(s) still running %s s after the disconnect "
                    "(a worker thread cannot be cancelled); closing without them",
                    self,
                    workers.running,
                    grace,
                )
            with anyio.move_on_after(grace) as hooks:
                await self.namespace._socket_closed(self)
            if hooks.cancelled_caught:
                log.warning("%s: disconnect handlers cut off after %s s", self, grace)

    @property
    def workers(self) -> Workers:
        """Where its handlers run (started by the server's handler slots);
        made when first asked for."""
        workers = self._workers
        if workers is None:
            workers = self._workers = Workers(self.session)
            if self._closed:
                workers.cancel()  # refuses the jobs of a closed socket
        return workers

    @property
    def has_workers(self) -> bool:
        """Whether :attr:`workers` has been made (a client that sent no event
        has none)."""
        return self._workers is not None

    def _connected(self) -> None:
        """Mark connected and release what handlers emitted before the CONNECT
        went out (queued behind it, as it is, for the reader to write:
        ``EngineSession.send_nowait``'s ``in_message``)."""
        self.connected = True
        early, self._early = self._early, None
        for packets in early or ():
            self.session.send_nowait(packets, in_message=True)


async def _nothing_to_flush() -> None:
    """What :meth:`Socket.flush` waits for on a socket not connected (yet, or any more)."""
