"""Test gosf apps without a network: an in-process client, under asyncio and trio.

::

    import gosf.testing

    async def test_echo():                       # with @pytest.mark.anyio
        async with gosf.testing.connect(app) as client:
            reply = await client.request("echo", {"text": "hi"})
            assert reply == gosf.Message.success("hi")
            assert await client.next_event("echo") == reply

The client is :class:`gosf.SocketIOClient` over an in-memory ASGI websocket
(:func:`gosf.testing.asgi_connector`): the app runs its real request/response
cycle, hooks and plugins, with no socket opened. :func:`serve` runs an app
(its lifespan) for several clients; :func:`connect` does both at once.

As a pytest plugin (``-p gosf.testing``, or ``pytest_plugins = ["gosf.testing"]``
in a ``conftest.py``), it provides a ``gosf_server`` fixture that serves the
app returned by your ``gosf_app`` fixture.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio

from ._application.app import App
from ._application.message import Message
from ._client.asgi import asgi_connector
from ._client.client import SocketIOClient
from ._engineio.http import HostNames

__all__ = ("TestClient", "TestServer", "asgi_connector", "connect", "serve")


class TestClient:
    """A connected client with GOSF-shaped helpers; :attr:`sio` is the raw client."""

    __test__ = False  # not a pytest test class

    def __init__(self, sio: SocketIOClient, namespace: str = "/") -> None:
        self.sio = sio
        """The underlying :class:`gosf.SocketIOClient`."""
        self.namespace = namespace
        """The namespace it talks in (the app's ``namespace``)."""
        self._events: dict[str, list[Any]] = defaultdict(list)
        self._arrived = anyio.Event()
        sio.on_any(self._record, namespace=namespace)

    def _record(self, event: str, *args: Any) -> None:
        self._events[event].append(_as_message(args[0]) if args else None)
        self._arrived.set()
        self._arrived = anyio.Event()

    @property
    def sid(self) -> str:
        """The client's sid in its namespace (``""`` once disconnected)."""
        return self.sio.sid(self.namespace) or ""

    async def request(
        self,
        endpoint: str,
        message: Message | Mapping[str, Any] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the call, as in SocketIOClient
    ) -> Message | None:
        """Send a request and return the response (``None`` when the controller gave none).

        Raises:
            TimeoutError: no acknowledgement within ``timeout`` seconds.
            gosf.Disconnected: the app closed the connection.
        """
        ack = await self.sio.call(
            endpoint, _payload(message), timeout=timeout, namespace=self.namespace
        )
        return None if ack is None else _as_message(ack)

    async def send(self, endpoint: str, message: Message | Mapping[str, Any] | None = None) -> None:
        """Send a request without asking for an acknowledgement."""
        await self.sio.emit(endpoint, _payload(message), namespace=self.namespace)

    async def next_event(self, endpoint: str, *, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """The next ``endpoint`` event not taken yet (a :class:`Message` when it is one).

        Raises:
            TimeoutError: none arrived within ``timeout`` seconds.
        """
        with anyio.fail_after(timeout):
            while not self._events[endpoint]:
                await self._arrived.wait()
        return self._events[endpoint].pop(0)

    def events(self, endpoint: str) -> list[Any]:
        """The ``endpoint`` events received and not taken yet."""
        return list(self._events[endpoint])


class TestServer:
    """A running app that in-process clients connect to; made by :func:`serve`."""

    __test__ = False

    def __init__(self, app: Any) -> None:
        self.app = app
        """The app being served."""
        self.connector = asgi_connector(app)
        """An in-memory connector to the app: ``SocketIOClient.connect(..., connector=)``."""

    @asynccontextmanager
    async def client(
        self,
        *,
        auth: dict[str, Any] | None = None,
        headers: Iterable[tuple[str, str]] = (),
        protocol: Literal[4, 5] = 5,
        path: str | None = None,
        host: str | None = None,
    ) -> AsyncIterator[TestClient]:
        """Connect a client for the duration of the block.

        ``host`` is the ``Host`` header it sends: by default ``testserver``,
        or the first name an app with ``rejectInvalidHostnames`` accepts.

        Raises:
            gosf.ConnectionRefused: the app refused the connection (e.g. ``on_connect``).
        """
        if path is None:
            path = self.app.config.path + "socket.io" if isinstance(self.app, App) else "/socket.io"
        if host is None:
            host = _default_host(self.app)
        namespace = self.app.config.namespace if isinstance(self.app, App) else "/"
        sio = SocketIOClient(protocol=protocol)
        client = TestClient(sio, namespace)
        async with sio.connect(
            f"http://{host}",
            namespaces=namespace,
            auth=auth,
            headers=headers,
            path=path,
            connector=self.connector,
        ):
            yield client


@asynccontextmanager
async def serve(app: App) -> AsyncIterator[TestServer]:
    """Run ``app`` (its startup, plugins, shutdown) for the duration of the block.

    An exception raised in the block (a failed assertion, a refused
    connection) ends the app cleanly and then comes out as itself, not
    wrapped in the exception groups of the app's task groups.
    """
    failure: Exception | None = None
    async with app.run():
        try:
            yield TestServer(app)
        except Exception as exc:  # cancellation and KeyboardInterrupt pass through
            failure = exc
    if failure is not None:
        raise failure


@asynccontextmanager
async def connect(app: App, *, auth: dict[str, Any] | None = None) -> AsyncIterator[TestClient]:
    """Run ``app`` and connect one client to it (shorthand for :func:`serve` + ``client``).

    Raises:
        gosf.ConnectionRefused: the app refused the connection, as
            ``serve(app).client()`` raises it.
    """
    async with serve(app) as server, server.client(auth=auth) as client:
        yield client


def _default_host(app: Any) -> str:
    """``testserver``, or a name the app accepts when it checks the ``Host`` header."""
    names = HostNames.from_options(app.server.options) if isinstance(app, App) else None
    if names is None or not names.patterns:
        return "testserver"
    return names.patterns[0].replace("*", "test")


def _payload(message: Message | Mapping[str, Any] | None) -> Any:
    if message is None:
        return {}
    if isinstance(message, Message):
        return message.to_wire()
    return dict(message)


def _as_message(value: Any) -> Any:
    if isinstance(value, dict):
        try:
            return Message.parse(value)
        except ValueError:
            return value
    return value


try:  # the pytest plugin, when pytest is there
    import pytest

    @pytest.fixture
    async def gosf_server(gosf_app: App) -> AsyncIterator[TestServer]:
        """The app of your ``gosf_app`` fixture, running; ``gosf_server.client()`` connects."""
        async with serve(gosf_app) as server:
            yield server

except ImportError:  # pragma: no cover - gosf.testing without pytest
    pass
