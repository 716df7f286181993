"""Tests for the Engine.IO packet/payload codec (protocols 3 and 4)."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import engineio.packet  # type: ignore[import-untyped, unused-ignore]
import engineio.payload  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gosf.protocol.engineio import (
    OCTET_STREAM,
    TEXT_PLAIN,
    Packet,
    PacketType,
    check_payload_size,
    decode_payload,
    decode_ws,
    encode_open,
    encode_payload,
    encode_ws,
)
from gosf.protocol.errors import LocalProtocolError, PayloadTooLarge, RemoteProtocolError

M = PacketType.MESSAGE
BIN = b"\x01\x02\x03\x04"
SETTINGS = settings(max_examples=200, deadline=None)


# --------------------------------------------------------------------------- strategies

packet_types = st.sampled_from(list(PacketType))
text_packets = st.builds(Packet, packet_types, st.text())
binary_packets = st.builds(Packet, st.just(M), st.binary())
packets = st.one_of(text_packets, binary_packets)
# v4 payloads cannot carry the record separator inside text (see encode_payload).
v4_text_packets = st.builds(Packet, packet_types, st.text().filter(lambda s: "\x1e" not in s))
v4_packets = st.one_of(v4_text_packets, binary_packets)


# --------------------------------------------------------------------------- spec vectors, v4


@pytest.mark.parametrize(
    ("packet", "frame"),
    [
        (Packet(M, "hello"), "4hello"),
        (Packet(PacketType.PING, "probe"), "2probe"),
        (Packet(PacketType.PONG), "3"),
        (Packet(PacketType.UPGRADE), "5"),
        (Packet(PacketType.NOOP), "6"),
        (Packet(PacketType.CLOSE), "1"),
        (Packet(M, "é😀"), "4é😀"),
        (Packet(M, BIN), BIN),  # "Binary payloads are sent as is"
    ],
)
def test_v4_ws_vectors(packet: Packet, frame: str | bytes) -> None:
    assert encode_ws(packet, 4) == frame
    assert decode_ws(frame, 4) == packet


def test_v4_ws_b64() -> None:
    assert encode_ws(Packet(M, BIN), 4, b64=True) == "bAQIDBA=="
    assert decode_ws("bAQIDBA==", 4) == Packet(M, BIN)
    assert decode_ws("b", 4) == Packet(M, b"")
    assert decode_ws(b"", 4) == Packet(M, b"")  # engine.io-parser: any binary frame is a MESSAGE


@pytest.mark.parametrize(
    ("packets", "body"),
    [
        # engine.io-protocol README, "Packet encoding / HTTP long-polling"
        (
            [Packet(M, "hello"), Packet(PacketType.PING), Packet(M, "world")],
            b"4hello\x1e2\x1e4world",
        ),
        ([Packet(M, "hello"), Packet(M, BIN)], b"4hello\x1ebAQIDBA=="),
        ([Packet(M, "é"), Packet(M, "😀")], "4é\x1e4😀".encode()),
        ([Packet(PacketType.NOOP)], b"6"),
    ],
)
def test_v4_payload_vectors(packets: list[Packet], body: bytes) -> None:
    assert encode_payload(packets, 4) == (body, TEXT_PLAIN)
    assert encode_payload(packets, 4, b64=True) == (body, TEXT_PLAIN)
    assert decode_payload(body, 4) == packets
    assert decode_payload(body, 4, content_type="text/plain;charset=UTF-8") == packets


def test_v4_open() -> None:
    packet = encode_open("lv_VI97HAXpY6yYWAAAC", ["websocket"], 25000, 20000, 1000000, 4)
    assert packet == Packet(
        PacketType.OPEN,
        '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
        '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}',
    )
    assert encode_ws(packet, 4) == "0" + str(packet.data)


# --------------------------------------------------------------------------- spec vectors, v3
#
# The v3 "<len>:<packet>" length is the JS string length, i.e. UTF-16 code units, not bytes
# and not code points.  Verified in socketio/engine.io lib/parser-v3/index.ts (engine.io 6.6.0,
# "imported from engine.io-parser 2.2.x"): setLengthHeader is `message.length + ':' + message`
# on a string that is NOT utf8-encoded (encodePacket(packet, supportsBinary, false, ...)), and
# decodePayload compares `length != msg.length` after `data.slice(...)`; the POST body reaches it
# through req.setEncoding("utf8") (lib/transports/polling.ts).  The engine.io-protocol README
# (main, "From v3 to v4") says the same: "`€` was encoded to `2:4€`".  So "é" counts 1, an
# astral "😀" counts 2 (a surrogate pair).  In the binary payload format, text packets are
# utf8-encoded first (encodePacket(p, true, true, ...)), so there the length is in bytes.
# All the v3 vectors and round trips here were also cross-checked once against that JS parser
# (run under node) for byte-identical output.


@pytest.mark.parametrize(
    ("packets", "body"),
    [
        # engine.io-protocol v3 README, "Payload" example without binary
        ([Packet(M, "hello"), Packet(M, "€")], "6:4hello2:4€".encode()),
        # ... example with binary when the client or transport does not support it (b64)
        ([Packet(M, "€"), Packet(M, BIN)], "2:4€10:b4AQIDBA==".encode()),
        ([Packet(M, "hey")], b"4:4hey"),
        ([Packet(M, "é")], "2:4é".encode()),
        ([Packet(M, "😀")], "3:4😀".encode()),  # 1 + a surrogate pair
        ([Packet(M, "a😀é"), Packet(PacketType.PING, "probe")], "5:4a😀é6:2probe".encode()),
        ([Packet(PacketType.PONG), Packet(PacketType.NOOP)], b"1:31:6"),
        ([], b"0:"),
    ],
)
def test_v3_string_payload_vectors(packets: list[Packet], body: bytes) -> None:
    has_binary = any(isinstance(p.data, bytes) for p in packets)
    assert encode_payload(packets, 3, b64=True) == (body, TEXT_PLAIN)
    if not has_binary:  # text-only payloads use the string format even without b64
        assert encode_payload(packets, 3) == (body, TEXT_PLAIN)
    assert decode_payload(body, 3) == packets
    assert decode_payload(body, 3, content_type=TEXT_PLAIN) == packets


def test_v3_binary_payload_vector() -> None:
    # engine.io-protocol v3 README, "Example with binary (both the client and the transport
    # support binary)": <00 04 ff 34 e2 82 ac 01 05 ff 04 01 02 03 04>
    packets = [Packet(M, "€"), Packet(M, BIN)]
    body = bytes.fromhex("00 04 ff 34 e2 82 ac 01 05 ff 04 01 02 03 04")
    assert encode_payload(packets, 3) == (body, OCTET_STREAM)
    assert decode_payload(body, 3, content_type=OCTET_STREAM) == packets
    assert decode_payload(body, 3) == packets  # recognised by the 0x00 marker


def test_v3_binary_payload_lengths_in_bytes_and_digits() -> None:
    text = "😀" * 3  # 12 UTF-8 bytes, 13 with the type: length bytes 01 03
    data = bytes(range(256)) * 4  # 1025 bytes with the type byte: 01 00 02 05
    packets = [Packet(M, text), Packet(M, data), Packet(PacketType.PING, "b4")]
    body, ctype = encode_payload(packets, 3)
    assert ctype == OCTET_STREAM
    assert body == (
        b"\x00\x01\x03\xff4" + text.encode()
        + b"\x01\x01\x00\x02\x05\xff\x04" + data
        + b"\x00\x03\xff2b4"
    )  # fmt: skip
    assert decode_payload(body, 3, content_type=OCTET_STREAM) == packets


def test_v3_base64_inside_binary_payload() -> None:
    # decodePacket sees the "b" before utf8-decoding, so a base64 string entry is allowed.
    assert decode_payload(b"\x00\x01\x00\xffb4AQIDBA==", 3) == [Packet(M, BIN)]


def test_v3_open() -> None:
    # engine.io-protocol v3 README, sample session, request n°1 (no maxPayload in v3)
    packet = encode_open("lv_VI97HAXpY6yYWAAAC", ["websocket"], 25000, 5000, 10**6, 3)
    expected = (
        b'96:0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
        b'"pingInterval":25000,"pingTimeout":5000}'
    )
    assert encode_payload([packet], 3) == (expected, TEXT_PLAIN)
    assert decode_payload(expected, 3) == [packet]


def test_v3_ws_vectors() -> None:
    assert encode_ws(Packet(PacketType.PING, "probe"), 3) == "2probe"
    assert encode_ws(Packet(M, "€"), 3) == "4€"
    assert encode_ws(Packet(M, BIN), 3) == b"\x04" + BIN  # v3 README: "4|0|1|2|3|4|5"
    assert encode_ws(Packet(M, BIN), 3, b64=True) == "b4AQIDBA=="
    assert decode_ws(b"\x04" + BIN, 3) == Packet(M, BIN)
    assert decode_ws(b"\x04", 3) == Packet(M, b"")
    assert decode_ws("b4AQIDBA==", 3) == Packet(M, BIN)
    assert decode_ws("3probe", 3) == Packet(PacketType.PONG, "probe")


def test_v3_zero_length_entries_are_skipped() -> None:
    # parser-v3 decodePayload only decodes `if (msg.length)`; "0:" is the empty payload.
    assert decode_payload(b"0:", 3) == []
    assert decode_payload(b"0:1:60:", 3) == [Packet(PacketType.NOOP)]
    assert decode_payload(b"", 3, content_type=OCTET_STREAM) == []


def test_lone_surrogates_become_replacement_characters() -> None:
    # Like Buffer.from(string) / utf8.js {strict: false} in the JS server; the v3 length still
    # counts the one code unit the surrogate took.
    body, _ = encode_payload([Packet(M, "a\ud800")], 3)
    assert body == "3:4a\ufffd".encode()
    assert decode_payload(body, 3) == [Packet(M, "a\ufffd")]
    body, _ = encode_payload([Packet(M, "a\ud800"), Packet(M, BIN)], 3)
    assert body[:7] == b"\x00\x05\xff4a\xef\xbf"
    assert encode_payload([Packet(M, "\ud83d\ude00")], 4)[0] == "4😀".encode()


def test_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        encode_ws(Packet(PacketType.PING, b"x"), 4)
    with pytest.raises(LocalProtocolError):
        encode_ws(Packet(M, b"x"), 5)
    for protocol in (3, 4):
        with pytest.raises(LocalProtocolError):
            encode_payload([Packet(PacketType.NOOP, b"")], protocol)
        with pytest.raises(LocalProtocolError):
            encode_open("s", [], 1, 1, 1, protocol + 2)
    with pytest.raises(LocalProtocolError):
        encode_payload([Packet(M, "a\x1eb")], 4)
    with pytest.raises(LocalProtocolError):
        encode_payload([], 4)
    with pytest.raises(LocalProtocolError):
        decode_payload(b"4", 2)


def test_check_payload_size() -> None:
    check_payload_size(10, 10)
    with pytest.raises(PayloadTooLarge):
        check_payload_size(11, 10)


# --------------------------------------------------------------------------- differential, v4


class _RawJson:
    """python-engineio json-decodes text data ("4{...}" -> dict); compare the wire text."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(_: str) -> Any:
        raise ValueError


def _raw_json() -> Any:
    return mock.patch.object(engineio.packet.Packet, "json", _RawJson)


def _theirs(packet: Packet) -> Any:
    return engineio.packet.Packet(int(packet.type), packet.data)


def _from_theirs(pkt: Any) -> Packet:
    data = pkt.data if pkt.data is not None else ""
    return Packet(PacketType(pkt.packet_type), data)


@SETTINGS
@given(packets)
def test_v4_ws_differential(packet: Packet) -> None:
    ours = encode_ws(packet, 4)
    assert ours == _theirs(packet).encode()
    with _raw_json():
        assert _from_theirs(engineio.packet.Packet(encoded_packet=ours)) == packet
    assert decode_ws(_theirs(packet).encode(), 4) == packet
    assert decode_ws(_theirs(packet).encode(b64=True), 4) == packet
    assert decode_ws(encode_ws(packet, 4, b64=True), 4) == packet


@SETTINGS
@given(st.lists(v4_packets, min_size=1, max_size=16))
def test_v4_payload_differential(packets: list[Packet]) -> None:
    body, ctype = encode_payload(packets, 4)
    assert ctype == TEXT_PLAIN
    theirs = engineio.payload.Payload(packets=[_theirs(p) for p in packets]).encode()
    assert body == theirs.encode()
    with _raw_json():
        decoded = engineio.payload.Payload(encoded_payload=body.decode()).packets
    assert [_from_theirs(p) for p in decoded] == packets
    assert decode_payload(theirs.encode(), 4) == packets


# --------------------------------------------------------------------------- round trips, v3


@SETTINGS
@given(st.lists(packets, max_size=20), st.booleans())
def test_v3_payload_roundtrip(packets: list[Packet], b64: bool) -> None:
    body, ctype = encode_payload(packets, 3, b64=b64)
    binary_format = not b64 and any(isinstance(p.data, bytes) for p in packets)
    assert ctype == (OCTET_STREAM if binary_format else TEXT_PLAIN)
    assert decode_payload(body, 3, content_type=ctype) == packets
    assert decode_payload(body, 3) == packets


@SETTINGS
@given(packets, st.booleans())
def test_v3_ws_roundtrip(packet: Packet, b64: bool) -> None:
    frame = encode_ws(packet, 3, b64=b64)
    assert isinstance(frame, str) == (b64 or isinstance(packet.data, str))
    assert decode_ws(frame, 3) == packet


# --------------------------------------------------------------------------- bad input


BAD_V4 = [b"", b"7", b"x", b"\x1e", b"4a\x1e", b"4a\x1e\x1e4b", b"\xff", b"4\xc3", b"b!!!"]
BAD_V4 += [b"bAQ", b"bAQIDBA", b"b AQ==", b"4\x1e" + "😀".encode()]
BAD_V3_TEXT = [b"", b"5", b"4hello", b"1:", b"a:4", b":4", b"2:4", "3:4é".encode(), b"1:7"]
BAD_V3_TEXT += [b"2:b5", b"4:b4!!", b"5:b4AQ", b"1:42:4", b"-1:4", b"+1:4", b"1 :4", b" 1:4"]
BAD_V3_TEXT += [b"0x1:4", "\u0661:4".encode(), b"1e0:4", b"1:4\xff", b"1:4x", b"1:41"]
BAD_V3_TEXT += ["2:4😀".encode(), "1:😀".encode(), b"9" * 20 + b":4", b"1:4" + b"0" * 30]
BAD_V3_BINARY = [b"\x02\x01\xff4", b"\x00\xff", b"\x00\x01", b"\x00\x0a\xff4444444444"]
BAD_V3_BINARY += [b"\x00\x05\xff4", b"\x00\x01\xff7", b"\x00\x00\xff", b"\x01\x01\xff\x02"]
BAD_V3_BINARY += [b"\x01\x00\xff", b"\x00\x02\xff4\xff", b"\x00\x03\xffb5A", b"\x00" + b"\x01" * 20]
BAD_V3_BINARY += [b"\x00\x01\xff4\x00", b"\x01\x01\xff\x04\x02", b"4"]


@pytest.mark.parametrize("body", BAD_V4)
def test_bad_v4_payload(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(body, 4)


@pytest.mark.parametrize("body", BAD_V3_TEXT)
def test_bad_v3_text_payload(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(body, 3, content_type=TEXT_PLAIN)


@pytest.mark.parametrize("body", BAD_V3_BINARY)
def test_bad_v3_binary_payload(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(body, 3, content_type=OCTET_STREAM)


def test_v4_rejects_binary_content_type() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_payload(b"4hello", 4, content_type="Application/Octet-Stream; x=y")


@pytest.mark.parametrize("protocol", [3, 4])
def test_too_many_packets(protocol: int) -> None:
    packets = [Packet(PacketType.NOOP)] * 5
    body, ctype = encode_payload(packets, protocol)
    assert decode_payload(body, protocol, content_type=ctype, max_packets=5) == packets
    with pytest.raises(RemoteProtocolError):
        decode_payload(body, protocol, content_type=ctype, max_packets=4)
    body, ctype = encode_payload([*packets, Packet(M, b"")], protocol)
    with pytest.raises(RemoteProtocolError):
        decode_payload(body, protocol, content_type=ctype, max_packets=5)


@pytest.mark.parametrize("protocol", [3, 4])
@pytest.mark.parametrize("frame", ["", "7", "x", " 4", "b!!", "bAQ", "b4AQ", "b5AQ=="])
def test_bad_ws_text(protocol: int, frame: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_ws(frame, protocol)


@pytest.mark.parametrize("frame", [b"", b"\x00", b"\x02probe", b"4"])
def test_bad_v3_ws_binary(frame: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_ws(frame, 3)


def _decodes_or_remote_error(body: bytes, protocol: int, content_type: str | None) -> None:
    try:
        result = decode_payload(body, protocol, content_type=content_type)
    except RemoteProtocolError:
        return
    assert all(isinstance(p, Packet) for p in result)


content_types = st.sampled_from([None, TEXT_PLAIN, OCTET_STREAM])
# Bytes that often look almost valid, to get past the first checks.
near_valid = st.lists(
    st.sampled_from(
        [
            *(b"0", b"1", b"2", b"4", b"9", b":", b"b", b"b4", b"\x00", b"\x01", b"\x04"),
            *(b"\xff", b"\x1e", b"\xc3\xa9", "😀".encode(), b"AQ==", b"\xed\xa0\x80"),
        ]
    ),
    max_size=30,
).map(b"".join)


@SETTINGS
@given(st.one_of(st.binary(), near_valid), st.sampled_from([3, 4]), content_types)
def test_fuzz_decode_payload(body: bytes, protocol: int, content_type: str | None) -> None:
    _decodes_or_remote_error(body, protocol, content_type)


@SETTINGS
@given(st.one_of(st.text(), st.binary()), st.sampled_from([3, 4]))
def test_fuzz_decode_ws(frame: str | bytes, protocol: int) -> None:
    try:
        packet = decode_ws(frame, protocol)
    except RemoteProtocolError:
        return
    assert isinstance(packet, Packet)
