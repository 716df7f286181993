"""Engine.IO packets and HTTP long-polling payloads, protocols 3 and 4 (sans-IO).

::

    packet (both)      <type digit>[<text>]            "4hello"  "2probe"  "3"
    binary, websocket  v4: the raw bytes (always MESSAGE)   v3: b"\\x04" + bytes
                       if the client sent ``b64``: "b" + base64 (v4), "b4" + base64 (v3)
    payload v4         packets joined by "\\x1e", binary as "b" + base64, UTF-8
    payload v3 text    (<len>:<packet>)*, <len> in UTF-16 code units (JS string length),
                       binary as "b4" + base64; no packets is "0:"
    payload v3 binary  (<0 text|1 binary><one byte 0-9 per decimal digit of len>0xFF<packet>)*
                       text packets UTF-8 with <len> in bytes, binary ones b"\\x04" + bytes

References: socketio/engine.io-protocol (main and v3 branches), engine.io-parser 5.x
(``lib/``) for v4, and engine.io 6.x ``lib/parser-v3/index.ts`` (engine.io-parser 2.2.x,
what a JS server speaks to EIO=3 clients) for v3.  Decoding is strict where the JS
parser is lenient (lengths must be ASCII digits, base64 must be canonical, UTF-8 must
be valid); every malformed input raises :class:`RemoteProtocolError`.
"""

from __future__ import annotations

import binascii
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from .errors import LocalProtocolError, PayloadTooLarge, RemoteProtocolError

__all__ = (
    "OCTET_STREAM",
    "TEXT_PLAIN",
    "TYPE_DIGITS",
    "Packet",
    "PacketType",
    "check_payload_size",
    "decode_payload",
    "decode_ws",
    "encode_open",
    "encode_payload",
    "encode_ws",
    "message",
)

TEXT_PLAIN = "text/plain; charset=UTF-8"
OCTET_STREAM = "application/octet-stream"


class PacketType(enum.IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


@dataclass(frozen=True, slots=True)
class Packet:
    """One Engine.IO packet; ``bytes`` data is a binary message (only valid for MESSAGE)."""

    type: PacketType
    data: str | bytes = ""


# decode_ws builds packets through the slot descriptors: a frozen dataclass __init__ goes
# through object.__setattr__ per field, which is ~2x slower on the hot path.
_new_packet = object.__new__
_set_type = Packet.__dict__["type"].__set__
_set_data = Packet.__dict__["data"].__set__
_PREFIX: tuple[str, ...] = tuple(str(t.value) for t in PacketType)
TYPE_DIGITS = _PREFIX
"""The text prefix of each packet type, by type: ``TYPE_DIGITS[PacketType.MESSAGE] == "4"``."""


def message(data: str | bytes) -> Packet:
    """``Packet(PacketType.MESSAGE, data)``, built the fast way (the hot path)."""
    packet = _new_packet(Packet)
    _set_type(packet, _MESSAGE)
    _set_data(packet, data)
    return packet


_TYPE_OF: dict[str, PacketType] = {str(t.value): t for t in PacketType}
_MESSAGE = PacketType.MESSAGE
_TO_DIGIT_BYTES = bytes.maketrans(b"0123456789", bytes(range(10)))
_FROM_DIGIT_BYTES = bytes.maketrans(bytes(range(10)), b"0123456789")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_MAX_LEN_DIGITS = 15  # lengths are bounded by the body size long before this


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise RemoteProtocolError(f"invalid base64 data: {exc}") from None


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        # Lone surrogates: like a JS server (Buffer/utf8.js non-strict) send U+FFFD for
        # each; a split pair (two str code points) is joined as JS would see it.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode()


def _utf8_decode(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"invalid UTF-8 in payload: {exc}") from None


def _utf16_len(text: str) -> int:
    """JS ``string.length``: UTF-16 code units."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) >> 1


def _check_binary(packet: Packet) -> None:
    if packet.type != _MESSAGE:
        raise LocalProtocolError(f"binary data in a {packet.type!r} packet (MESSAGE only)")


def _is_octet_stream(content_type: str | None) -> bool:
    return (
        content_type is not None and content_type.partition(";")[0].strip().lower() == OCTET_STREAM
    )


def _decode_text(text: str, protocol: int) -> Packet:
    ptype = _TYPE_OF.get(text[:1])
    if ptype is not None:
        return Packet(ptype, text[1:])
    if not text:
        raise RemoteProtocolError("empty packet")
    if text[0] != "b":
        raise RemoteProtocolError(f"unknown packet type {text[:1]!r}")
    if protocol == 4:
        return Packet(_MESSAGE, _b64decode(text[1:]))
    if text[1:2] != "4":
        raise RemoteProtocolError(f"base64 packet of type {text[1:2]!r} (MESSAGE only)")
    return Packet(_MESSAGE, _b64decode(text[2:]))


def encode_ws(packet: Packet, protocol: int, *, b64: bool = False) -> str | bytes:
    """One websocket frame: ``str`` -> text frame, ``bytes`` -> binary frame.

    v4: a binary MESSAGE is the raw bytes; v3: ``b"\\x04" + bytes``.  With ``b64`` (the
    client sent the ``b64`` query parameter) binary goes in a text frame as ``"b" +
    base64`` (v4) or ``"b4" + base64`` (v3).  Raises :class:`LocalProtocolError` for
    binary data in a non-MESSAGE packet or an unknown protocol.
    """
    data = packet.data
    if isinstance(data, str):
        return _PREFIX[packet.type] + data
    _check_binary(packet)
    if protocol == 4:
        return _text_of(packet, "b") if b64 else data
    if protocol == 3:
        return _text_of(packet, "b4") if b64 else b"\x04" + data
    raise LocalProtocolError(f"unknown Engine.IO protocol {protocol!r}")


def decode_ws(frame: str | bytes, protocol: int) -> Packet:
    """Decode one websocket frame.

    Raises :class:`RemoteProtocolError` for an empty text frame, an unknown packet type,
    invalid base64, or (v3) a binary frame that is empty or not a MESSAGE.  An empty
    binary frame is an empty binary MESSAGE in v4 (as in engine.io-parser).
    """
    if isinstance(frame, str):
        ptype = _TYPE_OF.get(frame[:1])
        if ptype is not None:
            packet = _new_packet(Packet)
            _set_type(packet, ptype)
            _set_data(packet, frame[1:])
            return packet
        return _decode_text(frame, protocol)
    if protocol == 4:
        return Packet(_MESSAGE, bytes(frame))
    if frame[:1] != b"\x04":
        raise RemoteProtocolError(f"v3 binary frame of type {frame[:1]!r} (MESSAGE only)")
    return Packet(_MESSAGE, bytes(frame[1:]))


def _text_of(packet: Packet, b64_prefix: str) -> str:
    data = packet.data
    if isinstance(data, str):
        return _PREFIX[packet.type] + data
    _check_binary(packet)
    return b64_prefix + _b64encode(data)


def encode_payload(
    packets: Sequence[Packet], protocol: int, *, b64: bool = False
) -> tuple[bytes, str]:
    """The body of a polling GET response and its Content-Type.

    v4: packets joined by ``"\\x1e"``, binary as ``"b" + base64``, ``text/plain``.
    v3: with ``b64`` or no binary packet the ``<len>:<packet>`` string format (binary as
    ``"b4" + base64``, ``text/plain``), else the binary format (``application/octet-stream``).
    Raises :class:`LocalProtocolError` for binary data in a non-MESSAGE packet, an unknown
    protocol, and in v4 an empty list or text containing ``"\\x1e"`` (it cannot be framed).
    """
    if protocol == 4:
        body = "\x1e".join([_text_of(packet, "b") for packet in packets])
        if not packets or body.count("\x1e") != len(packets) - 1:
            raise LocalProtocolError("v4 payloads cannot be empty nor have '\\x1e' in text")
        return _utf8(body), TEXT_PLAIN
    if protocol != 3:
        raise LocalProtocolError(f"unknown Engine.IO protocol {protocol!r}")
    if b64 or all(isinstance(packet.data, str) for packet in packets):
        if not packets:
            return b"0:", TEXT_PLAIN
        texts = [_text_of(packet, "b4") for packet in packets]
        return _utf8("".join([f"{_utf16_len(text)}:{text}" for text in texts])), TEXT_PLAIN
    out = bytearray()
    for packet in packets:
        data = packet.data
        if isinstance(data, str):
            chunk = _utf8(_PREFIX[packet.type] + data)
        else:
            _check_binary(packet)
            chunk = b"\x04" + data
        out.append(not isinstance(data, str))
        out += str(len(chunk)).encode().translate(_TO_DIGIT_BYTES)
        out.append(0xFF)
        out += chunk
    return bytes(out), OCTET_STREAM


def decode_payload(
    body: bytes, protocol: int, *, content_type: str | None = None, max_packets: int = 1024
) -> list[Packet]:
    """Decode the body of a polling POST.

    Raises :class:`RemoteProtocolError` for a malformed payload (bad, non-digit or
    overlong length prefix, empty packet, unknown type, invalid UTF-8 or base64, more
    than ``max_packets`` packets, a binary body in v4) and :class:`LocalProtocolError`
    for an unknown protocol.  v3 uses the binary format if ``content_type`` is
    ``application/octet-stream`` or the body starts with 0x00/0x01.
    """
    if protocol == 4:
        if _is_octet_stream(content_type):
            raise RemoteProtocolError("binary payloads are not allowed in protocol 4")
        if body.count(b"\x1e") >= max_packets:
            raise RemoteProtocolError(f"more than {max_packets} packets in payload")
        return [_decode_text(part, 4) for part in _utf8_decode(body).split("\x1e")]
    if protocol != 3:
        raise LocalProtocolError(f"unknown Engine.IO protocol {protocol!r}")
    if _is_octet_stream(content_type) or body[:1] in (b"\x00", b"\x01"):
        return _decode_v3_binary(body, max_packets)
    return _decode_v3_text(_utf8_decode(body), max_packets)


def _decode_v3_text(text: str, max_packets: int) -> list[Packet]:
    if not text:
        raise RemoteProtocolError("empty payload")
    # Lengths count UTF-16 code units; only astral characters make that differ from len().
    units = text.encode("utf-16-le") if _ASTRAL.search(text) else None
    packets: list[Packet] = []
    pos = upos = 0  # position in text (code points) and in units (code units)
    end = len(text)
    while pos < end:
        colon = text.find(":", pos, pos + _MAX_LEN_DIGITS + 1)
        digits = text[pos:colon]
        if colon < 0 or not digits or not (digits.isascii() and digits.isdigit()):
            raise RemoteProtocolError(f"bad length prefix at offset {pos}")
        n = int(digits)
        start = colon + 1
        if units is None:
            msg = text[start : start + n]
            if len(msg) != n:
                raise RemoteProtocolError("packet length past the end of the payload")
        else:
            upos += start - pos
            raw = units[2 * upos : 2 * (upos + n)]
            if len(raw) != 2 * n:
                raise RemoteProtocolError("packet length past the end of the payload")
            try:
                msg = raw.decode("utf-16-le")
            except UnicodeDecodeError:
                raise RemoteProtocolError("packet length splits a surrogate pair") from None
            upos += n
        pos = start + len(msg)
        if msg:  # "0:" entries are skipped, as in the JS parser (it is the empty payload)
            if len(packets) >= max_packets:
                raise RemoteProtocolError(f"more than {max_packets} packets in payload")
            packets.append(_decode_text(msg, 3))
    return packets


def _decode_v3_binary(body: bytes, max_packets: int) -> list[Packet]:
    packets: list[Packet] = []
    pos, end = 0, len(body)
    while pos < end:
        marker = body[pos]
        sep = body.find(b"\xff", pos + 1, pos + _MAX_LEN_DIGITS + 2)
        digits = body[pos + 1 : sep]
        if marker > 1 or sep < 0 or not digits or max(digits) > 9:
            raise RemoteProtocolError(f"bad binary length prefix at offset {pos}")
        start = sep + 1
        pos = start + int(digits.translate(_FROM_DIGIT_BYTES))
        if pos > end:
            raise RemoteProtocolError("packet length past the end of the payload")
        if len(packets) >= max_packets:
            raise RemoteProtocolError(f"more than {max_packets} packets in payload")
        if marker == 0:
            packets.append(_decode_text(_utf8_decode(body[start:pos]), 3))
        elif body[start : start + 1] == b"\x04":
            packets.append(Packet(_MESSAGE, body[start + 1 : pos]))
        else:
            raise RemoteProtocolError("binary packet that is empty or not a MESSAGE")
    return packets


def encode_open(
    sid: str,
    upgrades: Sequence[str],
    ping_interval_ms: int,
    ping_timeout_ms: int,
    max_payload: int,
    protocol: int,
) -> Packet:
    """The OPEN packet (handshake JSON; v3 has no ``maxPayload``).

    Raises :class:`LocalProtocolError` for an unknown protocol.
    """
    info: dict[str, object] = {
        "sid": sid,
        "upgrades": list(upgrades),
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
    }
    if protocol == 4:
        info["maxPayload"] = max_payload
    elif protocol != 3:
        raise LocalProtocolError(f"unknown Engine.IO protocol {protocol!r}")
    return Packet(PacketType.OPEN, orjson.dumps(info).decode())


def check_payload_size(size: int, max_payload: int) -> None:
    """Raises :class:`PayloadTooLarge` if ``size`` (bytes) exceeds ``max_payload``."""
    if size > max_payload:
        raise PayloadTooLarge(f"payload of {size} bytes exceeds maxPayload={max_payload}")
