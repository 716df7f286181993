"""Cluster-wide queries over Redis: asking every process, and answering the others.

:meth:`RedisQueries.ask` asks every process a question (the rooms of the
cluster, whether it holds a sid and, if so, to disconnect it...) and gathers
their answers. It uses two channels besides the broadcast channel, so that
channel and its wire format (version 1) are unchanged, and a process of an
older gosf simply does not take part in queries. Each process subscribes, on
its one subscription, to:

* ``<channel>:query``, where every query is published, and
* ``<channel>:reply:<node id>``, where the answers to its own queries come.

A query and an answer are each one JSON object (orjson), small by design::

    query:  {"v": 1, "o": "5f0c3a9e21b7", "q": "17", "r": {...request...}}
    answer: {"v": 1, "o": "a81d0f3c9e02", "q": "17", "a": {...answer...}}

``o`` is the node id of the sender, ``q`` the query's id within the asking
process, ``r`` the query, ``a`` the answer, each as
:mod:`gosf.brokers._queries` writes it (``{"op": "rooms", "n": "/"}``,
``{"rooms": {"red": 2}}``...). A process decodes what arrives once, where it
arrives, into the typed query or answer, and drops (counted in the broker's
``drops``, logged once per kind) what it cannot read: a query of a kind it
does not know (from a newer gosf, say) is not answered, and an answer that
does not decode counts as its process's answer, so the asker does not wait
for it.

The asker first counts the processes subscribed to ``<channel>:query``
(``PUBSUB NUMSUB``), publishes the query, answers it itself, and waits until
every other process counted has answered, or ``timeout`` has passed (1 s by
default). A process that is not subscribed (Redis down, reconnecting)
answers for itself only: a query never raises because Redis is unreachable,
and never takes longer than its timeout. Answers that arrive late are
dropped; a process that goes away mid-query costs the asker the timeout.

Each query of another process is answered in a task of the session it
arrived on, at most ``MAX_ANSWERING`` at once (more are dropped, their askers
time out), each answer's PUBLISH bounded by ``publish_timeout``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Generic

import anyio
from anyio.abc import TaskGroup

from ._base import Answer, Drops, answer_locally, check_timeout
from ._queries import A, Query, QueryAnswer, UnknownQuery, decode_answer
from ._redis_session import Session, describe
from ._redis_wire import (
    Channels,
    decode_answer_message,
    decode_query_message,
    encode_answer,
    encode_query,
)

__all__ = ("MAX_ANSWERING", "RedisQueries")

log = logging.getLogger("gosf.broker")

MAX_ANSWERING = 64
"""Queries of other processes answered at once, at most (more are dropped; askers time out)."""


@dataclass(slots=True)
class _Pending(Generic[A]):
    """A query of this process waiting for answers."""

    query: Query[A]
    expected: int = 0
    """How many other processes were subscribed when it was sent."""
    replied: int = 0
    """How many of them have answered (with an answer that decoded or not)."""
    answers: list[A] = field(default_factory=list)
    done: anyio.Event = field(default_factory=anyio.Event)

    def receive(self, body: object, drops: Drops) -> None:
        """One process's answer: decoded as an answer to the query, or dropped (counted).

        A process whose answer does not decode has still answered: waiting
        longer for it would only cost the asker its timeout.
        """
        try:
            self.answers.append(decode_answer(self.query, body))
        except ValueError as exc:
            drops.drop("an answer it cannot decode", exc)
        self.replied += 1
        if self.replied >= self.expected:
            self.done.set()


class RedisQueries:
    """The queries of one process: those it asks, and those of others it answers.

    ``answer`` answers queries for this process (``None``: it does not
    answer, and its own queries get no local answer); the broker sets it
    while it runs. What cannot be read is counted in ``drops``.
    """

    def __init__(self, node_id: str, channels: Channels, drops: Drops) -> None:
        self.node_id = node_id
        self.channels = channels
        self.drops = drops
        self._label = drops.label
        self.answer: Answer | None = None
        self._answering = 0  # queries of other processes being answered now
        self._pending: dict[str, _Pending[Any]] = {}
        self._qids = itertools.count(1)

    async def ask(
        self,
        session: Session | None,
        query: Query[A],
        timeout: float,  # noqa: ASYNC109
    ) -> list[A]:
        """Ask every process ``query`` through ``session`` (``None``: not
        subscribed); their answers, this process's first.

        Returns once every other process subscribed when the query was sent
        has answered, or after ``timeout`` seconds. Never raises because
        Redis is unreachable, slow or failing: the answers gathered so far
        (at least this process's, if it has one) are returned, and the
        failure is logged.

        Raises:
            ValueError: ``timeout`` is not positive.
            TypeError: a string of ``query`` cannot be encoded (a lone surrogate).
        """
        check_timeout(timeout)
        qid = str(next(self._qids))
        payload = encode_query(self.node_id, qid, query)  # a TypeError now, not mid-way
        deadline = anyio.current_time() + timeout
        local = answer_locally(self.answer, query, self.drops)
        answers = [] if local is None else [local]
        if session is None:
            log.debug("%s: not connected to Redis: query answered locally only", self._label)
            return answers
        pending = _Pending(query)
        self._pending[qid] = pending
        try:
            with anyio.move_on_after(deadline - anyio.current_time()) as scope:
                subscribed = await session.count_subscribers(self.channels.query)
                pending.expected = max(0, subscribed - 1)  # less this process
                if pending.expected:
                    await session.publish(self.channels.query, payload)
                    if pending.replied < pending.expected:
                        await pending.done.wait()
            if scope.cancelled_caught:
                log.info(
                    "%s: query %s: %d of %d process(es) answered within %ss",
                    self._label,
                    type(query).__name__,
                    pending.replied,
                    pending.expected,
                    timeout,
                )
        except Exception as exc:  # whatever coredis raises for a broken connection
            log.warning("%s: query failed: %s", self._label, describe(exc))
        finally:
            del self._pending[qid]
        return answers + pending.answers

    def start_answer(self, tasks: TaskGroup, session: Session, data: Any) -> None:
        """Answer a query that arrived on ``session``, in a task of ``tasks``,
        unless ``MAX_ANSWERING`` already are being answered."""
        if self._answering >= MAX_ANSWERING:
            log.warning("%s: %d queries being answered: dropped one", self._label, MAX_ANSWERING)
            return
        self._answering += 1

        async def answer() -> None:
            try:
                await self._answer_query(session, data)
            finally:
                self._answering -= 1

        tasks.start_soon(answer)

    async def _answer_query(self, session: Session, data: Any) -> None:
        """Answer a query of another process (bounded by ``publish_timeout``; never raises).

        A query of a kind this process does not know (a newer gosf's) or one
        it cannot read is dropped: counted, logged once, never answered.
        """
        try:
            origin, qid, query = decode_query_message(data)
        except UnknownQuery as exc:
            self.drops.drop("an unknown query", exc)
            return
        except ValueError as exc:
            self.drops.drop("a query it cannot decode", exc)
            return
        if origin == self.node_id:
            return
        asked: Query[QueryAnswer] = query
        answer = answer_locally(self.answer, asked, self.drops)
        if answer is None:
            return
        try:
            payload = encode_answer(self.node_id, qid, answer)
        except TypeError as exc:
            log.error("%s: an answer cannot be encoded: %s", self._label, exc)
            return
        _, reason = await session.try_publish(self.channels.reply_to(origin), payload)
        if reason is not None:
            log.warning("%s: answering a query failed: %s", self._label, reason)

    def receive_answer(self, data: Any) -> None:
        """An answer to a query of this process (late ones are dropped)."""
        try:
            _, qid, body = decode_answer_message(data)
        except ValueError as exc:
            self.drops.drop("an answer it cannot decode", exc)
            return
        pending = self._pending.get(qid)
        if pending is None:
            return  # late: the query is over
        pending.receive(body, self.drops)
