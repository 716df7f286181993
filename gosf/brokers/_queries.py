"""Cluster queries: what one process asks the others, and what each answers.

A query is a small frozen dataclass (:class:`RoomsQuery`, :class:`CountQuery`,
:class:`SocketCommand`); its answer is another (:class:`RoomCounts`,
:class:`SocketCount`, :class:`CommandResult`). Each query names the type of
its answer (``answer_type``), so :meth:`gosf.brokers.Broker.query` returns
answers of that type and nobody downstream checks shapes by hand.

Brokers that cross processes carry both as small JSON objects:
:func:`encode` makes one, :func:`decode_query` and :func:`decode_answer` read
one back, checking every field. They raise :class:`ValueError` for anything
else (:class:`UnknownQuery` for a well-formed query of a kind this process does
not know, most likely from a newer gosf): a broker decodes once, where the
message arrives, and drops what does not decode. The JSON objects are the
ones gosf has always sent (the Redis broker's wire format version 1)::

    {"op": "rooms", "n": "/chat"}                           → {"rooms": {"red": 2}}
    {"op": "count", "n": "/chat"}                           → {"count": 3}
    {"op": "disconnect", "n": "/chat", "sid": "..."}        → {"found": true}
    {"op": "join" | "leave", "n": "/chat", "sid": "...", "room": "red"}
                                                            → {"found": false}
    {"op": "server-event", "n": "/", "e": "ping", "a": [1], "o": "<node id>",
     "c": "<call id>" | null, "t": 5.0 | null}              → {"found": true}

Queries of many sockets at once (Node's ``fetchSockets``, ``socketsJoin``,
``socketsLeave``, ``disconnectSockets``, ``broadcastWithAck``) came later;
a process of an older gosf does not know them and drops them, so it simply
takes no part::

    {"op": "fetch-sockets", "n": "/", "in": ["red"] | null, "ex": ["blue"]}
                                                → {"sockets": [{"sid": ..., ...}]}
    {"op": "sockets-join" | "sockets-leave", "n": "/", "in": ..., "ex": ...,
     "to": ["green"]}                                       → {"count": 2}
    {"op": "sockets-disconnect", "n": "/", "in": ..., "ex": ..., "close": false}
                                                            → {"count": 2}
    {"op": "broadcast-ack", "n": "/", "in": ..., "ex": ..., "o": "<node id>",
     "b": "<broadcast id>", "t": 5.0, "p": "<packet text>" | null, "att": ["<base64>"]}
                                                → {"node": "<node id>", "sids": [...]}

A new kind of query is a dataclass for it (its ``ops``, ``answer_type``,
``to_json`` and ``from_json``), one for its answer unless an existing one
fits, its name in :data:`AnyQuery`, and one ``case`` where the server
answers queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, get_args

__all__ = (
    "A",
    "AckBroadcast",
    "AckRecipients",
    "AnyQuery",
    "CommandResult",
    "CountQuery",
    "FetchSockets",
    "HandedSession",
    "Query",
    "QueryAnswer",
    "RoomCounts",
    "RoomsCommand",
    "RoomsQuery",
    "ServerSideEvent",
    "SocketCommand",
    "SocketCount",
    "SocketInfo",
    "SocketList",
    "TakeSession",
    "UnknownQuery",
    "decode_answer",
    "decode_query",
    "encode",
)

from ._query_base import (
    A,
    Query,
    QueryAnswer,
    SocketCount,
    UnknownQuery,
    count_field,
    string_field,
)
from ._recovery_queries import HandedSession, TakeSession
from ._socket_queries import (
    AckBroadcast,
    AckRecipients,
    FetchSockets,
    RoomsCommand,
    SocketInfo,
    SocketList,
)

# -- answers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomCounts(QueryAnswer):
    """One process's rooms of a namespace, each with its number of connected members."""

    rooms: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"rooms": dict(self.rooms)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        rooms = obj.get("rooms")
        if not isinstance(rooms, dict):
            raise ValueError(f"'rooms' must be an object, not {rooms!r}")
        return cls(
            {str(room): count_field(count, "a room's count") for room, count in rooms.items()}
        )


@dataclass(frozen=True, slots=True)
class CommandResult(QueryAnswer):
    """Whether one process had the socket a :class:`SocketCommand` names (and acted on it)."""

    found: bool

    def to_json(self) -> dict[str, Any]:
        return {"found": self.found}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        found = obj.get("found")
        if not isinstance(found, bool):
            raise ValueError(f"'found' must be a boolean, not {found!r}")
        return cls(found)


# -- queries ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomsQuery(Query[RoomCounts]):
    """Every room of ``namespace`` with its number of members (sockets' own rooms left out)."""

    namespace: str = "/"
    ops: ClassVar[tuple[str, ...]] = ("rooms",)

    @property
    def answer_type(self) -> type[RoomCounts]:
        return RoomCounts

    def to_json(self) -> dict[str, Any]:
        return {"op": "rooms", "n": self.namespace}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        return cls(string_field(obj, "n"))


@dataclass(frozen=True, slots=True)
class CountQuery(Query[SocketCount]):
    """The number of sockets connected to ``namespace``."""

    namespace: str = "/"
    ops: ClassVar[tuple[str, ...]] = ("count",)

    @property
    def answer_type(self) -> type[SocketCount]:
        return SocketCount

    def to_json(self) -> dict[str, Any]:
        return {"op": "count", "n": self.namespace}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        return cls(string_field(obj, "n"))


SocketOp = Literal["disconnect", "join", "leave"]


@dataclass(frozen=True, slots=True)
class SocketCommand(Query[CommandResult]):
    """``disconnect``, ``join`` or ``leave`` (``room``) the socket ``sid`` of ``namespace``.

    Raises:
        ValueError: an unknown ``op``, or ``join``/``leave`` without a room.
    """

    op: SocketOp
    sid: str
    room: str | None = None
    namespace: str = "/"
    ops: ClassVar[tuple[str, ...]] = get_args(SocketOp)

    def __post_init__(self) -> None:
        if self.op not in self.ops:
            raise ValueError(f"unknown socket command {self.op!r}")
        if self.op == "disconnect":
            object.__setattr__(self, "room", None)  # a disconnection names no room
        elif not isinstance(self.room, str) or not self.room:
            raise ValueError(f"{self.op} needs a room")

    @property
    def answer_type(self) -> type[CommandResult]:
        return CommandResult

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"op": self.op, "n": self.namespace, "sid": self.sid}
        if self.room is not None:
            obj["room"] = self.room
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        op = string_field(obj, "op")
        room = obj.get("room")
        if room is not None and not isinstance(room, str):
            raise ValueError(f"'room' must be a string, not {room!r}")
        return cls(op, string_field(obj, "sid"), room, string_field(obj, "n"))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ServerSideEvent(Query[CommandResult]):
    """A server-side event (Node's ``serverSideEmit``) for the processes other than ``origin``.

    Each answers whether it has a handler for ``event`` in ``namespace`` (and
    started it). With a ``call`` id, each handler's return value goes back to
    ``origin`` as a direct message (``gosf._socketio.serverside``), within
    ``timeout`` seconds. ``args`` must be JSON-serialisable to cross processes.
    """

    namespace: str
    event: str
    args: tuple[Any, ...]
    origin: str
    call: str | None = None
    timeout: float | None = None
    ops: ClassVar[tuple[str, ...]] = ("server-event",)

    @property
    def answer_type(self) -> type[CommandResult]:
        return CommandResult

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "server-event",
            "n": self.namespace,
            "e": self.event,
            "a": list(self.args),
            "o": self.origin,
            "c": self.call,
            "t": self.timeout,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        args, call, timeout = obj.get("a"), obj.get("c"), obj.get("t")
        if not isinstance(args, list):
            raise ValueError(f"'a' must be a list, not {args!r}")
        if call is not None and not isinstance(call, str):
            raise ValueError(f"'c' must be a string or null, not {call!r}")
        if timeout is not None and (
            not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0
        ):
            raise ValueError(f"'t' must be a positive number or null, not {timeout!r}")
        origin = string_field(obj, "o")
        return cls(
            string_field(obj, "n"), string_field(obj, "e"), tuple(args), origin, call, timeout
        )


AnyQuery = (
    RoomsQuery
    | CountQuery
    | SocketCommand
    | ServerSideEvent
    | FetchSockets
    | RoomsCommand
    | AckBroadcast
    | TakeSession
)
"""Every kind of query this gosf asks and answers."""

AnyAnswer = RoomCounts | SocketCount | CommandResult | SocketList | AckRecipients | HandedSession
"""Every kind of answer to :data:`AnyQuery`."""

QUERY_TYPES: tuple[type[AnyQuery], ...] = get_args(AnyQuery)
_BY_OP: dict[str, type[AnyQuery]] = {op: kind for kind in QUERY_TYPES for op in kind.ops}


# -- the codec ----------------------------------------------------------------------------


def encode(item: Query[Any] | QueryAnswer) -> dict[str, Any]:
    """A query or an answer as a JSON object (to be serialised by the broker)."""
    return item.to_json()


def decode_query(obj: object) -> AnyQuery:
    """The query a JSON object (as parsed) stands for.

    Raises:
        UnknownQuery: a query whose ``"op"`` this process does not know.
        ValueError: ``obj`` is not a query.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"a query must be an object, not {type(obj).__name__}")
    op = string_field(obj, "op")
    kind = _BY_OP.get(op)
    if kind is None:
        raise UnknownQuery(f"unknown query {op[:40]!r}")
    return kind.from_json(obj)


def decode_answer(query: Query[A], obj: object) -> A:
    """The answer to ``query`` a JSON object (as parsed) stands for.

    Raises:
        ValueError: ``obj`` is not an answer to such a query.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"an answer must be an object, not {type(obj).__name__}")
    return query.answer_type.from_json(obj)
