"""Socket.IO packet codec, protocol revisions 5 (socket.io 3.x/4.x) and 4 (socket.io 2.x).

Sans-IO: functions that turn packets into Engine.IO messages and back. Each packet is one
text message, followed (for BINARY_EVENT / BINARY_ACK) by its binary attachments::

    <type>[<attachment count>-][<namespace>,][<ack id>][<JSON payload>]

* ``type`` is one digit (:class:`PacketType`); ``<count>-`` is only present for types 5/6,
  whose JSON holds ``{"_placeholder":true,"num":N}`` where attachment N goes.
* the namespace is omitted when it is ``/``, else it runs up to the first ``,`` (or the end).
* the ack id (decimal digits, at most 15) is only present on EVENT/ACK packets.
* revision 5: CONNECT carries an optional JSON object (the client's auth, or the server's
  ``{"sid": ...}``); CONNECT_ERROR carries ``{"message": ..., "data"?: ...}``.
* revision 4: CONNECT carries no payload, but a client may put a query string after the
  namespace (``0/admin?token=1,``), exposed here as ``data={"query": "token=1"}``;
  type 4 is called ERROR and carries any JSON (usually a string).

Examples: ``2["hey","Jude"]``, ``3/admin,13["bar"]``, ``0/admin,{"sid":"x"}``,
``61-15["bar",{"_placeholder":true,"num":0}]`` followed by one binary message.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from .errors import LocalProtocolError, PayloadTooLarge, RemoteProtocolError

__all__ = (
    "Decoder",
    "Packet",
    "PacketType",
    "encode",
    "encode_ack",
    "encode_event",
    "encode_event_and_ack",
)


class PacketType(enum.IntEnum):
    """Socket.IO packet types (type 4 is named ERROR in revision 4)."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


@dataclass(frozen=True, slots=True)
class Packet:
    """One Socket.IO packet.

    ``data`` is, by type: EVENT ``[name, *args]``; ACK ``[*args]``; CONNECT a dict or None
    (revision 4: None or ``{"query": "<raw query string>"}``); CONNECT_ERROR a dict
    (revision 5) or any JSON value (revision 4); DISCONNECT None. ``id`` is the ack id.
    """

    type: PacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None


# Building a frozen dataclass through its __init__ costs four object.__setattr__
# calls; the decoder's hot path sets the slots directly.
_new_packet = object.__new__
_set_type = Packet.__dict__["type"].__set__
_set_namespace = Packet.__dict__["namespace"].__set__
_set_data = Packet.__dict__["data"].__set__
_set_id = Packet.__dict__["id"].__set__

_EVENT_TYPES: Final = (PacketType.EVENT, PacketType.BINARY_EVENT)
_ACK_TYPES: Final = (PacketType.ACK, PacketType.BINARY_ACK)
_DIGITS: Final = "0123456"
_BY_DIGIT: Final = {_DIGITS[t]: t for t in PacketType}
_BINARY: Final = (bytes, bytearray, memoryview)
_MAX_ID: Final = 10**15 - 1  # 15 digits: below Number.MAX_SAFE_INTEGER
_MAX_DEPTH: Final = 254  # orjson refuses to serialise deeper data anyway
_COUNT_RE: Final = re.compile(r"([0-9]{1,10})-")
_ID_RE: Final = re.compile(r"[0-9]{0,16}")
# socket.io-parser 4.x refuses these event names (they are emitted locally by the libraries).
_RESERVED_EVENTS: Final = frozenset(
    ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")
)


# -- encoding -------------------------------------------------------------------------------


def _dumps(data: Any) -> str:
    try:
        return orjson.dumps(data).decode()
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise LocalProtocolError(f"packet data is not JSON-serialisable: {exc}") from exc


def _deconstruct(data: Any, attachments: list[bytes], depth: int = 0) -> Any:
    """Copy ``data`` with every bytes-like value replaced by a numbered placeholder."""
    if isinstance(data, _BINARY):
        attachments.append(data if type(data) is bytes else bytes(data))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(data, list | tuple | dict) and depth >= _MAX_DEPTH:
        raise LocalProtocolError("packet data is nested too deeply")
    if isinstance(data, list | tuple):
        return [_deconstruct(item, attachments, depth + 1) for item in data]
    if isinstance(data, dict):
        return {key: _deconstruct(value, attachments, depth + 1) for key, value in data.items()}
    return data


def _check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str) or not namespace.startswith("/") or "," in namespace:
        raise LocalProtocolError(f"bad namespace {namespace!r}: must start with '/', no ','")
    return namespace


def _check_id(ack_id: object) -> None:
    if ack_id is not None and (type(ack_id) is not int or not 0 <= ack_id <= _MAX_ID):
        raise LocalProtocolError(f"bad ack id {ack_id!r}: must be an int in 0..{_MAX_ID}")


def _text(ptype: int, count: int | None, namespace: str, ack_id: int | None, json: str) -> str:
    head = _DIGITS[ptype] if count is None else f"{_DIGITS[ptype]}{count}-"
    if namespace != "/":
        head += namespace + ","
    if ack_id is not None:
        head += str(ack_id)
    return head + json


def _encode_args(
    ptype: PacketType, namespace: str, data: Any, ack_id: int | None
) -> list[str | bytes]:
    if ptype < PacketType.BINARY_EVENT:
        try:  # fast path: orjson refuses bytes, so success means there is no binary
            return [_text(ptype, None, namespace, ack_id, orjson.dumps(data).decode())]
        except TypeError:
            pass
    attachments: list[bytes] = []
    json = _dumps(_deconstruct(data, attachments))
    if ptype < PacketType.BINARY_EVENT:
        ptype = PacketType(ptype + 3)  # EVENT -> BINARY_EVENT, ACK -> BINARY_ACK
    return [_text(ptype, len(attachments), namespace, ack_id, json), *attachments]


def encode(packet: Packet, protocol: int = 5) -> list[str | bytes]:
    """Encode ``packet``: a text message, then the binary attachments (if any).

    EVENT/ACK data containing bytes, bytearray or memoryview values (nested anywhere in
    lists/dicts) is sent as BINARY_EVENT/BINARY_ACK. Raises :class:`LocalProtocolError` for
    an unknown type, a bad namespace or ack id (ack ids only on EVENT/ACK, and required on
    ACK), data that does not suit the type or that is not JSON-serialisable; ``ValueError``
    for a protocol other than 4 or 5.
    """
    if protocol not in (4, 5):
        raise ValueError(f"unsupported Socket.IO protocol revision {protocol!r}")
    try:
        ptype = PacketType(packet.type)
    except (ValueError, TypeError):
        raise LocalProtocolError(f"unknown packet type {packet.type!r}") from None
    namespace, data, ack_id = _check_namespace(packet.namespace), packet.data, packet.id
    _check_id(ack_id)
    if ptype in _EVENT_TYPES or ptype in _ACK_TYPES:
        if not isinstance(data, list | tuple):
            raise LocalProtocolError(f"{ptype.name} data must be a list, not {type(data).__name__}")
        if ptype in _EVENT_TYPES and not (data and isinstance(data[0], str)):
            raise LocalProtocolError("EVENT data must be a non-empty list starting with a str")
        if ptype in _ACK_TYPES and ack_id is None:
            raise LocalProtocolError("an ACK packet needs an ack id")
        return _encode_args(ptype, namespace, data, ack_id)
    if ack_id is not None:
        raise LocalProtocolError(f"{ptype.name} packets carry no ack id")
    if ptype is PacketType.DISCONNECT:
        if data is not None:
            raise LocalProtocolError("DISCONNECT packets carry no data")
        return [_text(ptype, None, namespace, None, "")]
    if ptype is PacketType.CONNECT and protocol == 4:
        if data is None:
            return [_text(ptype, None, namespace, None, "")]
        query = data.get("query") if isinstance(data, dict) and len(data) == 1 else None
        if not isinstance(query, str) or "," in query or "?" in namespace:
            raise LocalProtocolError('v4 CONNECT data must be None or {"query": str without ","}')
        return [f"0{namespace}?{query},"]
    if protocol == 5 and not isinstance(data, dict) and (ptype, data) != (PacketType.CONNECT, None):
        raise LocalProtocolError(f"{ptype.name} data must be a dict in protocol 5")
    return [_text(ptype, None, namespace, None, "" if data is None else _dumps(data))]


def _check_event(namespace: str, event: str, ack_id: int | None) -> None:
    """What an EVENT's encoders check first (:class:`LocalProtocolError` if wrong)."""
    if not isinstance(event, str):
        raise LocalProtocolError(f"event name must be a str, not {type(event).__name__}")
    if namespace != "/":
        _check_namespace(namespace)
    if ack_id is not None:
        _check_id(ack_id)


def encode_event(
    namespace: str, event: str, args: Sequence[Any], ack_id: int | None = None
) -> list[str | bytes]:
    """Encode an EVENT: same output as ``encode(Packet(EVENT, namespace, [event, *args], ack_id))``.

    Raises :class:`LocalProtocolError` for a bad namespace, event name or ack id, or
    arguments that are not JSON-serialisable.
    """
    _check_event(namespace, event, ack_id)
    data = [event, *args]
    try:
        json = orjson.dumps(data).decode()
    except TypeError:  # binary attachments (or an error, which _encode_args reports)
        return _encode_args(PacketType.EVENT, namespace, data, ack_id)
    if ack_id is None:
        return ["2" + json if namespace == "/" else f"2{namespace},{json}"]
    return [f"2{ack_id}{json}" if namespace == "/" else f"2{namespace},{ack_id}{json}"]


def encode_ack(namespace: str, ack_id: int, args: Sequence[Any]) -> list[str | bytes]:
    """Encode an ACK: same output as ``encode(Packet(ACK, namespace, list(args), ack_id))``.

    Raises :class:`LocalProtocolError` for a bad namespace or ack id, or arguments
    that are not JSON-serialisable.
    """
    if namespace != "/":
        _check_namespace(namespace)
    _check_id(ack_id)
    try:
        json = orjson.dumps(args).decode()  # a tuple or a list: orjson writes an array
    except TypeError:  # binary attachments (or an error, which _encode_args reports)
        return _encode_args(PacketType.ACK, namespace, list(args), ack_id)
    return [f"3{ack_id}{json}" if namespace == "/" else f"3{namespace},{ack_id}{json}"]


def encode_event_and_ack(
    namespace: str, event: str, data: Any, ack_id: int | None
) -> tuple[list[str | bytes], list[str | bytes] | None]:
    """Encode ``data`` as an EVENT named ``event`` and, when ``ack_id`` is given,
    as the ACK ``ack_id`` (GOSF sends each response both ways): the same output
    as ``encode_event(namespace, event, (data,))`` and ``encode_ack(namespace,
    ack_id, (data,))``, with ``data`` serialised once (a fast path: see "Fast
    paths" in docs/performance.md).

    Raises :class:`LocalProtocolError` as those two do.
    """
    _check_event(namespace, event, ack_id)
    try:
        json = orjson.dumps(data).decode()
    except TypeError:  # binary attachments (or an error): each encoded on its own
        ack = None if ack_id is None else encode_ack(namespace, ack_id, (data,))
        return encode_event(namespace, event, (data,)), ack
    # orjson writes [a,b] as "[" + a + "," + b + "]": the two texts share data's.
    prefix = "" if namespace == "/" else f"{namespace},"
    event_text = f"2{prefix}[{orjson.dumps(event).decode()},{json}]"
    if ack_id is None:
        return [event_text], None
    return [event_text], [f"3{prefix}{ack_id}[{json}]"]


# -- decoding -------------------------------------------------------------------------------


def _fill_placeholders(data: Any, attachments: list[bytes]) -> None:
    """Replace, in place, the placeholders of freshly parsed JSON (iterative: no recursion)."""
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        for key, value in enumerate(node) if type(node) is list else node.items():
            if type(value) is dict and value.get("_placeholder") is True:
                num = value.get("num")
                if type(num) is not int or not 0 <= num < len(attachments):
                    raise RemoteProtocolError(f"bad attachment placeholder num {num!r}")
                node[key] = attachments[num]
            elif type(value) is dict or type(value) is list:
                stack.append(value)


class Decoder:
    """Stateful decoder for one connection: feed it the text and binary messages in order."""

    __slots__ = (
        "_attachments",
        "_expected",
        "_held",
        "_max_attachment_bytes",
        "_max_attachments",
        "_pending",
        "_protocol",
    )

    def __init__(
        self,
        protocol: int = 5,
        *,
        max_attachments: int = 10,
        max_attachment_bytes: int | None = None,
    ) -> None:
        """``max_attachment_bytes`` bounds the total size of one packet's
        attachments (``None``: no bound besides each message's own): what a
        connection holds while a binary packet is incomplete.

        Raises ``ValueError`` for a protocol other than 4 or 5 or a negative limit.
        """
        if protocol not in (4, 5):
            raise ValueError(f"unsupported Socket.IO protocol revision {protocol!r}")
        if max_attachments < 0:
            raise ValueError("max_attachments must be >= 0")
        if max_attachment_bytes is not None and max_attachment_bytes < 0:
            raise ValueError("max_attachment_bytes must be >= 0")
        self._protocol = protocol
        self._max_attachments = max_attachments
        self._max_attachment_bytes = max_attachment_bytes
        self._pending: Packet | None = None
        self._expected = 0
        # The pending packet's attachments so far: a list only while a packet
        # is pending (an idle connection holds none).
        self._attachments: list[bytes] | None = None
        self._held = 0  # bytes of the pending packet's attachments so far

    @property
    def pending_attachments(self) -> int:
        """How many binary messages the decoder still waits for (0 when it expects text)."""
        attachments = self._attachments
        return self._expected - len(attachments) if attachments is not None else 0

    def feed(self, data: str | bytes) -> Packet | None:
        """Decode one Engine.IO message: a complete Packet, or None while attachments are due.

        Binary packets come back as BINARY_EVENT/BINARY_ACK with their placeholders replaced
        by ``bytes``. Raises :class:`RemoteProtocolError` for any malformed or unexpected
        message (after which the decoder should be discarded), and ``TypeError`` if ``data``
        is neither str nor bytes-like; :class:`PayloadTooLarge` (a
        RemoteProtocolError) when one packet's attachments exceed ``max_attachment_bytes``.
        """
        if type(data) is str and data[:1] == "2" and self._pending is None:
            packet = self._parse_event(data)  # the hot path
            if packet is not None:
                return packet
        if isinstance(data, str):
            if self._pending is not None:
                raise RemoteProtocolError(
                    f"got a text message while {self.pending_attachments} attachment(s) are due"
                )
            packet, count = self._parse(data)
            if count is None:
                return packet
            self._pending, self._expected, self._attachments, self._held = packet, count, [], 0
        elif isinstance(data, _BINARY):
            attachments = self._attachments
            if attachments is None:
                raise RemoteProtocolError("got a binary message but no attachment is expected")
            self._held += len(data)
            limit = self._max_attachment_bytes
            if limit is not None and self._held > limit:
                raise PayloadTooLarge(
                    f"attachments of {self._held} bytes or more exceed maxPayload={limit}"
                )
            attachments.append(data if type(data) is bytes else bytes(data))
        else:
            raise TypeError(f"expected str or bytes, not {type(data).__name__}")
        packet, attachments = self._pending, self._attachments
        if packet is None or attachments is None or len(attachments) < self._expected:
            return None
        self._pending, self._expected, self._attachments, self._held = None, 0, None, 0
        _fill_placeholders(packet.data, attachments)
        return packet

    def _parse(self, text: str) -> tuple[Packet, int | None]:
        if not text:
            raise RemoteProtocolError("empty packet")
        ptype = _BY_DIGIT.get(text[0])
        if ptype is None:
            raise RemoteProtocolError(f"unknown packet type {text[0]!r}")
        pos, count = 1, None
        if ptype >= PacketType.BINARY_EVENT:
            match = _COUNT_RE.match(text, 1)
            if match is None:
                raise RemoteProtocolError("bad attachment count")
            count, pos = int(match[1]), match.end()
            if count > self._max_attachments:
                raise RemoteProtocolError(f"too many attachments: {count}")
        namespace = "/"
        if text.startswith("/", pos):
            comma = text.find(",", pos)
            end = len(text) if comma < 0 else comma
            namespace, pos = text[pos:end], end + 1 if comma >= 0 else end
        ack_id = None
        if ptype in _EVENT_TYPES or ptype in _ACK_TYPES:
            match = _ID_RE.match(text, pos)
            digits = match[0] if match else ""
            if len(digits) > 15:
                raise RemoteProtocolError("ack id too long")
            if digits:
                ack_id, pos = int(digits), pos + len(digits)
        has_payload = pos < len(text)
        data: Any = None
        if has_payload:
            try:
                data = orjson.loads(text[pos:])
            except orjson.JSONDecodeError:
                raise RemoteProtocolError(f"invalid JSON in {ptype.name} packet") from None
        self._validate(ptype, has_payload, data, ack_id)
        if ptype is PacketType.CONNECT and self._protocol == 4 and "?" in namespace:
            namespace, _, query = namespace.partition("?")
            data = {"query": query}
        return Packet(ptype, namespace, data, ack_id), count

    def _parse_event(self, text: str) -> Packet | None:
        """The hot path: an EVENT with a payload. ``None``: let :meth:`_parse` say what is wrong."""
        pos = 1
        namespace = "/"
        if text.startswith("/", 1):
            comma = text.find(",", 1)
            if comma < 0:
                return None
            namespace, pos = text[1:comma], comma + 1
        match = _ID_RE.match(text, pos)
        digits = match[0] if match else ""
        ack_id = None
        if digits:
            if len(digits) > 15:
                return None
            ack_id, pos = int(digits), pos + len(digits)
        try:
            data = orjson.loads(text[pos:])
        except orjson.JSONDecodeError:
            return None
        if not (type(data) is list and data and type(data[0]) is str):
            return None
        if self._protocol == 5 and data[0] in _RESERVED_EVENTS:
            return None
        packet = _new_packet(Packet)
        _set_type(packet, PacketType.EVENT)
        _set_namespace(packet, namespace)
        _set_data(packet, data)
        _set_id(packet, ack_id)
        return packet

    def _validate(self, ptype: PacketType, has_payload: bool, data: Any, ack: int | None) -> None:
        if ptype in _EVENT_TYPES:
            if not (type(data) is list and data and type(data[0]) is str):
                raise RemoteProtocolError("EVENT payload must be an array starting with a string")
            if self._protocol == 5 and data[0] in _RESERVED_EVENTS:
                raise RemoteProtocolError(f"reserved event name {data[0]!r}")
        elif ptype in _ACK_TYPES:
            if type(data) is not list:
                raise RemoteProtocolError("ACK payload must be an array")
            if ack is None:
                raise RemoteProtocolError("ACK packet without an ack id")
        elif ptype is PacketType.CONNECT and self._protocol == 5:
            if has_payload and type(data) is not dict:
                raise RemoteProtocolError("CONNECT payload must be an object")
        elif ptype is PacketType.CONNECT or ptype is PacketType.DISCONNECT:
            if has_payload:
                raise RemoteProtocolError(f"unexpected payload in {ptype.name} packet")
        elif self._protocol == 5 and has_payload and type(data) not in (dict, str):
            raise RemoteProtocolError("CONNECT_ERROR payload must be an object or a string")
