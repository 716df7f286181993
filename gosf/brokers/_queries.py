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

import base64
import binascii
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, get_args

__all__ = (
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


class UnknownQuery(ValueError):
    """A well-formed query of a kind this process does not know (a newer gosf's, most likely)."""


class QueryAnswer(ABC):
    """What one process answers to a :class:`Query`."""

    __slots__ = ()

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """This answer as a JSON object."""

    @classmethod
    @abstractmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        """The answer a JSON object stands for.

        Raises:
            ValueError: ``obj`` is not such an answer.
        """


A = TypeVar("A", bound=QueryAnswer)
A_co = TypeVar("A_co", bound=QueryAnswer, covariant=True)


class Query(ABC, Generic[A_co]):
    """A question (or command) for every process of a cluster, answered by an ``A`` each."""

    __slots__ = ()

    ops: ClassVar[tuple[str, ...]]
    """The values of ``"op"`` that stand for this kind of query on the wire."""

    @property
    @abstractmethod
    def answer_type(self) -> type[A_co]:
        """The type of the answers to this query."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """This query as a JSON object."""

    @classmethod
    @abstractmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        """The query a JSON object stands for (its ``"op"`` is one of ``ops``).

        Raises:
            ValueError: ``obj`` is not such a query.
        """


# -- answers ------------------------------------------------------------------------------


def _count(value: object, what: str) -> int:
    """``value`` if it is a count (a non-negative integer, not a boolean).

    Raises:
        ValueError: it is not.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, not {value!r}")
    return value


def _string(obj: Mapping[str, Any], key: str) -> str:
    """``obj[key]``, which must be a string.

    Raises:
        ValueError: it is missing or not a string.
    """
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, not {value!r}")
    return value


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
        return cls({str(room): _count(count, "a room's count") for room, count in rooms.items()})


@dataclass(frozen=True, slots=True)
class SocketCount(QueryAnswer):
    """How many sockets one process has connected to a namespace."""

    count: int

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        return cls(_count(obj.get("count"), "'count'"))


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
        return cls(_string(obj, "n"))


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
        return cls(_string(obj, "n"))


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
        op = _string(obj, "op")
        room = obj.get("room")
        if room is not None and not isinstance(room, str):
            raise ValueError(f"'room' must be a string, not {room!r}")
        return cls(op, _string(obj, "sid"), room, _string(obj, "n"))  # type: ignore[arg-type]


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
        origin = _string(obj, "o")
        return cls(_string(obj, "n"), _string(obj, "e"), tuple(args), origin, call, timeout)


# -- queries of many sockets --------------------------------------------------------------


def _names(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """``obj[key]``, a list of strings (missing: none).

    Raises:
        ValueError: it is not a list of strings.
    """
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key!r} must be a list of strings, not {value!r}")
    return tuple(value)


def _selection(obj: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """The rooms (``"in"``, ``null``: every socket) and except-rooms (``"ex"``) of a query.

    Raises:
        ValueError: either is not a list of strings.
    """
    rooms = None if obj.get("in") is None else _names(obj, "in")
    return rooms, _names(obj, "ex")


def _select_json(rooms: tuple[str, ...] | None, skip_rooms: tuple[str, ...]) -> dict[str, Any]:
    return {"in": None if rooms is None else list(rooms), "ex": list(skip_rooms)}


def _mapping(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]``, a JSON object (missing: empty).

    Raises:
        ValueError: it is not an object.
    """
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be an object, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SocketInfo:
    """One socket of the cluster as :class:`FetchSockets` describes it (a snapshot).

    ``headers`` and ``query`` are those of the request that opened the
    client's session, ``auth`` the payload of its CONNECT, ``address`` the
    peer's ``(host, port)`` as the ASGI server saw it (``None``: unknown),
    ``node`` the node id of the process that holds it, ``data`` the entries
    of its per-connection state that JSON can carry (the others are left
    out, so that a socket reads the same whichever process asks).
    """

    sid: str
    namespace: str
    rooms: frozenset[str]
    node: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    auth: Mapping[str, Any]
    address: tuple[str, int] | None
    data: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "n": self.namespace,
            "rooms": sorted(self.rooms),
            "node": self.node,
            "headers": dict(self.headers),
            "query": dict(self.query),
            "auth": dict(self.auth),
            "address": None if self.address is None else list(self.address),
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, obj: object) -> Self:
        """Raises: ValueError: ``obj`` is not such a socket."""
        if not isinstance(obj, dict):
            raise ValueError(f"a socket must be an object, not {type(obj).__name__}")
        address = obj.get("address")
        if address is not None:
            if not (
                isinstance(address, list)
                and len(address) == 2
                and isinstance(address[0], str)
                and isinstance(address[1], int)
            ):
                raise ValueError(f"'address' must be [host, port] or null, not {address!r}")
            address = (address[0], address[1])
        headers, query = _mapping(obj, "headers"), _mapping(obj, "query")
        if not all(isinstance(v, str) for v in (*headers.values(), *query.values())):
            raise ValueError("headers and query values must be strings")
        return cls(
            _string(obj, "sid"),
            _string(obj, "n"),
            frozenset(_names(obj, "rooms")),
            _string(obj, "node"),
            headers,
            query,
            _mapping(obj, "auth"),
            address,
            _mapping(obj, "data"),
        )


@dataclass(frozen=True, slots=True)
class SocketList(QueryAnswer):
    """The sockets of one process that a :class:`FetchSockets` selects."""

    sockets: tuple[SocketInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return {"sockets": [socket.to_json() for socket in self.sockets]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        sockets = obj.get("sockets")
        if not isinstance(sockets, list):
            raise ValueError(f"'sockets' must be a list, not {sockets!r}")
        return cls(tuple(SocketInfo.from_json(socket) for socket in sockets))


@dataclass(frozen=True, slots=True)
class FetchSockets(Query[SocketList]):
    """The connected sockets of ``namespace`` in ``rooms`` (``None``: all of them)
    but those in any of ``skip_rooms`` (Node's ``fetchSockets``)."""

    namespace: str = "/"
    rooms: tuple[str, ...] | None = None
    skip_rooms: tuple[str, ...] = ()
    ops: ClassVar[tuple[str, ...]] = ("fetch-sockets",)

    @property
    def answer_type(self) -> type[SocketList]:
        return SocketList

    def to_json(self) -> dict[str, Any]:
        return {
            "op": "fetch-sockets",
            "n": self.namespace,
            **_select_json(self.rooms, self.skip_rooms),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        return cls(_string(obj, "n"), *_selection(obj))


RoomsOp = Literal["sockets-join", "sockets-leave", "sockets-disconnect"]


@dataclass(frozen=True, slots=True)
class RoomsCommand(Query[SocketCount]):
    """Make the connected sockets of ``namespace`` in ``rooms`` (``None``: all
    of them) but those in any of ``skip_rooms`` join or leave the rooms
    ``to`` (``sockets-join``, ``sockets-leave``), or disconnect them
    (``sockets-disconnect``; ``close``: their whole connection, not only this
    namespace). Each process answers how many of its sockets it acted on.

    Raises:
        ValueError: an unknown ``op``, or a join or leave without rooms.
    """

    op: RoomsOp
    namespace: str = "/"
    rooms: tuple[str, ...] | None = None
    skip_rooms: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    close: bool = False
    ops: ClassVar[tuple[str, ...]] = get_args(RoomsOp)

    def __post_init__(self) -> None:
        if self.op not in self.ops:
            raise ValueError(f"unknown rooms command {self.op!r}")
        if self.op != "sockets-disconnect" and not self.to:
            raise ValueError(f"{self.op} needs rooms to join or leave")

    @property
    def answer_type(self) -> type[SocketCount]:
        return SocketCount

    def to_json(self) -> dict[str, Any]:
        obj = {"op": self.op, "n": self.namespace, **_select_json(self.rooms, self.skip_rooms)}
        if self.op == "sockets-disconnect":
            obj["close"] = self.close
        else:
            obj["to"] = list(self.to)
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        close = obj.get("close", False)
        if not isinstance(close, bool):
            raise ValueError(f"'close' must be a boolean, not {close!r}")
        rooms, skip_rooms = _selection(obj)
        op = _string(obj, "op")
        return cls(op, _string(obj, "n"), rooms, skip_rooms, _names(obj, "to"), close)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AckRecipients(QueryAnswer):
    """The sockets of the process ``node`` that an :class:`AckBroadcast` was sent to:
    the answers the asker is to wait for."""

    node: str
    sids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "sids": list(self.sids)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        return cls(_string(obj, "node"), _names(obj, "sids"))


@dataclass(frozen=True, slots=True)
class AckBroadcast(Query[AckRecipients]):
    """A broadcast that asks each recipient for an ack (Node's ``broadcastWithAck``).

    Every process sends ``parts`` (the encoded EVENT as the server's parser
    writes it: JSON's text then binary attachments, msgpack's one binary
    message; each process sets an ack id of its own) to its sockets that
    ``rooms`` and ``skip_rooms`` select, answers with their sids, and
    forwards each ack, for ``timeout`` seconds, to the process ``origin``
    (``gosf._socketio.acks`` has the rest). ``id`` names the broadcast there.

    Raises:
        ValueError: ``timeout`` is not positive, or ``parts`` is empty or has
            text past its first part.
    """

    namespace: str
    parts: tuple[str | bytes, ...]
    origin: str
    id: str
    timeout: float
    rooms: tuple[str, ...] | None = None
    skip_rooms: tuple[str, ...] = ()
    ops: ClassVar[tuple[str, ...]] = ("broadcast-ack",)

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"an ack timeout must be positive, not {self.timeout!r}")
        if not self.parts or not isinstance(self.parts[0], str | bytes):
            raise ValueError("an encoded packet has a first part")
        if not all(isinstance(part, bytes) for part in self.parts[1:]):
            raise ValueError("a packet's attachments are bytes")

    @property
    def answer_type(self) -> type[AckRecipients]:
        return AckRecipients

    def to_json(self) -> dict[str, Any]:
        first = self.parts[0]
        text = first if isinstance(first, str) else None
        binary = self.parts[1:] if text is not None else self.parts
        return {
            "op": "broadcast-ack",
            "n": self.namespace,
            **_select_json(self.rooms, self.skip_rooms),
            "o": self.origin,
            "b": self.id,
            "t": self.timeout,
            "p": text,
            "att": [
                base64.b64encode(part).decode("ascii") for part in binary if isinstance(part, bytes)
            ],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        timeout = obj.get("t")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool):
            raise ValueError(f"'t' must be a number, not {timeout!r}")
        try:
            binary = [base64.b64decode(item, validate=True) for item in _names(obj, "att")]
        except binascii.Error as exc:
            raise ValueError(f"bad attachment: {exc}") from None
        text = None if obj.get("p") is None else _string(obj, "p")
        parts: tuple[str | bytes, ...] = (*([] if text is None else [text]), *binary)
        rooms, skip_rooms = _selection(obj)
        return cls(
            _string(obj, "n"),
            parts,
            _string(obj, "o"),
            _string(obj, "b"),
            float(timeout),
            rooms,
            skip_rooms,
        )


# -- connection state recovery --------------------------------------------------------------


def _parts_json(parts: tuple[str | bytes, ...]) -> list[Any]:
    return [
        part if isinstance(part, str) else {"b": base64.b64encode(part).decode("ascii")}
        for part in parts
    ]


def _parts(value: object) -> tuple[str | bytes, ...]:
    """Parts written by :func:`_parts_json`.

    Raises:
        ValueError: ``value`` is not such a list.
    """
    if not isinstance(value, list) or not value:
        raise ValueError(f"parts must be a non-empty list, not {value!r}")
    parts: list[str | bytes] = []
    for item in value:
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, dict) and isinstance(item.get("b"), str):
            try:
                parts.append(base64.b64decode(item["b"], validate=True))
            except binascii.Error as exc:
                raise ValueError(f"bad binary part: {exc}") from None
        else:
            raise ValueError(f"a part must be a string or {{'b': base64}}, not {item!r}")
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class HandedSession(QueryAnswer):
    """A parked session handed over by the process that held it (``found``
    false: not this one), with what it missed there after the client's
    offset (each event's encoded parts, in order) and ``latest``, the
    number of the newest broadcast of each origin its log had
    (``gosf._socketio.handover``)."""

    found: bool
    sid: str = ""
    rooms: tuple[str, ...] = ()
    state: dict[str, Any] | None = None
    missed: tuple[tuple[str | bytes, ...], ...] = ()
    latest: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        if not self.found:
            return {"found": False}
        return {
            "found": True,
            "sid": self.sid,
            "rooms": list(self.rooms),
            "state": self.state or {},
            "missed": [_parts_json(parts) for parts in self.missed],
            "latest": self.latest or {},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        found = obj.get("found")
        if not isinstance(found, bool):
            raise ValueError(f"'found' must be a boolean, not {found!r}")
        if not found:
            return cls(False)
        missed = obj.get("missed", [])
        if not isinstance(missed, list):
            raise ValueError(f"'missed' must be a list, not {missed!r}")
        latest = _mapping(obj, "latest")
        return cls(
            True,
            _string(obj, "sid"),
            _names(obj, "rooms"),
            _mapping(obj, "state"),
            tuple(_parts(parts) for parts in missed),
            {origin: _count(n, "an origin's number") for origin, n in latest.items()},
        )


@dataclass(frozen=True, slots=True)
class TakeSession(Query[HandedSession]):
    """Hand over the session parked under ``pid``, and what it missed after
    ``offset``, to the process asking: a client is back there.

    On the wire::

        {"op": "take-session", "n": "/", "pid": "...", "off": "..." | null}
                        → {"found": true, "sid": ..., "rooms": [...], "state": {...},
                           "missed": [["<text>", {"b": "<base64>"}]], "latest": {"3fa9c1": 41}}
    """

    namespace: str
    pid: str
    offset: str | None = None
    ops: ClassVar[tuple[str, ...]] = ("take-session",)

    @property
    def answer_type(self) -> type[HandedSession]:
        return HandedSession

    def to_json(self) -> dict[str, Any]:
        return {"op": "take-session", "n": self.namespace, "pid": self.pid, "off": self.offset}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        offset = None if obj.get("off") is None else _string(obj, "off")
        return cls(_string(obj, "n"), _string(obj, "pid"), offset)


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
    op = _string(obj, "op")
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
