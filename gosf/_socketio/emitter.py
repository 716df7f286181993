"""Emitting to a cluster's clients from a process that runs no server (a worker,
a cron job, a script): Node's ``@socket.io/redis-emitter``, python-socketio's
write-only manager.

An :class:`Emitter` encodes each event once, with the cluster's parser, and
publishes it through a broker as a server's broadcast would be: every server
of the cluster delivers it to its own clients in the rooms named. It holds a
broker subscription while it is open (a :class:`~gosf.brokers.RedisBroker`
publishes through its subscribed connection) and answers the cluster's
queries as a process without clients, so that no server's query waits for it.
:class:`BlockingEmitter` is the same for synchronous code, on a thread of its
own.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable
from contextlib import AsyncExitStack, ExitStack
from functools import partial
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..brokers import Broadcast, Broker, from_url
from ..protocol.parser import Parser, ParserName, parser_named
from .node import ClusterNode

__all__ = ("BlockingEmitter", "Emitter")


@runtime_checkable
class _Connectable(Protocol):
    """A broker that tells whether it is connected (``RedisBroker``)."""

    @property
    def connected(self) -> bool: ...

    async def wait_connected(self, connected: bool = True) -> None: ...


def _ignore(broadcast: Broadcast) -> None:
    """An emitter has no clients: the cluster's broadcasts are not for it."""


class Emitter:
    """Emits events to the clients of a cluster, without a server.

    >>> async with gosf.Emitter("redis://127.0.0.1:6379/0") as emitter:  # doctest: +SKIP
    ...     await emitter.emit("news", {"text": "hello"}, to="room1")

    ``broker`` is a broker (the cluster's, not running elsewhere) or its URL
    (``redis://...``, as the ``broker`` setting). ``parser`` must be the
    cluster's (``"json"`` or ``"msgpack"``). Entering waits at most
    ``connect_timeout`` seconds for a broker that can tell (Redis) to be
    subscribed.

    Raises:
        ValueError: an unknown broker URL or parser.
    """

    def __init__(
        self,
        broker: Broker | str,
        *,
        parser: ParserName | Parser = "json",
        connect_timeout: float = 5.0,
    ) -> None:
        self.broker: Broker = from_url(broker) if isinstance(broker, str) else broker
        """Where the events are published."""
        self.parser = parser_named(parser)
        """How the events are encoded (the cluster's parser)."""
        self.connect_timeout = connect_timeout
        self._stack: AsyncExitStack | None = None
        # Recovery offsets of its own, so every server logs an event under one
        # (gosf._socketio.handover); servers with recovery off ignore them.
        origin = secrets.token_hex(3)
        self._offsets = (f"{origin}-{n:x}" for n in itertools.count())

    async def __aenter__(self) -> Emitter:
        """Subscribe (the broker runs in a task of this emitter until it exits).

        Raises:
            ConnectionError: the broker is not connected within ``connect_timeout``.
            RuntimeError: the emitter is open already.
        """
        if self._stack is not None:
            raise RuntimeError("this emitter is open already")
        broker = self.broker
        connected = True
        async with AsyncExitStack() as stack:
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)  # the broker runs until the emitter exits
            node = ClusterNode(broker, {})  # answers every query as a process without clients
            await tg.start(partial(broker.run, _ignore, answer=node.answer))
            if isinstance(broker, _Connectable) and not broker.connected:
                with anyio.move_on_after(self.connect_timeout):
                    await broker.wait_connected()
                connected = broker.connected
            if connected:
                self._stack = stack.pop_all()
        # (raised here, once the broker's task has ended, rather than out of its task group)
        if not connected:
            raise ConnectionError(f"{broker!r} not connected within {self.connect_timeout}s")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        if stack is not None:
            return await stack.__aexit__(exc_type, exc, tb)
        return None

    async def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        namespace: str = "/",
    ) -> None:
        """Send ``event`` with ``args`` to every client of ``namespace`` in the
        cluster, or to those in the room(s) ``to``.

        Returns once the broker has published it; like any broadcast, it
        reaches the servers subscribed at that moment (Redis keeps nothing),
        and a broker that cannot publish drops it and logs (never raises).

        Raises:
            RuntimeError: the emitter is not open.
            gosf.protocol.LocalProtocolError: a bad namespace or event name, or
                arguments the parser cannot encode.
        """
        if self._stack is None:
            raise RuntimeError("open the emitter first: async with Emitter(...) as emitter")
        parts = self.parser.encode_event(namespace, event, args)
        rooms = None if to is None else (to,) if isinstance(to, str) else tuple(to)
        offset = next(self._offsets)
        await self.broker.publish(Broadcast(namespace, tuple(parts), rooms, offset=offset))


class BlockingEmitter:
    """:class:`Emitter` for synchronous code (scripts, cron jobs): the same
    arguments, used as ``with``; an event loop runs on a thread of its own
    while it is open (``backend``: ``"asyncio"`` or ``"trio"``).

    >>> with gosf.BlockingEmitter("redis://127.0.0.1:6379/0") as emitter:  # doctest: +SKIP
    ...     emitter.emit("news", {"text": "hello"}, to="room1")
    """

    def __init__(self, broker: Broker | str, *, backend: str = "asyncio", **options: Any) -> None:
        self._emitter = Emitter(broker, **options)
        self._backend = backend
        self._stack: ExitStack | None = None
        self._portal: BlockingPortal | None = None

    def __enter__(self) -> BlockingEmitter:
        """Raises: as :meth:`Emitter.__aenter__`."""
        with ExitStack() as stack:
            portal = stack.enter_context(start_blocking_portal(self._backend))
            stack.enter_context(portal.wrap_async_context_manager(self._emitter))
            self._portal, self._stack = portal, stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack, self._portal = self._stack, None, None
        return None if stack is None else stack.__exit__(exc_type, exc, tb)

    def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        namespace: str = "/",
    ) -> None:
        """As :meth:`Emitter.emit`, waiting for it.

        Raises:
            RuntimeError: the emitter is not open.
        """
        if self._portal is None:
            raise RuntimeError("open the emitter first: with BlockingEmitter(...) as emitter")
        self._portal.call(partial(self._emitter.emit, event, *args, to=to, namespace=namespace))
