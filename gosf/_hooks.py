"""GOSF's ten hooks, with the documented signatures and argument order.

Hooks may be plain functions or coroutines; they are awaited one after the
other, in registration order, inside the request's own scope (so a hook of a
request is cancelled with the client's other work when it disconnects).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

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

ResponseHook: TypeAlias = Callable[[Client, Request, "Message | None"], Awaitable[None] | None]
"""``on_after_request``, ``on_before_response``, ``on_after_response``:
``(client, request, response)``."""

BroadcastHook: TypeAlias = Callable[[str, str, Message], Awaitable[None] | None]
"""``on_before_broadcast``, ``on_after_broadcast``: ``(endpoint, room, message)``."""

ClientBroadcastHook: TypeAlias = Callable[[Client, str, str, Message], Awaitable[None] | None]
"""``on_before_client_broadcast``, ``on_after_client_broadcast``:
``(client, endpoint, room, message)``."""

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
        if name not in self._callbacks:
            raise ValueError(f"no hook named {name!r}; hooks are {', '.join(HOOK_NAMES)}")
        if not callable(callback):
            raise TypeError(f"a {name} hook must be callable, got {callback!r}")
        self._callbacks[name].append(callback)

    def remove(self, name: str, callback: Callable[..., Any]) -> None:
        """Unregister ``callback`` (a plugin deactivating); absent callbacks are ignored."""
        callbacks = self._callbacks.get(name, [])
        if callback in callbacks:
            callbacks.remove(callback)

    def has(self, name: str) -> bool:
        return bool(self._callbacks[name])

    async def run(self, name: str, *args: Any) -> None:
        """Call every callback of ``name`` with ``args``, in order, awaiting each."""
        for callback in self._callbacks[name]:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
