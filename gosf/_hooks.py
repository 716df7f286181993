"""GOSF's ten hooks, with the documented signatures and argument order.

Hooks may be plain functions or coroutines; they are awaited one after the
other, in registration order, inside the request's own scope (so a hook of a
request is cancelled with the client's other work when it disconnects).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeAlias, TypeVar

from ._client import Client, Request
from ._message import Message

__all__ = (
    "HOOK_NAMES",
    "BroadcastHook",
    "ClientBroadcastHook",
    "ClientHook",
    "Hooks",
    "ResponseHook",
)

ClientHook: TypeAlias = Callable[[Client, Request], Awaitable[None] | None]
"""``on_connect``, ``on_disconnect``, ``on_before_request``: ``(client, request)``."""

AfterRequestHook: TypeAlias = Callable[[Client, Request, "Message | None"], Awaitable[None] | None]
"""``on_after_request``: ``(client, request, response)``; ``response`` is ``None`` when
the controller returned nothing."""

ResponseHook: TypeAlias = Callable[[Client, Request, Message], Awaitable[None] | None]
"""``on_before_response``, ``on_after_response``: ``(client, request, response)``."""

BroadcastHook: TypeAlias = Callable[[str, str, Message], Awaitable[None] | None]
"""``on_before_broadcast``, ``on_after_broadcast``: ``(endpoint, room, message)``."""

ClientBroadcastHook: TypeAlias = Callable[[Client, str, str, Message], Awaitable[None] | None]
"""``on_before_client_broadcast``, ``on_after_client_broadcast``:
``(client, endpoint, room, message)``."""

CH = TypeVar("CH", bound=ClientHook)
AH = TypeVar("AH", bound=AfterRequestHook)
RH = TypeVar("RH", bound=ResponseHook)
BH = TypeVar("BH", bound=BroadcastHook)
CBH = TypeVar("CBH", bound=ClientBroadcastHook)


class ClientHookRegistrar(Protocol):
    def __call__(self, callback: CH, /) -> CH: ...


class AfterRequestHookRegistrar(Protocol):
    def __call__(self, callback: AH, /) -> AH: ...


class ResponseHookRegistrar(Protocol):
    def __call__(self, callback: RH, /) -> RH: ...


class BroadcastHookRegistrar(Protocol):
    def __call__(self, callback: BH, /) -> BH: ...


class ClientBroadcastHookRegistrar(Protocol):
    def __call__(self, callback: CBH, /) -> CBH: ...


HOOK_NAMES = (
    "on_connect",
    "on_disconnect",
    "on_before_request",
    "on_after_request",
    "on_before_response",
    "on_after_response",
    "on_before_broadcast",
    "on_after_broadcast",
    "on_before_client_broadcast",
    "on_after_client_broadcast",
)


class Hooks:
    """The registered callbacks of each hook."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[..., Any]]] = {name: [] for name in HOOK_NAMES}

    def add(self, name: str, callback: Callable[..., Any]) -> None:
        """Register ``callback`` for hook ``name``.

        Raises:
            ValueError: no hook has that name.
            TypeError: ``callback`` is not callable.
        """
        callbacks = self._named(name)
        if not callable(callback):
            raise TypeError(f"a {name} hook must be callable, got {callback!r}")
        callbacks.append(callback)

    def remove(self, name: str, callback: Callable[..., Any]) -> None:
        """Unregister ``callback`` (a plugin deactivating); an absent callback is ignored.

        Raises:
            ValueError: no hook has that name.
        """
        callbacks = self._named(name)
        if callback in callbacks:
            callbacks.remove(callback)

    def has(self, name: str) -> bool:
        """Whether hook ``name`` has callbacks.

        Raises:
            ValueError: no hook has that name.
        """
        return bool(self._named(name))

    def _named(self, name: str) -> list[Callable[..., Any]]:
        try:
            return self._callbacks[name]
        except KeyError:
            raise ValueError(f"no hook named {name!r}; hooks are {', '.join(HOOK_NAMES)}") from None

    async def run(self, name: str, *args: Any) -> None:
        """Call every callback of ``name`` with ``args``, in order, awaiting each."""
        for callback in self._callbacks[name]:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
