"""GOSF's ten hooks, with the documented signatures and argument order.

Hooks may be plain functions or coroutines; they are awaited one after the
other, in registration order, inside the request's own scope (so a hook of a
request is cancelled with the client's other work when it disconnects).

A hook is called with its arguments by position (:data:`HOOK_ARGUMENTS`), and
a callback that cannot be called so is refused when it is registered
(:func:`check_signature`, which the controllers' registration uses too), not
when a client first triggers it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, TypeVar

from .client import Client, Request
from .message import Message

__all__ = (
    "HOOK_ARGUMENTS",
    "HOOK_NAMES",
    "BroadcastHook",
    "ClientBroadcastHook",
    "ClientHook",
    "Hooks",
    "ResponseHook",
    "check_signature",
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


HOOK_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "on_connect": ("client", "request"),
    "on_disconnect": ("client", "request"),
    "on_before_request": ("client", "request"),
    "on_after_request": ("client", "request", "response"),
    "on_before_response": ("client", "request", "response"),
    "on_after_response": ("client", "request", "response"),
    "on_before_broadcast": ("endpoint", "room", "message"),
    "on_after_broadcast": ("endpoint", "room", "message"),
    "on_before_client_broadcast": ("client", "endpoint", "room", "message"),
    "on_after_client_broadcast": ("client", "endpoint", "room", "message"),
}
"""Each hook's arguments, in the order :meth:`Hooks.run` passes them (by position)."""

HOOK_NAMES = tuple(HOOK_ARGUMENTS)


def check_signature(
    func: Callable[..., Any], arguments: tuple[str, ...], what: str, example: str
) -> None:
    """Refuse ``func`` unless it can be called with ``arguments``, by position,
    as gosf will call it.

    ``what`` names the callback in the error ("an on_connect hook"),
    ``example`` shows a definition that fits. Defaults and ``*args`` are
    fine; a required keyword-only parameter is not (gosf never passes one). A
    callable whose signature Python cannot tell (some builtins) is accepted:
    there is nothing to check it against.

    Raises:
        TypeError: ``func`` cannot be called with ``arguments``; the message
            names the signature expected and the one found.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*arguments)
    except TypeError as exc:
        raise TypeError(
            f"{what} must take ({', '.join(arguments)}), as in `{example}`; "
            f"{_name(func)}{_bare(signature)} does not: {exc}"
        ) from None


def _name(func: Callable[..., Any]) -> str:
    if isinstance(func, functools.partial):
        return f"partial({_name(func.func)})"
    name = getattr(func, "__qualname__", None)
    if not isinstance(name, str):  # an object with a __call__
        return f"{type(func).__qualname__} object"
    return name.rpartition("<locals>.")[2]  # a function defined in a function


def _bare(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` without annotations: the parameters are what matters here."""
    return signature.replace(
        parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
        return_annotation=signature.empty,
    )


class Hooks:
    """The registered callbacks of each hook."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[..., Any]]] = {name: [] for name in HOOK_NAMES}

    def add(self, name: str, callback: Callable[..., Any]) -> None:
        """Register ``callback`` for hook ``name``.

        Raises:
            ValueError: no hook has that name.
            TypeError: ``callback`` is not callable, or cannot be called with
                the hook's arguments (:data:`HOOK_ARGUMENTS`).
        """
        callbacks = self._named(name)
        if not callable(callback):
            raise TypeError(f"a {name} hook must be callable, got {callback!r}")
        arguments = HOOK_ARGUMENTS[name]
        check_signature(
            callback,
            arguments,
            f"an {name} hook",  # every hook's name starts with "on_"
            f"async def {name}({', '.join(arguments)}) -> None",
        )
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

    @property
    def registered(self) -> Mapping[str, Sequence[Callable[..., Any]]]:
        """Each hook's callbacks, by name (every hook has an entry): a hook with
        none costs the request cycle a look-up here instead of a call to :meth:`run`."""
        return self._callbacks

    async def run(self, name: str, *args: Any) -> None:
        """Call every callback of ``name`` with ``args``, in order, awaiting each."""
        for callback in self._callbacks[name]:
            result = callback(*args)
            # A plain function's None is no awaitable: no isinstance chain for it.
            if result is not None and inspect.isawaitable(result):
                await result
