"""Queries of many sockets at once (Node's ``fetchSockets``, ``socketsJoin``,
``socketsLeave``, ``disconnectSockets``, ``broadcastWithAck``): what each asks
and answers, and their JSON (the wire is in gosf.brokers._queries's docstring)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, get_args

from ._query_base import (
    Query,
    QueryAnswer,
    SocketCount,
    mapping_field,
    names_field,
    string_field,
)

__all__ = (
    "AckBroadcast",
    "AckRecipients",
    "FetchSockets",
    "RoomsCommand",
    "RoomsOp",
    "SocketInfo",
    "SocketList",
)


def _selection(obj: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """The rooms (``"in"``, ``null``: every socket) and except-rooms (``"ex"``) of a query.

    Raises:
        ValueError: either is not a list of strings.
    """
    rooms = None if obj.get("in") is None else names_field(obj, "in")
    return rooms, names_field(obj, "ex")


def _select_json(rooms: tuple[str, ...] | None, skip_rooms: tuple[str, ...]) -> dict[str, Any]:
    return {"in": None if rooms is None else list(rooms), "ex": list(skip_rooms)}


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
        headers, query = mapping_field(obj, "headers"), mapping_field(obj, "query")
        if not all(isinstance(v, str) for v in (*headers.values(), *query.values())):
            raise ValueError("headers and query values must be strings")
        return cls(
            string_field(obj, "sid"),
            string_field(obj, "n"),
            frozenset(names_field(obj, "rooms")),
            string_field(obj, "node"),
            headers,
            query,
            mapping_field(obj, "auth"),
            address,
            mapping_field(obj, "data"),
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
        return cls(string_field(obj, "n"), *_selection(obj))


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
        op = string_field(obj, "op")
        return cls(op, string_field(obj, "n"), rooms, skip_rooms, names_field(obj, "to"), close)  # type: ignore[arg-type]


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
        return cls(string_field(obj, "node"), names_field(obj, "sids"))


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
            binary = [base64.b64decode(item, validate=True) for item in names_field(obj, "att")]
        except binascii.Error as exc:
            raise ValueError(f"bad attachment: {exc}") from None
        text = None if obj.get("p") is None else string_field(obj, "p")
        parts: tuple[str | bytes, ...] = (*([] if text is None else [text]), *binary)
        rooms, skip_rooms = _selection(obj)
        return cls(
            string_field(obj, "n"),
            parts,
            string_field(obj, "o"),
            string_field(obj, "b"),
            float(timeout),
            rooms,
            skip_rooms,
        )
