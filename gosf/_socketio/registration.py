"""Registering handlers on :class:`gosf.SocketIOServer`: the decorators and
methods that put a handler in a namespace's tables.

:class:`HandlerRegistration` is mixed into the server; all it needs of it is
:meth:`~HandlerRegistration.namespace`, the namespace of a name made on first
use. The tables themselves, and what runs a handler, are the namespace's
(``namespace.py``) and the socket's (``socket.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from .namespace import ConnectHandler, DisconnectHandler, Dispatcher, Namespace, RecoverHandler
from .typed import typed_handler

__all__ = ("HandlerRegistration",)

F = TypeVar("F", bound=Callable[..., Any])


class HandlerRegistration(ABC):
    """The server's ways to register handlers (see the module)."""

    @abstractmethod
    def namespace(self, name: str = "/") -> Namespace:
        """The namespace ``name``, created on first use."""

    def on(self, event: str, *, namespace: str = "/") -> Callable[[F], F]:
        """Decorator: register an ``async def handler(socket, *args)`` for ``event``.

        The handler's return value is sent as the ack when the client asked
        for one (``None`` = an empty ack, a tuple = several arguments). A
        parameter annotated with a pydantic model (or a dataclass) gets the
        argument validated; one that does not fit never reaches the handler
        (``_socketio/typed.py``).

        Raises:
            ValueError: the event already has a handler.
        """

        def register(handler: F) -> F:
            self.namespace(namespace).on(event, typed_handler(handler))
            return handler

        return register

    def on_any(self, handler: Dispatcher, *, namespace: str = "/") -> Dispatcher:
        """Register ``async def handler(socket, event, args, ack_id)`` for every event
        of ``namespace`` that has no handler of its own (python-socketio's ``"*"``;
        unlike Node's ``socket.onAny`` it does not see the others: an
        :class:`Observer` sees every packet).

        It answers the ack itself, ``await socket.ack(ack_id, ...)`` when
        ``ack_id`` is not ``None``; it runs in a handler slot as handlers do.

        Raises:
            ValueError: the namespace has one already.
            TypeError: ``handler`` is not an ``async def`` function.
        """
        self.namespace(namespace).on_any(handler)
        return handler

    def on_connect(self, handler: ConnectHandler, *, namespace: str = "/") -> ConnectHandler:
        """Register ``async def on_connect(socket, auth)``.

        It may raise :class:`ConnectionRefused` to refuse the client.
        """
        self.namespace(namespace).connect_handlers.append(handler)
        return handler

    def on_disconnect(
        self, handler: DisconnectHandler, *, namespace: str = "/"
    ) -> DisconnectHandler:
        """Register ``async def on_disconnect(socket, reason)``.

        It runs once the socket's handlers have ended (they are cancelled).
        ``reason`` is a :class:`gosf.CloseReason` (the session ended) or a
        :class:`gosf.DisconnectReason` (the socket left its namespace), each
        a :class:`str` (docs/protocol.md lists them).
        """
        self.namespace(namespace).disconnect_handlers.append(handler)
        return handler

    def on_recover(self, handler: RecoverHandler, *, namespace: str = "/") -> RecoverHandler:
        """Register ``async def on_recover(socket)``, run instead of the connect
        handlers when a socket is recovered (``socket.recovered``) and
        ``Recovery.skip_connect_handlers`` is on (the default)."""
        self.namespace(namespace).recover_handlers.append(handler)
        return handler
