"""Broadcasts that ask every recipient for an ack, in this process and the others.

Node's ``io.timeout(ms).emitWithAck()`` gives bare answers; here each answer
comes with the sid that gave it, and the recipients that did not answer in
time are named (socketioxide's ``AckStream`` does the first, not the second).

How one collection goes
-----------------------
The process that broadcasts (the *origin*):

1. encodes the EVENT once, with one ack id taken from :data:`BROADCAST_ACK_IDS`
   on (a socket's own calls count from zero: the ranges never meet), and
   queues it for each of its sockets the rooms select, each told to hand its
   ack, or its disconnection, to the collection (``Socket._expect_ack``);
2. asks the other processes, in a task of the server's that the collection
   cancels when it ends, with an :class:`~gosf.brokers.AckBroadcast`
   query (the event encoded by the server's parser): each one does step 1 for its
   own sockets (with an ack id of its own), answers with their sids
   (:class:`~gosf.brokers.AckRecipients`), and forwards each ack, or the
   socket's disconnection, to the origin in a direct message
   (``Broker.send_to``), until the timeout;
3. ends the collection once every process that answered the query has had
   each of its recipients answer or disconnect, or at the deadline: those
   that gave no answer by then are *timed out* (the disconnected among them
   are named too).

Bounds: the timeout is mandatory; a sid counts once, and once every
process has named its recipients an answer from any other sid is dropped;
a process forwards acks for at most :data:`MAX_FORWARDING` broadcasts of
other processes at once (past that it sends nothing and names no
recipient). A process that dies before it answers the query is not waited
for past the timeout, and its sockets are unknown to the origin; one that
dies later leaves its recipients timed out. Leaving the streaming form
early forgets the collection at once: its sockets stop waiting, and late
answers are dropped.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from anyio.abc import TaskGroup

from .._logs import Throttled
from ..brokers import AckBroadcast, AckRecipients, Broker
from ..protocol.errors import LocalProtocolError
from ..protocol.parser import Parser
from .acks_wire import ACK_MESSAGE, decode_answer, decode_packet, encode_answer
from .adapter import Adapter, to_engine
from .queries import select
from .socket import Socket

__all__ = (
    "BROADCAST_ACK_IDS",
    "MAX_FORWARDING",
    "AckStream",
    "Acks",
    "BroadcastAcks",
)

log = logging.getLogger("gosf")

BROADCAST_ACK_IDS = 10**12
"""The first ack id of broadcasts (a socket's own calls count from zero)."""

MAX_FORWARDING = 256
"""Broadcasts of other processes whose acks one process forwards at once, at most."""

REFUSAL_LOG_INTERVAL = 10.0
"""Seconds between WARNING lines about broadcasts of others refused (the rest go to DEBUG)."""


def _value(args: list[Any]) -> Any:
    """An ack's arguments as ``Socket.call`` returns them: ``None``, the one, or a tuple."""
    return None if not args else args[0] if len(args) == 1 else tuple(args)


@dataclass(frozen=True, slots=True)
class BroadcastAcks:
    """What a broadcast with acks gathered.

    ``answers``: each recipient's answer by sid (``None`` for an empty ack, a
    tuple for several arguments, as :meth:`gosf.Socket.call` returns them);
    ``timed_out``: the recipients that gave no answer (in time, or at all);
    ``disconnected``: those of them known to have disconnected first.
    """

    answers: Mapping[str, Any]
    timed_out: frozenset[str]
    disconnected: frozenset[str]


class _Collection:
    """The answers of one broadcast with acks as they come, until ``deadline``."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expected: set[str] = set()
        self.answers: dict[str, Any] = {}
        self.gone: set[str] = set()
        self.known = False
        """Whether every process that will send answers has named its recipients."""
        self._news: deque[tuple[str, list[Any] | None]] = deque()
        self._wake = anyio.Event()

    def expect(self, sids: Iterable[str], *, last: bool = False) -> None:
        self.expected.update(sids)
        self.known = self.known or last
        self._changed()

    def take(self, sid: str, args: list[Any] | None) -> None:
        """An answer of ``sid`` (``None``: it disconnected first); repeats, and
        strangers once every recipient is known, are dropped."""
        if sid in self.answers or sid in self.gone:
            return
        if self.known and sid not in self.expected:
            return
        if args is None:
            self.gone.add(sid)
        else:
            self.answers[sid] = _value(args)
        self._news.append((sid, args))
        self._changed()

    @property
    def done(self) -> bool:
        return self.known and len(self.answers) + len(self.gone) >= len(self.expected)

    async def next(self) -> tuple[str, list[Any] | None] | None:
        """The next answer (or disconnection); ``None`` once done or past the deadline."""
        while not self._news:
            if self.done:
                return None
            left = self.deadline - anyio.current_time()
            if left <= 0:
                return None
            with anyio.move_on_after(left):
                await self._wake.wait()
        return self._news.popleft()

    def result(self) -> BroadcastAcks:
        missing = self.expected - self.answers.keys()
        return BroadcastAcks(dict(self.answers), frozenset(missing), frozenset(self.gone & missing))

    def _changed(self) -> None:
        self._wake.set()
        self._wake = anyio.Event()


class AckStream:
    """The answers of a broadcast with acks, ``(sid, answer)`` as they come
    (``async for``); it ends when every recipient answered or disconnected,
    or at the timeout. :meth:`result` then says who did not answer."""

    def __init__(self, collection: _Collection) -> None:
        self._collection = collection

    @property
    def recipients(self) -> frozenset[str]:
        """The sids the broadcast was sent to, as known so far."""
        return frozenset(self._collection.expected)

    def __aiter__(self) -> AckStream:
        return self

    async def __anext__(self) -> tuple[str, Any]:
        while (item := await self._collection.next()) is not None:
            sid, args = item
            if args is not None:
                return sid, _value(args)
        raise StopAsyncIteration

    def result(self) -> BroadcastAcks:
        """The answers so far, and who has not answered (yet: read it once the stream ended)."""
        return self._collection.result()


def _send(
    sockets: list[Socket], parts: list[str | bytes], ack_id: int, collection: _Collection
) -> list[Socket]:
    """Queue the EVENT for ``sockets``, each to hand its ack to ``collection``;
    those it was queued for (never waits)."""
    packets = to_engine(parts)
    sent = []
    for socket in sockets:
        if socket._expect_ack(ack_id, collection.take):
            sent.append(socket)
            if not socket.session.send_nowait(packets):
                socket._forget_ack(ack_id)
                collection.take(socket.sid, None)  # a slow client, disconnected
    return sent


class Acks:
    """This process's broadcasts with acks, and its part in those of the others.

    ``tasks`` is where the other processes are asked and their broadcasts'
    acks are forwarded (the server's task group while it runs; ``None``: the
    others are asked in the caller's task, and nothing is forwarded for them).
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.tasks: TaskGroup | None = None
        self._ack_ids = itertools.count(BROADCAST_ACK_IDS)
        self._ids = itertools.count(1)
        # this process's collections by broadcast id, with the parser of their acks
        self._collections: dict[str, tuple[_Collection, Parser]] = {}
        self._forwarding = 0
        self._refusals = Throttled(log, REFUSAL_LOG_INTERVAL)

    @asynccontextmanager
    async def stream(
        self,
        adapter: Adapter[Socket],
        parser: Parser,
        event: str,
        args: tuple[Any, ...],
        rooms: tuple[str, ...] | None,
        skip_rooms: tuple[str, ...],
        timeout: float,  # noqa: ASYNC109
    ) -> AsyncIterator[AckStream]:
        """Broadcast ``event`` asking for acks, encoded by ``parser`` (the
        server's); the answers as they come (see the module).

        Raises:
            ValueError: ``timeout`` is not positive.
            LocalProtocolError: ``parser`` cannot carry ``args`` (nothing was sent).
        """
        if not timeout > 0:
            raise ValueError(f"an ack timeout must be positive, not {timeout!r}")
        ack_id = next(self._ack_ids)
        parts = parser.encode_event(adapter.name, event, args, ack_id)
        collection = _Collection(anyio.current_time() + timeout)
        broadcast = str(next(self._ids))
        self._collections[broadcast] = (collection, parser)
        sent = _send(select(adapter, rooms, skip_rooms), parts, ack_id, collection)
        collection.expect(socket.sid for socket in sent)
        query = AckBroadcast(
            adapter.name, tuple(parts), self.broker.node_id, broadcast, timeout, rooms, skip_rooms
        )
        # The other processes are asked in a task of the server's, which this
        # stream cancels when it ends: a task group here, around the caller's
        # block, would turn whatever the block raises into an exception group.
        asking = anyio.CancelScope()
        try:
            if self.tasks is not None:
                self.tasks.start_soon(self._ask_others, query, collection, asking)
            else:  # not running: no broker subscription, only this process answers
                await self._ask_others(query, collection, asking)
            yield AckStream(collection)
        finally:
            asking.cancel()
            del self._collections[broadcast]
            for socket in sent:
                socket._forget_ack(ack_id)

    async def collect(
        self,
        adapter: Adapter[Socket],
        parser: Parser,
        event: str,
        args: tuple[Any, ...],
        rooms: tuple[str, ...] | None,
        skip_rooms: tuple[str, ...],
        timeout: float,  # noqa: ASYNC109
    ) -> BroadcastAcks:
        """:meth:`stream`, gathered: once every recipient answered, or at the timeout."""
        stream = self.stream(adapter, parser, event, args, rooms, skip_rooms, timeout)
        async with stream as answers:
            async for _ in answers:
                pass
            return answers.result()

    async def _ask_others(
        self, query: AckBroadcast, collection: _Collection, scope: anyio.CancelScope
    ) -> None:
        """Ask the other processes to send ``query`` and name their recipients
        (never raises: a failure leaves them out, logged)."""
        recipients: list[str] = []
        try:
            with scope:
                for answer in await self.broker.query(query, query.timeout):
                    recipients.extend(answer.sids)
        except Exception:
            log.exception("asking the other processes for a broadcast with acks failed")
        finally:
            collection.expect(recipients, last=True)

    # -- the broadcasts of other processes ------------------------------------------------

    def answer(
        self, adapter: Adapter[Socket], parser: Parser, query: AckBroadcast
    ) -> AckRecipients:
        """Send another process's broadcast to this process's sockets it selects and
        forward their acks to it; their sids (never blocks)."""
        node = self.broker.node_id
        if query.origin == node:
            return AckRecipients(node, ())  # the origin sent to its own sockets itself
        if self.tasks is None:
            return AckRecipients(node, ())  # not running: nowhere to forward acks from
        if self._forwarding >= MAX_FORWARDING:  # (read at each call: tests lower it)
            self._refusals(
                "refused a broadcast with acks of %s: forwarding for %d already",
                query.origin,
                self._forwarding,
            )
            return AckRecipients(node, ())
        try:
            event, *args = decode_packet(parser, query.parts)
            if not isinstance(event, str):
                raise ValueError("an event is named by a string")
        except ValueError as exc:
            log.warning("dropped a broadcast with acks it cannot decode: %s", exc)
            return AckRecipients(node, ())
        ack_id = next(self._ack_ids)
        parts = parser.encode_event(adapter.name, event, args, ack_id)
        collection = _Collection(anyio.current_time() + query.timeout)
        sent = _send(select(adapter, query.rooms, query.skip_rooms), parts, ack_id, collection)
        sids = tuple(socket.sid for socket in sent)
        collection.expect(sids, last=True)
        if sent:
            self._forwarding += 1
            self.tasks.start_soon(self._forward, query, parser, collection, sent, ack_id)
        return AckRecipients(node, sids)

    async def _forward(
        self,
        query: AckBroadcast,
        parser: Parser,
        collection: _Collection,
        sent: list[Socket],
        ack_id: int,
    ) -> None:
        """Forward the acks of ``sent`` to the origin of ``query`` until done or the deadline."""
        try:
            while (item := await collection.next()) is not None:
                sid, args = item
                try:
                    message = encode_answer(parser, query.id, sid, query.namespace, args)
                except LocalProtocolError as exc:  # the parser cannot carry it: counts as none
                    log.warning("an ack cannot be forwarded: %s", exc)
                    message = encode_answer(parser, query.id, sid, query.namespace, None)
                if not await self.broker.send_to(query.origin, message):
                    return  # the origin is gone: its collection is over
        finally:
            self._forwarding -= 1
            for socket in sent:
                socket._forget_ack(ack_id)

    def inbox(self, data: bytes) -> None:
        """An ack another process forwarded (a message of :func:`encode_answer`)."""
        try:
            head = orjson.loads(data[len(ACK_MESSAGE) :])
            broadcast = head["b"] if isinstance(head, dict) else None
        except orjson.JSONDecodeError:
            broadcast = None
        found = self._collections.get(broadcast) if isinstance(broadcast, str) else None
        if found is None:
            return  # late (the collection is over), or not an ack message at all
        collection, parser = found
        try:
            _, sid, args = decode_answer(parser, data)
        except ValueError as exc:
            log.warning("dropped an ack message it cannot decode: %s", exc)
            return
        collection.take(sid, args)
