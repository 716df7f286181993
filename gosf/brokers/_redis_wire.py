"""The Redis broker's messages: broadcasts, queries and answers, as bytes.

Pure functions and names (no I/O); the other ``_redis_*`` modules send and
receive them.

Channels
--------
A cluster is one base channel (``gosf`` unless told otherwise); from it come
the names of the others (:class:`Channels`)::

    <channel>                   broadcasts, one message each (version 1 below)
    <channel>:query             every query of every process
    <channel>:reply:<node id>   the answers to that process's queries
    <channel>:node:<node id>    direct messages to that process

Wire format (version 1)
-----------------------
One Redis message per broadcast, binary-safe, no base64::

    header  b"\\n"  body

``header`` is a JSON object encoded by orjson (which never writes a raw
newline, so the first ``\\n`` ends it)::

    {"v": 1,                 # format version; other versions are dropped with a warning
     "o": "5f0c3a9e21b7",    # origin: the node id of the publishing process
     "i": 42,                # sequence number of the broadcast within that origin
     "n": "/chat",           # namespace
     "r": ["room"] | null,   # rooms; null: every socket of the namespace
     "s": "sid" | null,      # a sid not to deliver to (a client broadcast's sender)
     "x": ["room"],          # optional: sockets in these rooms are left out
     "vo": true,             # optional: volatile (see Broadcast.volatile)
     "of": "3fa9c1-2a",      # optional: its recovery offset (see Broadcast.offset)
     "k": "tbb",             # kind of each part: t = text (UTF-8), b = binary
     "l": [27, 1024, 3]}     # length in bytes of each part in the body

``body`` is the parts' bytes back to back: the Socket.IO packet's text part,
then its binary attachments, as they are. A process ignores messages whose
origin is its own node id, and drops (with a warning) a message it cannot
decode. The ``origin`` of a broadcast handed to :meth:`RedisBroker.publish` is
not read: on the wire, and in the :class:`~gosf.brokers.Broadcast` delivered
on the other side, the origin is always the publishing broker's ``node_id``.

Queries and answers are each one JSON object (orjson), described in
:mod:`gosf.brokers._redis_queries`; their bodies are the JSON forms of
:mod:`gosf.brokers._queries` (unchanged since version 1). Direct messages
(:meth:`RedisBroker.send_to`) are carried as given.
"""

from __future__ import annotations

from typing import Any

import orjson

from ._base import Broadcast
from ._queries import AnyQuery, Query, QueryAnswer, decode_query, encode

__all__ = (
    "WIRE_VERSION",
    "Channels",
    "decode_answer_message",
    "decode_message",
    "decode_query_message",
    "encode_answer",
    "encode_message",
    "encode_query",
)

WIRE_VERSION = 1


class Channels:
    """The Redis channels of the cluster ``base``, as the process ``node_id`` uses them."""

    __slots__ = ("broadcast", "node", "query", "reply")

    def __init__(self, base: str, node_id: str) -> None:
        self.broadcast = base
        """Every broadcast of every process."""
        self.query = f"{base}:query"
        """Every query of every process."""
        self.reply = self.reply_to(node_id)
        """The answers to this process's queries."""
        self.node = self.node_of(node_id)
        """The direct messages to this process."""

    @property
    def subscribed(self) -> tuple[str, str, str, str]:
        """The channels this process subscribes to."""
        return (self.broadcast, self.query, self.reply, self.node)

    def reply_to(self, node_id: str) -> str:
        """Where the answers to the queries of the process ``node_id`` go."""
        return f"{self.broadcast}:reply:{node_id}"

    def node_of(self, node_id: str) -> str:
        """Where the direct messages to the process ``node_id`` go."""
        return f"{self.broadcast}:node:{node_id}"


def encode_message(broadcast: Broadcast, origin: str, seq: int) -> bytes:
    """Encode ``broadcast`` as one Redis message (see the module docstring).

    Raises:
        TypeError: a part is neither ``str`` nor ``bytes``.
    """
    kinds: list[str] = []
    lengths: list[int] = []
    chunks: list[bytes] = []
    for part in broadcast.parts:
        if isinstance(part, str):
            data = part.encode()
            kinds.append("t")
        elif isinstance(part, bytes | bytearray | memoryview):
            data = bytes(part)
            kinds.append("b")
        else:
            raise TypeError(f"a broadcast part must be str or bytes, not {type(part).__name__}")
        lengths.append(len(data))
        chunks.append(data)
    fields: dict[str, Any] = {
        "v": WIRE_VERSION,
        "o": origin,
        "i": seq,
        "n": broadcast.namespace,
        "r": list(broadcast.rooms) if broadcast.rooms is not None else None,
        "s": broadcast.skip,
        "k": "".join(kinds),
        "l": lengths,
    }
    if broadcast.skip_rooms:
        fields["x"] = list(broadcast.skip_rooms)
    if broadcast.volatile:
        fields["vo"] = True
    if broadcast.offset is not None:
        fields["of"] = broadcast.offset
    header = orjson.dumps(fields)
    return b"".join((header, b"\n", *chunks))


def decode_message(data: bytes) -> tuple[Broadcast, int]:
    """Decode one Redis message: the broadcast (its ``origin`` set) and its sequence number.

    Raises:
        ValueError: ``data`` is not a message of this wire format version.
    """
    newline = data.find(b"\n")
    if newline < 0:
        raise ValueError("no header")
    try:
        header = orjson.loads(data[:newline])
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"bad header: {exc}") from None
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    if header.get("v") != WIRE_VERSION:
        raise ValueError(f"wire format version {header.get('v')!r}, expected {WIRE_VERSION}")
    origin, seq, namespace = header.get("o"), header.get("i"), header.get("n")
    rooms, skip = header.get("r"), header.get("s")
    kinds, lengths = header.get("k"), header.get("l")
    if not (isinstance(origin, str) and isinstance(namespace, str)):
        raise ValueError("origin and namespace must be strings")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError("sequence must be an integer")
    if rooms is not None and not (
        isinstance(rooms, list) and all(isinstance(room, str) for room in rooms)
    ):
        raise ValueError("rooms must be null or a list of strings")
    if skip is not None and not isinstance(skip, str):
        raise ValueError("skip must be null or a string")
    skip_rooms, volatile = header.get("x", []), header.get("vo", False)
    if not (isinstance(skip_rooms, list) and all(isinstance(room, str) for room in skip_rooms)):
        raise ValueError("rooms to leave out must be a list of strings")
    if not isinstance(volatile, bool):
        raise ValueError("volatile must be a boolean")
    recovery_offset = header.get("of")
    if recovery_offset is not None and not isinstance(recovery_offset, str):
        raise ValueError("offset must be null or a string")
    if not (
        isinstance(kinds, str)
        and isinstance(lengths, list)
        and len(kinds) == len(lengths)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in lengths)
    ):
        raise ValueError("part kinds and lengths do not match")
    body = memoryview(data)[newline + 1 :]
    if sum(lengths) != len(body):
        raise ValueError(f"body is {len(body)} bytes, parts add up to {sum(lengths)}")
    parts: list[str | bytes] = []
    offset = 0
    for kind, length in zip(kinds, lengths, strict=True):
        chunk = body[offset : offset + length]
        offset += length
        if kind == "t":
            try:
                parts.append(str(chunk, "utf-8"))
            except UnicodeDecodeError:
                raise ValueError("a text part is not UTF-8") from None
        elif kind == "b":
            parts.append(bytes(chunk))
        else:
            raise ValueError(f"unknown part kind {kind!r}")
    broadcast = Broadcast(
        namespace,
        tuple(parts),
        tuple(rooms) if rooms is not None else None,
        skip,
        origin,
        tuple(skip_rooms),
        volatile,
        recovery_offset,
    )
    return broadcast, seq


def encode_query(origin: str, qid: str, query: Query[Any]) -> bytes:
    """Encode a query (see :mod:`gosf.brokers._redis_queries`).

    Raises:
        TypeError: a string of ``query`` cannot be encoded (a lone surrogate).
    """
    return orjson.dumps({"v": WIRE_VERSION, "o": origin, "q": qid, "r": encode(query)})


def encode_answer(origin: str, qid: str, answer: QueryAnswer) -> bytes:
    """Encode the answer to the query ``qid`` (see :mod:`gosf.brokers._redis_queries`).

    Raises:
        TypeError: a string of ``answer`` cannot be encoded (a lone surrogate).
    """
    return orjson.dumps({"v": WIRE_VERSION, "o": origin, "q": qid, "a": encode(answer)})


def decode_query_message(data: bytes) -> tuple[str, str, AnyQuery]:
    """Decode a query: its origin, its id, the query.

    Raises:
        UnknownQuery: a query of a kind this process does not know.
        ValueError: ``data`` is not a query of this wire format version.
    """
    origin, qid, body = _envelope(data, "r")
    return origin, qid, decode_query(body)


def decode_answer_message(data: bytes) -> tuple[str, str, object]:
    """Decode an answer's envelope: its origin, the id of its query, its body.

    The body is read by :func:`gosf.brokers._queries.decode_answer`, given
    the query it answers (which only the asker knows).

    Raises:
        ValueError: ``data`` is not an answer of this wire format version.
    """
    return _envelope(data, "a")


def _envelope(data: bytes, key: str) -> tuple[str, str, object]:
    """Decode a query (``key`` ``"r"``) or an answer (``"a"``): origin, query id, body.

    Raises:
        ValueError: ``data`` is not such a message of this wire format version.
    """
    try:
        message = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(message, dict) or message.get("v") != WIRE_VERSION:
        raise ValueError("not an object of this wire format version")
    origin, qid, body = message.get("o"), message.get("q"), message.get(key)
    if not (isinstance(origin, str) and isinstance(qid, str)):
        raise ValueError("origin or query id missing or of the wrong type")
    return origin, qid, body
