"""Socket.IO packets as msgpack, interoperable with npm ``socket.io-msgpack-parser`` (v3).

Sans-IO, like :mod:`.socketio`, whose :class:`~.socketio.Packet` it encodes
and decodes. Each packet is **one binary** Engine.IO message holding one
msgpack map::

    {"type": 2, "nsp": "/chat", "data": ["hey", {"n": 1}], "id": 7}

* ``type`` is 0 to 4 (CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR): there
  are no BINARY_EVENT / BINARY_ACK packets and no attachments, since msgpack
  carries bytes itself (as ``bin``);
* ``nsp`` is the namespace, always present;
* ``data`` is left out when there is none (DISCONNECT; CONNECT without auth),
  ``id`` when there is no ack id; other keys (socket.io-client adds
  ``options``) are ignored.

What npm clients send that Python's msgpack has no type for, read the way
``notepack.io`` (the npm parser's msgpack) writes it: an ``ArrayBuffer`` or
typed array is an extension of type 0, read as ``bytes``; ``undefined`` is
the one-byte extension of type 0 holding ``0x00``, read as ``None``. The two
cannot be told apart by Python's msgpack, so a one-byte typed array holding
zero reads as ``None`` too; a ``Date`` (an eight-byte extension of type 0)
reads as its eight bytes. A Node ``Buffer`` is plain ``bin`` and reads as
``bytes``; gosf writes ``bytes`` as ``bin``, which Node reads as a Buffer.

The ``msgpack`` package (``pip install gosf[msgpack]``) is imported on first
use, so that a plain install of gosf works without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from types import ModuleType
from typing import Any, Final

from .errors import LocalProtocolError, RemoteProtocolError
from .socketio import _MAX_ID, _RESERVED_EVENTS, Packet, PacketType, _check_id, _check_namespace

__all__ = ("MsgpackDecoder", "encode", "encode_ack", "encode_event", "encode_event_and_ack")

_BINARY: Final = (bytes, bytearray, memoryview)
# notepack.io writes undefined as the fixext 1 of type 0 holding 0x00.
_UNDEFINED: Final = b"\x00"


@cache
def _msgpack() -> ModuleType:
    """The msgpack module, imported on first use.

    Raises:
        ImportError: it is not installed (``pip install gosf[msgpack]``).
    """
    try:
        import msgpack
    except ImportError as exc:  # pragma: no cover - the test environment has it
        raise ImportError("the msgpack parser needs msgpack: pip install 'gosf[msgpack]'") from exc
    module: ModuleType = msgpack
    return module


# -- encoding -------------------------------------------------------------------------------


def _pack(obj: dict[str, Any]) -> list[str | bytes]:
    try:
        return [_msgpack().packb(obj, use_bin_type=True)]
    except (TypeError, ValueError, OverflowError) as exc:
        # TypeError: no msgpack type; ValueError: nested too deeply; OverflowError: an int
        # beyond 64 bits.
        raise LocalProtocolError(f"packet data cannot be packed as msgpack: {exc}") from exc


def encode(packet: Packet, protocol: int = 5) -> list[str | bytes]:
    """Encode ``packet`` as one binary message (``protocol`` is accepted for the
    JSON codec's signature; the map is the same for both revisions).

    BINARY_EVENT/BINARY_ACK are written as EVENT/ACK (msgpack carries bytes).

    Raises:
        LocalProtocolError: an unknown type, a bad namespace or ack id, data
            that does not suit the type or that msgpack cannot carry.
    """
    try:
        ptype = PacketType(packet.type)
    except (ValueError, TypeError):
        raise LocalProtocolError(f"unknown packet type {packet.type!r}") from None
    namespace, data, ack_id = _check_namespace(packet.namespace), packet.data, packet.id
    _check_id(ack_id)
    if ptype >= PacketType.BINARY_EVENT:
        ptype = PacketType(ptype - 3)
    if ptype is PacketType.EVENT or ptype is PacketType.ACK:
        if not isinstance(data, list | tuple):
            raise LocalProtocolError(f"{ptype.name} data must be a list, not {type(data).__name__}")
        if ptype is PacketType.EVENT and not (data and isinstance(data[0], str)):
            raise LocalProtocolError("EVENT data must be a non-empty list starting with a str")
        if ptype is PacketType.ACK and ack_id is None:
            raise LocalProtocolError("an ACK packet needs an ack id")
    elif ack_id is not None:
        raise LocalProtocolError(f"{ptype.name} packets carry no ack id")
    elif ptype is PacketType.DISCONNECT and data is not None:
        raise LocalProtocolError("DISCONNECT packets carry no data")
    elif ptype is PacketType.CONNECT and not (data is None or isinstance(data, dict)):
        raise LocalProtocolError("CONNECT data must be None or a dict")
    elif ptype is PacketType.CONNECT_ERROR and not isinstance(data, dict | str):
        raise LocalProtocolError("CONNECT_ERROR data must be a dict or a str")
    obj: dict[str, Any] = {"type": int(ptype), "nsp": namespace}
    if data is not None:
        obj["data"] = data
    if ack_id is not None:
        obj["id"] = ack_id
    return _pack(obj)


def encode_event(
    namespace: str, event: str, args: Sequence[Any], ack_id: int | None = None
) -> list[str | bytes]:
    """Encode an EVENT: ``encode(Packet(EVENT, namespace, [event, *args], ack_id))``.

    Raises:
        LocalProtocolError: a bad namespace, event name or ack id, or
            arguments msgpack cannot carry.
    """
    if not isinstance(event, str):
        raise LocalProtocolError(f"event name must be a str, not {type(event).__name__}")
    if namespace != "/":
        _check_namespace(namespace)
    obj: dict[str, Any] = {"type": 2, "nsp": namespace, "data": [event, *args]}
    if ack_id is not None:
        _check_id(ack_id)
        obj["id"] = ack_id
    return _pack(obj)


def encode_ack(namespace: str, ack_id: int, args: Sequence[Any]) -> list[str | bytes]:
    """Encode an ACK: ``encode(Packet(ACK, namespace, list(args), ack_id))``.

    Raises:
        LocalProtocolError: a bad namespace or ack id, or arguments msgpack cannot carry.
    """
    if namespace != "/":
        _check_namespace(namespace)
    _check_id(ack_id)
    return _pack({"type": 3, "nsp": namespace, "data": list(args), "id": ack_id})


def encode_event_and_ack(
    namespace: str, event: str, data: Any, ack_id: int | None
) -> tuple[list[str | bytes], list[str | bytes] | None]:
    """``data`` as an EVENT ``event`` and, when ``ack_id`` is given, as that ACK
    (each packet packs its data itself).

    Raises:
        LocalProtocolError: as :func:`encode_event` and :func:`encode_ack`.
    """
    parts = encode_event(namespace, event, (data,))
    return parts, None if ack_id is None else encode_ack(namespace, ack_id, (data,))


# -- decoding -------------------------------------------------------------------------------


def _ext(code: int, data: bytes) -> Any:
    """notepack.io's extensions of type 0 (see the module docstring); no others."""
    if code != 0:
        raise RemoteProtocolError(f"unsupported msgpack extension type {code}")
    return None if data == _UNDEFINED else bytes(data)


class MsgpackDecoder:
    """Decoder for one connection: each binary message is one whole packet.

    The same interface as :class:`.socketio.Decoder` (``feed``,
    ``pending_attachments``), so the server holds either.
    """

    __slots__ = ("_protocol",)

    pending_attachments: Final = 0
    """Always 0: msgpack packets have no attachments."""

    def __init__(
        self,
        protocol: int = 5,
        *,
        max_attachments: int = 10,
        max_attachment_bytes: int | None = None,
    ) -> None:
        """The limits on attachments are accepted for the JSON decoder's
        signature: a packet is one message, which Engine.IO bounds already.

        Raises:
            ValueError: a protocol other than 4 or 5.
        """
        if protocol not in (4, 5):
            raise ValueError(f"unsupported Socket.IO protocol revision {protocol!r}")
        self._protocol = protocol

    def feed(self, data: str | bytes) -> Packet:
        """Decode one Engine.IO message into its packet.

        Raises:
            RemoteProtocolError: a text message, bytes that are not one msgpack
                map, or a map that is not a packet a client may send.
            TypeError: ``data`` is neither str nor bytes-like.
        """
        if isinstance(data, str):
            raise RemoteProtocolError("the msgpack parser takes binary messages, got text")
        if not isinstance(data, _BINARY):
            raise TypeError(f"expected str or bytes, not {type(data).__name__}")
        msgpack = _msgpack()
        try:
            obj = msgpack.unpackb(data, raw=False, ext_hook=_ext, strict_map_key=True)
        except RemoteProtocolError:
            raise
        except Exception as exc:  # msgpack's own errors: ExtraData, FormatError, StackError...
            raise RemoteProtocolError(f"invalid msgpack: {type(exc).__name__}: {exc}") from None
        if type(obj) is not dict:
            raise RemoteProtocolError(f"a msgpack packet is a map, not {type(obj).__name__}")
        return self._packet(obj)

    def _packet(self, obj: dict[str, Any]) -> Packet:
        ptype, namespace = obj.get("type"), obj.get("nsp")
        data, ack_id = obj.get("data"), obj.get("id")
        if type(ptype) is not int or not PacketType.CONNECT <= ptype <= PacketType.CONNECT_ERROR:
            raise RemoteProtocolError(f"invalid packet type {ptype!r}")
        kind = PacketType(ptype)
        if type(namespace) is not str or not namespace.startswith("/"):
            raise RemoteProtocolError(f"invalid namespace {namespace!r}")
        if ack_id is not None and (type(ack_id) is not int or not 0 <= ack_id <= _MAX_ID):
            raise RemoteProtocolError(f"invalid ack id {ack_id!r}")
        if kind is PacketType.EVENT:
            if not (type(data) is list and data and type(data[0]) is str):
                raise RemoteProtocolError("EVENT data must be an array starting with a string")
            if self._protocol == 5 and data[0] in _RESERVED_EVENTS:
                raise RemoteProtocolError(f"reserved event name {data[0]!r}")
        elif kind is PacketType.ACK:
            if type(data) is not list:
                raise RemoteProtocolError("ACK data must be an array")
            if ack_id is None:
                raise RemoteProtocolError("ACK packet without an ack id")
        elif ack_id is not None:
            raise RemoteProtocolError(f"{kind.name} packets carry no ack id")
        elif kind is PacketType.CONNECT:
            if data is not None and type(data) is not dict:
                raise RemoteProtocolError("CONNECT data must be a map")
        elif kind is PacketType.DISCONNECT:
            if data is not None:
                raise RemoteProtocolError("unexpected data in a DISCONNECT packet")
        elif type(data) not in (dict, str):
            raise RemoteProtocolError("CONNECT_ERROR data must be a map or a string")
        return Packet(kind, namespace, data, ack_id)
