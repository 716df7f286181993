"""Dynamic namespaces: a pattern of names whose namespaces are made when a client asks.

Node's parent namespace (``io.of(/^\\/tenant-\\d+$/)``) is the model. A
:class:`ParentNamespace` holds the handlers, and a name that matches it
(a ``"/tenant-{id}"`` template, a regular expression, or a predicate) gets a
child :class:`~gosf._socketio.namespace.Namespace` of that name on the first
CONNECT to it. The child shares the parent's handler tables themselves, not
copies: a handler registered on the parent later reaches every child. A
socket sees the child's name (``socket.namespace.name`` is ``"/tenant-7"``);
rooms are the child's own.

The rules:

* A name that is a namespace already (made by ``server.namespace``) is that
  namespace; the parents are asked, in the order they were made, only for
  the others. A name no parent accepts is refused as Socket.IO refuses an
  unknown namespace (CONNECT_ERROR "Invalid namespace").
* A child is forgotten when its last socket leaves, and a CONNECT that made
  one and was refused forgets it too: a client may ask for any number of
  names, and each child holds memory (Node keeps children unless
  ``cleanupEmptyChildNamespaces``; gosf turns that on by default, since a
  hostile client could otherwise fill the server with empty namespaces).
  ``max_children`` bounds the children alive at once; past it a new name is
  refused as an unknown one. So that one client cannot take them all,
  ``max_children_per_client`` bounds the children one client (one Engine.IO
  session) is connected to at once; past it, it is refused the same way.
* A broadcast to the parent (:meth:`ParentNamespace.emit`) is a broadcast to
  each child this process has, each carried to the other processes under
  the child's name, as Node's parent namespace does: a child with no socket
  in this process is not reached from here (a broadcast to its name through
  ``SocketIOServer.emit`` is).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from ..protocol.parser import JSON_PARSER, Parser
from .adapter import Publish
from .namespace import (
    ConnectHandler,
    DisconnectHandler,
    Namespace,
    check_catch_all,
    check_handler,
)
from .observers import Observers
from .socket import Dispatcher, EventHandler, Socket

__all__ = (
    "DEFAULT_MAX_CHILDREN",
    "DEFAULT_MAX_CHILDREN_PER_CLIENT",
    "NamePattern",
    "ParentNamespace",
)

NamePattern = str | re.Pattern[str] | Callable[[str], bool]
"""What names a parent accepts: a template such as ``"/tenant-{id}"`` (each
``{...}`` stands for one or more characters other than ``/``), a regular
expression the whole name must match, or a predicate."""

DEFAULT_MAX_CHILDREN = 10_000
"""Children of one parent alive at once, by default."""

DEFAULT_MAX_CHILDREN_PER_CLIENT = 64
"""Children of one parent one client may be connected to at once, by default."""

_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")


def _matcher(pattern: NamePattern) -> Callable[[str], bool]:
    """``pattern`` as a predicate on names.

    Raises:
        ValueError: a template that does not start with ``/``.
        TypeError: ``pattern`` is none of the kinds :data:`NamePattern` names.
    """
    if isinstance(pattern, re.Pattern):
        regex = pattern
    elif isinstance(pattern, str):
        if not pattern.startswith("/"):
            raise ValueError(f"a namespace template starts with '/': {pattern!r}")
        pieces = _PLACEHOLDER.split(pattern)
        regex = re.compile("[^/]+".join(re.escape(piece) for piece in pieces))
    elif callable(pattern):
        return pattern
    else:
        raise TypeError(f"a namespace pattern, not {type(pattern).__name__}")
    return lambda name: regex.fullmatch(name) is not None


class ParentNamespace:
    """The handlers of every namespace whose name matches a pattern (see the module).

    Made by :meth:`gosf.SocketIOServer.dynamic_namespace`.
    """

    def __init__(
        self,
        pattern: NamePattern,
        registry: dict[str, Namespace],
        publish: Publish | None = None,
        parser: Parser = JSON_PARSER,
        *,
        max_children: int = DEFAULT_MAX_CHILDREN,
        max_children_per_client: int = DEFAULT_MAX_CHILDREN_PER_CLIENT,
        cleanup_empty: bool = True,
    ) -> None:
        """A parent accepting the names ``pattern`` says, with no handlers yet;
        its children live in ``registry`` (the server's namespaces) too.

        Raises:
            ValueError: a template that does not start with ``/``, or
                ``max_children`` or ``max_children_per_client`` below one.
            TypeError: ``pattern`` is not a template, an expression or a predicate.
        """
        if max_children < 1 or max_children_per_client < 1:
            raise ValueError("max_children and max_children_per_client must be at least 1")
        self.pattern = pattern
        """The names it accepts (see :data:`NamePattern`)."""
        self.accepts = _matcher(pattern)
        self.max_children = max_children
        """Children alive at once; past it a new name is refused."""
        self.max_children_per_client = max_children_per_client
        """Children one client may be connected to at once; past it, it is refused."""
        self.cleanup_empty = cleanup_empty
        """Whether a child is forgotten once empty (see the module: keep it on
        unless the names are few and trusted)."""
        self.children: dict[str, Namespace] = {}
        """The children alive in this process, by name."""
        # Shared with every child (the same objects): see the module.
        self.handlers: dict[str, EventHandler] = {}
        self.connect_handlers: list[ConnectHandler] = []
        self.disconnect_handlers: list[DisconnectHandler] = []
        self.catch_all: Dispatcher | None = None
        self._publish = publish
        self._parser = parser
        # The server's namespaces by name, where the children live too (broadcasts
        # and queries of other processes find them there), and the CONNECTs
        # under way per child: a child they wait for is not forgotten.
        self._registry = registry
        self._connecting: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<ParentNamespace {self.pattern!r} children={len(self.children)}>"

    # -- registration (as on a namespace) ----------------------------------------

    def on(self, event: str, handler: EventHandler) -> None:
        """Register ``handler`` for ``event`` in every child (see :meth:`Namespace.on`).

        Raises:
            ValueError: ``event`` already has a handler, or is reserved.
            TypeError: ``handler`` is not an ``async def`` function.
        """
        check_handler(self.handlers, event, handler, repr(self.pattern))
        self.handlers[event] = handler

    def on_any(self, handler: Dispatcher) -> None:
        """Register the catch-all of every child (see :meth:`Namespace.on_any`).

        Raises:
            ValueError: it has one already.
            TypeError: ``handler`` is not an ``async def`` function.
        """
        check_catch_all(self.catch_all, handler, repr(self.pattern))
        self.catch_all = handler
        for child in self.children.values():
            child.catch_all = handler

    def on_connect(self, handler: ConnectHandler) -> ConnectHandler:
        """Register ``async def on_connect(socket, auth)`` (it may refuse the client)."""
        self.connect_handlers.append(handler)
        return handler

    def on_disconnect(self, handler: DisconnectHandler) -> DisconnectHandler:
        """Register ``async def on_disconnect(socket, reason)``."""
        self.disconnect_handlers.append(handler)
        return handler

    # -- children -----------------------------------------------------------------

    def child(
        self, name: str, joined: Iterable[str], observer: Observers | None
    ) -> Namespace | None:
        """The child ``name``, made now if the name is accepted and there is room,
        for a CONNECT under way until :meth:`connected`; ``None``: refused.
        ``joined``: the namespaces the client is connected to already."""
        held = sum(1 for joined_name in joined if joined_name in self.children)
        if held >= self.max_children_per_client:
            return None
        child = self.children.get(name)
        if child is None:
            if len(self.children) >= self.max_children or not self.accepts(name):
                return None
            child = Namespace(name, self._publish, self._parser)
            child.handlers = self.handlers
            child.connect_handlers = self.connect_handlers
            child.disconnect_handlers = self.disconnect_handlers
            child.catch_all = self.catch_all
            child.observe(observer)
            if self.cleanup_empty:
                child.emptied = self._emptied
            self.children[name] = self._registry[name] = child
        self._connecting[name] = self._connecting.get(name, 0) + 1
        return child

    def connected(self, child: Namespace) -> None:
        """The CONNECT :meth:`child` was for is over (joined or refused)."""
        name = child.name
        left = self._connecting.get(name, 0) - 1
        if left > 0:
            self._connecting[name] = left
            return
        self._connecting.pop(name, None)
        if self.cleanup_empty and not child.sockets:
            self._emptied(child)

    def _emptied(self, child: Namespace) -> None:
        """Forget ``child``, empty, unless a CONNECT to it is under way."""
        name = child.name
        if self.children.get(name) is not child or name in self._connecting:
            return
        del self.children[name]
        if self._registry.get(name) is child:
            del self._registry[name]

    # -- broadcasts -------------------------------------------------------------------

    async def emit(
        self,
        event: str,
        *args: Any,
        to: str | Iterable[str] | None = None,
        skip: Socket | None = None,
        skip_rooms: str | Iterable[str] | None = None,
        volatile: bool = False,
    ) -> int:
        """Broadcast to every child (see the module for which); see :meth:`Namespace.emit`.

        Returns the number of this process's sockets the event was queued for.
        """
        if to is not None and not isinstance(to, str):
            to = tuple(to)  # read once per child
        if skip_rooms is not None and not isinstance(skip_rooms, str):
            skip_rooms = tuple(skip_rooms)
        sent = 0
        for child in list(self.children.values()):
            sent += await child.emit(
                event, *args, to=to, skip=skip, skip_rooms=skip_rooms, volatile=volatile
            )
        return sent
