"""GOSF microservices: other Socket.IO services called with GOSF messages.

A :class:`Microservice` keeps one connection to a service (a gosf app, a GOSF
server in Go, any Socket.IO server that answers with GOSF messages) and
supervises it: a task in its owner's task group connects, waits for the
connection to end, and reconnects until :meth:`Microservice.disconnect`. Registered on an app
(``app.register_microservice``), that owner is the app's task group, so the
connection lives and dies with the app.

``call`` fails fast: with :class:`MicroserviceUnavailable` at once when the
service is not connected (or drops while the call waits), and with
:class:`MicroserviceTimeout` after two seconds (GOSF's limit; configurable)
without an answer. Meta travels both ways: it is only stripped towards
browser clients.

When to try again
-----------------
A service that is down is tried again after a pause that grows with the time
it has been down: a quarter of it, never less than the first pause of
``backoff`` nor more than the longest (jittered down by up to a half, so the
processes of a cluster do not all knock at once). A service back after a
short outage is therefore found within a quarter of the outage (a second or
so after a few seconds down), while one that stays dead is tried at most once
per longest pause. The schedule is :func:`next_pause`. The logs say so once:
a warning with the plan when the service becomes unreachable, one line when
it is back; the attempts between are logged at debug level.
"""

from __future__ import annotations

import inspect
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .._client.client import SocketIOClient
from .._client.engineio import Connector
from .._errors import (
    Disconnected,
    GosfError,
    MessageError,
    MicroserviceError,
    MicroserviceTimeout,
    MicroserviceUnavailable,
)
from ..protocol.errors import ProtocolError
from .message import Message

__all__ = ("Microservice",)

log = logging.getLogger("gosf.microservice")

CALL_TIMEOUT = 2.0
"""Seconds a call waits for its answer, as in GOSF."""

Listener = Callable[[Message], Awaitable[None] | None]

RETRY_SHARE = 0.25
"""The pause before the next attempt, as a share of the time the service has been down."""


def next_pause(first: float, longest: float, down_for: float, jitter: float) -> float:
    """Seconds to wait before trying a service that has been down ``down_for`` seconds.

    A ``RETRY_SHARE`` of ``down_for``, within ``first`` and ``longest``, less up
    to half of it by ``jitter`` (0 to 1, drawn at random by the caller). The
    pause never exceeds that share of the outage (or ``first``), so a service
    that comes back is found within about as long.
    """
    pause = min(longest, max(first, down_for * RETRY_SHARE))
    return pause * (1.0 - jitter / 2)


class Microservice:
    """One Socket.IO service, reached at ``host:port`` (TLS with ``secure``).

    Options: ``path`` (where the service is mounted, ``"/"``), ``namespace``
    (the service app's namespace, ``"/"``: its ``namespace`` key), ``protocol``
    (5; 4 for socket.io 2.x services such as GOSF in Go), ``call_timeout``
    (seconds, 2), ``auth`` (sent when connecting), ``ca_file`` /
    ``ssl_context`` (TLS trust), ``backoff`` (first and longest pause between
    reconnection attempts, seconds; see :func:`next_pause`) and ``connector``
    (``gosf.testing``).

    Use it registered on an app (``app.register_microservice``), or on its own
    with ``async with Microservice(...) as service:``.
    """

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        secure: bool = False,
        *,
        path: str = "/",
        namespace: str = "/",
        protocol: Literal[4, 5] = 5,
        call_timeout: float = CALL_TIMEOUT,
        auth: dict[str, Any] | None = None,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backoff: tuple[float, float] = (0.2, 10.0),
        connect_timeout: float = 5.0,
        connector: Connector | None = None,
    ) -> None:
        self.name = name
        """The name it is registered under."""
        self.host = host
        """The service's host name or address."""
        self.port = port
        """The service's TCP port."""
        self.secure = secure
        """Whether it is reached over TLS (https/wss)."""
        self.path = path if path.endswith("/") else path + "/"
        """The service's mount path (its Socket.IO answers on ``<path>socket.io/``)."""
        self.namespace = namespace
        """The Socket.IO namespace the service listens in."""
        self.call_timeout = call_timeout
        """Seconds :meth:`call` waits for an answer by default."""
        self.auth = auth
        """The auth payload sent when connecting."""
        self._ca_file = ca_file
        self._ssl_context = ssl_context
        self._backoff = backoff
        self._connect_timeout = connect_timeout
        self._connector = connector
        self._client = SocketIOClient(protocol=protocol)
        self._owner: TaskGroup | None = None
        self._scope: anyio.CancelScope | None = None
        self._up = anyio.Event()
        self._down = anyio.Event()  # set (and replaced) each time a connection ends
        self._own_tg: Any = None
        self.failed_attempts = 0
        """Attempts to connect that failed since the service was last connected."""

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<gosf.Microservice {self.name!r} {self.url} {state}>"

    @property
    def url(self) -> str:
        """``http(s)://host:port``: where the service is reached."""
        scheme = "https" if self.secure else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Whether the service is connected now (GOSF's ``Connected()``)."""
        return self._client.connected

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the service is connected.

        Raises:
            MicroserviceUnavailable: not connected within ``timeout`` seconds.
        """
        with anyio.move_on_after(timeout if timeout is not None else float("inf")):
            while not self.connected:
                await self._up.wait()
            return
        raise MicroserviceUnavailable(f"{self.name} did not connect within {timeout}s")

    async def wait_disconnected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the service is not connected (at once when it is not).

        The connection may drop (the service went away, :meth:`disconnect`,
        the app deregistering the service); reconnecting goes on as before.

        Raises:
            TimeoutError: still connected after ``timeout`` seconds.
        """
        with anyio.move_on_after(timeout if timeout is not None else float("inf")):
            while self.connected:
                await self._down.wait()
            return
        raise TimeoutError(f"{self.name} was still connected after {timeout}s")

    # -- talking to the service --------------------------------------------------------

    async def call(
        self,
        endpoint: str,
        message: Message,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - GOSF's per-call limit
    ) -> Message:
        """Send ``message`` to ``endpoint`` and return the service's answer.

        Raises:
            MicroserviceUnavailable: not connected, or the connection dropped.
            MicroserviceTimeout: no answer within ``timeout`` (default
                ``call_timeout``, 2 seconds).
            MicroserviceError: the answer was missing or not a GOSF message.
        """
        limit = self.call_timeout if timeout is None else timeout
        self._check_connected()
        try:
            with anyio.fail_after(limit):
                answer = await self._client.call(
                    endpoint, message.to_wire(), timeout=None, namespace=self.namespace
                )
        except TimeoutError:
            raise MicroserviceTimeout(
                f"{self.name}.{endpoint} did not answer within {limit}s"
            ) from None
        except Disconnected as exc:
            raise MicroserviceUnavailable(f"{self.name} disconnected during the call") from exc
        if answer is None:
            raise MicroserviceError(f"{self.name}.{endpoint} answered with no message")
        try:
            return Message.parse(answer)
        except MessageError as exc:
            raise MicroserviceError(f"{self.name}.{endpoint} answered: {exc.reason}") from None

    async def lob(self, endpoint: str, message: Message) -> None:
        """Send ``message`` to ``endpoint`` without waiting for an answer (GOSF's ``Lob``).

        Raises:
            MicroserviceUnavailable: not connected.
        """
        self._check_connected()
        try:
            await self._client.emit(endpoint, message.to_wire(), namespace=self.namespace)
        except Disconnected as exc:
            raise MicroserviceUnavailable(f"{self.name} disconnected") from exc

    def listen(self, endpoint: str, callback: Listener) -> None:
        """Call ``callback(message)`` for every ``endpoint`` event the service sends.

        Broadcasts and pushes from the service; payloads that are not GOSF
        messages are logged and skipped. ``callback`` may be async.
        """

        async def deliver(*args: Any) -> None:
            try:
                message = Message.parse(args[0] if args else None)
            except MessageError as exc:
                log.warning("%s sent %s that is not a message: %s", self.name, endpoint, exc)
                return
            result = callback(message)
            if inspect.isawaitable(result):
                await result

        self._client.on(endpoint, deliver, namespace=self.namespace)

    def _check_connected(self) -> None:
        if not self.connected:
            raise MicroserviceUnavailable(f"{self.name} is not connected ({self.url})")

    # -- connection lifecycle --------------------------------------------------------------

    def connect(self) -> Microservice:
        """(Re)start connecting, and reconnecting when the service goes away.

        Returns at once; :meth:`wait_connected` waits for the connection.

        Raises:
            RuntimeError: the service has no owner (register it on an app,
                or use ``async with``).
        """
        if self._owner is None:
            raise RuntimeError(
                f"{self.name} is not running: register it on an app or use async with"
            )
        if self._scope is None:
            self._owner.start_soon(self._supervise)
        return self

    def disconnect(self) -> None:
        """Disconnect and stop reconnecting (GOSF's ``Disconnect``); ``connect`` resumes."""
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None

    def _attach(self, owner: TaskGroup) -> None:
        self._owner = owner
        self.connect()

    async def _supervise(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        first, longest = self._backoff
        with anyio.CancelScope() as scope:
            self._scope = scope
            task_status.started()
            down_since = anyio.current_time()  # connecting counts as down until it works
            self.failed_attempts = 0
            while True:
                try:
                    await self._stay_connected(down_since)
                    down_since = anyio.current_time()
                except (OSError, TimeoutError, GosfError, ProtocolError) as exc:
                    self.failed_attempts += 1
                    down_for = anyio.current_time() - down_since
                    pause = next_pause(first, longest, down_for, random.random())
                    self._on_failed(exc, down_for, pause)
                    await anyio.sleep(pause)
                    continue
                await anyio.sleep(next_pause(first, longest, 0.0, random.random()))
        if self._scope is scope:
            self._scope = None

    async def _stay_connected(self, down_since: float) -> None:
        """Connect once, and return when that connection has ended.

        Raises:
            OSError, TimeoutError, GosfError, ProtocolError: connecting failed.
        """
        up = False
        try:
            async with self._client.connect(
                self.url,
                path=self.path + "socket.io",
                namespaces=self.namespace,
                auth=self.auth,
                connect_timeout=self._connect_timeout,
                connector=self._connector,
                ca_file=self._ca_file,
                ssl_context=self._ssl_context,
            ):
                up = True
                self._on_connected(anyio.current_time() - down_since)
                await self._client.wait_disconnected()
                reason = self._client.disconnect_reason
                log.warning("microservice %s disconnected: %s", self.name, reason)
        finally:
            # Also when cancelled (disconnect()): the connection has ended by
            # now, so a waiter woken here sees ``connected`` false.
            if up:
                self._down.set()
                self._down = anyio.Event()

    def _on_connected(self, down_for: float) -> None:
        if self.failed_attempts:
            log.warning(
                "microservice %s is back (%s) after %.1fs and %d failed attempt(s)",
                self.name,
                self.url,
                down_for,
                self.failed_attempts,
            )
        else:
            log.info("microservice %s connected (%s)", self.name, self.url)
        self.failed_attempts = 0
        self._up.set()
        self._up = anyio.Event()

    def _on_failed(self, exc: BaseException, down_for: float, pause: float) -> None:
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.failed_attempts > 1:
            log.debug(
                "microservice %s still unreachable (%s, attempt %d, down %.1fs); next in %.2fs",
                self.name,
                what,
                self.failed_attempts,
                down_for,
                pause,
            )
            return
        first, longest = self._backoff
        log.warning(
            "microservice %s unreachable (%s): %s; retrying in %.2fs, then every %s of the "
            "time it has been down (at least %ss, at most %ss), and logging again once it is back",
            self.name,
            self.url,
            what,
            pause,
            f"{RETRY_SHARE:.0%}",
            first,
            longest,
        )

    async def __aenter__(self) -> Microservice:
        self._own_tg = anyio.create_task_group()
        tg = await self._own_tg.__aenter__()
        self._attach(tg)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self.disconnect()
        tg, self._own_tg, self._owner = self._own_tg, None, None
        result: bool | None = await tg.__aexit__(exc_type, exc, tb)
        return result
