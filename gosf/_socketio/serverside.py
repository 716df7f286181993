"""Server-side events: events one process of a cluster sends the others
(Node's ``serverSideEmit`` and ``serverSideEmitWithAck``).

How they travel, over the broker's existing channels (no new wire format for
older processes to trip on):

1. The sender asks every process a :class:`~gosf.brokers.ServerSideEvent`
   query. Each *other* process answers at once whether it has a handler for
   the event, and if so starts it in a task of its server's task group (at
   most ``MAX_RUNNING`` at a time; past that it answers that it has none,
   and logs it). The sender itself does not hear its own event.
2. With an ack, the query carries a call id and the timeout: each handler,
   bounded by that timeout, returns its answer, which goes back to the
   sender as a direct message (``Broker.send_to``): ``REPLY_PREFIX`` then a
   JSON object ``{"c": call id, "n": node id, "r": answer}``. The sender
   waits until every process that took the event has answered, or the
   timeout has passed since it sent it.

A process whose handler fails, overruns the timeout or returns what JSON
cannot carry sends no answer: it counts as missing (``ServerSideAcks.missing``,
logged where it happened). A process that does not answer the query at all
(gone, or an older gosf that does not know server-side events) is not counted
and costs the sender its timeout.
"""

from __future__ import annotations

import inspect
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import anyio
import orjson
from anyio.abc import TaskGroup

from ..brokers import Broker, CommandResult, ServerSideEvent
from ..brokers._base import check_timeout

__all__ = ("MAX_RUNNING", "REPLY_PREFIX", "ServerSideAcks", "ServerSideEvents", "ServerSideHandler")

log = logging.getLogger("gosf")

MAX_RUNNING = 64
"""Server-side event handlers one process runs at once, at most."""

REPLY_PREFIX: Final = b"gosf-server-event\n"
"""How a direct message carrying a handler's answer starts (forwarding messages start with
``{``)."""

ServerSideHandler = Callable[..., Awaitable[Any]]
"""``async def handler(*args) -> answer`` (the answer goes back to an ack's sender)."""


@dataclass(frozen=True, slots=True)
class ServerSideAcks:
    """The answers to :meth:`gosf.SocketIOServer.server_side_emit_with_ack`."""

    answers: dict[str, Any]
    """What each other process's handler returned, by the process's node id."""
    missing: int
    """Processes that took the event but did not answer in time (or failed)."""


class _Call:
    __slots__ = ("answers", "done", "expected")

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.expected: int | None = None  # known once the query is answered
        self.done = anyio.Event()

    def check(self) -> None:
        if self.expected is not None and len(self.answers) >= self.expected:
            self.done.set()


class ServerSideEvents:
    """One server's server-side event handlers, and its calls waiting for answers."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.handlers: dict[tuple[str, str], ServerSideHandler] = {}
        """Handlers by ``(namespace, event)``."""
        self.tasks: TaskGroup | None = None
        """Where handlers run: the server's task group, while it runs."""
        self._running = 0
        self._calls: dict[str, _Call] = {}

    def on(self, namespace: str, event: str, handler: ServerSideHandler) -> None:
        """Register ``handler`` for ``event`` of ``namespace``.

        Raises:
            ValueError: the event already has a handler.
            TypeError: ``handler`` is not an ``async def`` function.
        """
        if (namespace, event) in self.handlers:
            raise ValueError(f"server-side event {event!r} already has a handler in {namespace!r}")
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"the server-side handler of {event!r} must be an async function")
        self.handlers[namespace, event] = handler

    async def emit(
        self,
        namespace: str,
        event: str,
        args: Sequence[Any],
        timeout: float,  # noqa: ASYNC109
    ) -> int:
        """Send ``event`` to the other processes; how many took it (had a handler).

        Raises:
            ValueError: ``timeout`` is not positive.
            TypeError: ``args`` cannot be encoded to cross processes.
        """
        check_timeout(timeout)
        query = ServerSideEvent(namespace, event, tuple(args), self.broker.node_id)
        return sum(answer.found for answer in await self.broker.query(query, timeout))

    async def emit_with_ack(
        self,
        namespace: str,
        event: str,
        args: Sequence[Any],
        timeout: float,  # noqa: ASYNC109
    ) -> ServerSideAcks:
        """Send ``event`` to the other processes and gather their handlers' answers,
        for at most ``timeout`` seconds in all.

        Raises:
            ValueError: ``timeout`` is not positive.
            TypeError: ``args`` cannot be encoded to cross processes.
        """
        check_timeout(timeout)
        deadline = anyio.current_time() + timeout
        call_id = secrets.token_hex(8)
        call = self._calls[call_id] = _Call()
        try:
            query = ServerSideEvent(
                namespace, event, tuple(args), self.broker.node_id, call_id, timeout
            )
            answers = await self.broker.query(query, timeout)  # bounded by the timeout itself
            call.expected = sum(answer.found for answer in answers)
            call.check()
            with anyio.move_on_after(deadline - anyio.current_time()):
                await call.done.wait()
        finally:
            del self._calls[call_id]
        answered = dict(call.answers)
        return ServerSideAcks(answered, max(0, (call.expected or 0) - len(answered)))

    # -- the other processes' events ----------------------------------------------------------

    def answer(self, query: ServerSideEvent) -> CommandResult | None:
        """Take another process's event: start its handler (never blocks); whether
        there is one. ``None`` (no answer) for this process's own events."""
        if query.origin == self.broker.node_id:
            return None
        handler = self.handlers.get((query.namespace, query.event))
        if handler is None:
            return CommandResult(False)
        if self.tasks is None or self._running >= MAX_RUNNING:
            log.warning(
                "server-side event %r not handled: %d handlers running already",
                query.event,
                self._running,
            )
            return CommandResult(False)
        self._running += 1
        self.tasks.start_soon(self._run, handler, query)
        return CommandResult(True)

    async def _run(self, handler: ServerSideHandler, query: ServerSideEvent) -> None:
        try:
            with anyio.move_on_after(query.timeout or math.inf) as scope:
                result = await handler(*query.args)
        except Exception:
            log.exception("server-side event handler of %r failed", query.event)
            return
        finally:
            self._running -= 1
        if scope.cancelled_caught:
            log.info("server-side event handler of %r overran %ss", query.event, query.timeout)
            return
        if query.call is None:
            return
        reply = {"c": query.call, "n": self.broker.node_id, "r": result}
        try:
            data = REPLY_PREFIX + orjson.dumps(reply)
        except TypeError as exc:
            log.error("the answer to server-side event %r cannot be encoded: %s", query.event, exc)
            return
        if not await self.broker.send_to(query.origin, data):
            log.info("the sender of server-side event %r is gone", query.event)

    def receive(self, data: bytes) -> bool:
        """A direct message: an answer to one of this process's calls (whether it was one)."""
        if not data.startswith(REPLY_PREFIX):
            return False
        try:
            reply = orjson.loads(data[len(REPLY_PREFIX) :])
            call_id, node = reply["c"], reply["n"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("dropped a server-side event answer it cannot decode: %s", exc)
            return True
        call = self._calls.get(call_id) if isinstance(call_id, str) else None
        if call is not None and isinstance(node, str):  # else late: the call is over
            call.answers[node] = reply.get("r")
            call.check()
        return True
