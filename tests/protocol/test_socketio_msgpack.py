"""Tests of the msgpack Socket.IO codec (gosf.protocol.socketio_msgpack) and the
parser choice (gosf.protocol.parser): round trips, the maps npm
``socket.io-msgpack-parser`` (notepack.io) writes and reads, and bad input."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gosf.protocol.errors import LocalProtocolError, RemoteProtocolError
from gosf.protocol.parser import JSON_PARSER, MSGPACK_PARSER, parser_named
from gosf.protocol.socketio import Packet, PacketType
from gosf.protocol.socketio_msgpack import MsgpackDecoder, encode, encode_ack, encode_event
from tests.protocol.test_socketio_codec import (
    ack_ids,
    bin_values,
    event_names,
    namespaces,
    v5_packets,
)

T = PacketType


def unpack(parts: list[str | bytes]) -> Any:
    assert len(parts) == 1 and isinstance(parts[0], bytes), "one binary message per packet"
    return msgpack.unpackb(parts[0], raw=False)


def pack(obj: Any) -> bytes:
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


# -- round trips ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(v5_packets)
def test_round_trip(packet: Packet) -> None:
    """Whatever the JSON codec's tests encode, msgpack carries unchanged: bytes
    included, and EVENT/ACK stay EVENT/ACK (no attachments)."""
    (wire,) = encode(packet)
    assert isinstance(wire, bytes)
    assert MsgpackDecoder().feed(wire) == packet


@settings(max_examples=100, deadline=None)
@given(v5_packets.filter(lambda p: p.type in (T.EVENT, T.ACK)))
def test_shortcuts_encode_as_encode(packet: Packet) -> None:
    if packet.type is T.EVENT:
        name, *args = packet.data
        assert encode_event(packet.namespace, name, args, packet.id) == encode(packet)
    else:
        assert packet.id is not None
        assert encode_ack(packet.namespace, packet.id, packet.data) == encode(packet)


# -- the maps on the wire (what the npm parser reads and writes) ----------------------------


def test_maps_leave_out_what_is_absent() -> None:
    assert unpack(encode(Packet(T.CONNECT, "/", {"sid": "x"}))) == {
        "type": 0,
        "nsp": "/",
        "data": {"sid": "x"},
    }
    # The npm decoder refuses DISCONNECT with data, and an id that is not an integer.
    assert unpack(encode(Packet(T.DISCONNECT, "/chat"))) == {"type": 1, "nsp": "/chat"}
    assert unpack(encode_event("/", "hi", [b"\x01", 2])) == {
        "type": 2,
        "nsp": "/",
        "data": ["hi", b"\x01", 2],
    }
    assert unpack(encode_ack("/", 7, [])) == {"type": 3, "nsp": "/", "data": [], "id": 7}


def test_binary_types_are_written_as_plain_ones() -> None:
    packet = Packet(T.BINARY_EVENT, "/", ["x", b"\x00"], 3)
    assert unpack(encode(packet))["type"] == 2


def test_what_socket_io_client_sends() -> None:
    """socket.io-client's packets as notepack.io writes them: ``options`` beside the
    fields, ``undefined`` as the fixext 1 of type 0, an ArrayBuffer as ext 8 of type 0."""
    undefined = b"\xd4\x00\x00"
    connect = b"\x83\xa4type\x00\xa3nsp\xa1/\xa4data" + undefined
    assert MsgpackDecoder().feed(connect) == Packet(T.CONNECT, "/", None)

    array_buffer = b"\xc7\x03\x00abc"  # ext 8, three bytes, type 0
    event = (
        b"\x84\xa4type\x02\xa4data\x93\xa4echo"
        + array_buffer
        + undefined
        + b"\xa7options\x81\xa8compress\xc3\xa3nsp\xa1/"
    )
    assert MsgpackDecoder().feed(event) == Packet(T.EVENT, "/", ["echo", b"abc", None])


def test_unpackable_data_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="msgpack"):
        encode_event("/", "x", [object()])
    with pytest.raises(LocalProtocolError, match="msgpack"):
        encode_event("/", "x", [2**64])
    with pytest.raises(LocalProtocolError):
        encode(Packet(T.DISCONNECT, "/", {"no": "data"}))
    with pytest.raises(LocalProtocolError):
        encode(Packet(T.ACK, "/", []))  # no ack id


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire",
    [
        '2["a"]',  # text: the JSON codec's
        b"",
        b"\xc1",  # never used by msgpack
        b"\x92\x01\x02",  # an array, not a map
        pack({"type": 2, "nsp": "/", "data": ["a"]}) + b"\x00",  # trailing bytes
        pack({"type": 5, "nsp": "/", "data": ["a"]}),  # no BINARY_EVENT in msgpack
        pack({"type": True, "nsp": "/", "data": ["a"]}),
        pack({"type": 2, "data": ["a"]}),  # no namespace
        pack({"type": 2, "nsp": "chat", "data": ["a"]}),
        pack({"type": 2, "nsp": "/", "data": []}),
        pack({"type": 2, "nsp": "/", "data": ["connect"]}),  # reserved
        pack({"type": 2, "nsp": "/", "data": ["a"], "id": -1}),
        pack({"type": 2, "nsp": "/", "data": ["a"], "id": 1.5}),
        pack({"type": 3, "nsp": "/", "data": ["a"]}),  # ACK without an id
        pack({"type": 0, "nsp": "/", "data": [1]}),
        pack({"type": 1, "nsp": "/", "data": {}}),
        b"\x81\x01\x02",  # an integer key
        b"\xd5\x05ab",  # an extension notepack.io never writes
        b"\x91" * 5000,  # nested past msgpack's stack
    ],
)
def test_bad_input_is_a_remote_error(wire: str | bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        MsgpackDecoder().feed(wire)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_remote_protocol_error(wire: bytes) -> None:
    try:
        MsgpackDecoder().feed(wire)
    except RemoteProtocolError:
        pass


# -- choosing a parser ----------------------------------------------------------------------


def test_parser_named() -> None:
    assert parser_named("json") is JSON_PARSER
    assert parser_named("msgpack") is MSGPACK_PARSER
    assert parser_named(MSGPACK_PARSER) is MSGPACK_PARSER
    with pytest.raises(ValueError, match="unknown parser"):
        parser_named("yaml")  # type: ignore[arg-type]
    assert JSON_PARSER.decoder(5, max_attachment_bytes=None).pending_attachments == 0
    assert MSGPACK_PARSER.decoder(5, max_attachment_bytes=None).pending_attachments == 0


@settings(max_examples=100, deadline=None)
@given(namespaces, event_names, bin_values, st.none() | ack_ids)
def test_event_and_ack_encode_as_the_two_shortcuts(
    namespace: str, event: str, data: Any, ack_id: int | None
) -> None:
    expected_ack = None if ack_id is None else encode_ack(namespace, ack_id, (data,))
    assert MSGPACK_PARSER.encode_event_and_ack(namespace, event, data, ack_id) == (
        encode_event(namespace, event, (data,)),
        expected_ack,
    )


class _OwnParser:
    """A parser of one's own with only the older methods (no encode_event_and_ack)."""

    name = "own"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def encode(self, packet: Packet, protocol: int = 5) -> list[str | bytes]:
        return JSON_PARSER.encode(packet, protocol)

    def encode_event(
        self, namespace: str, event: str, args: Any, ack_id: int | None = None
    ) -> list[str | bytes]:
        self.calls.append("event")
        return JSON_PARSER.encode_event(namespace, event, args, ack_id)

    def encode_ack(self, namespace: str, ack_id: int, args: Any) -> list[str | bytes]:
        self.calls.append("ack")
        return JSON_PARSER.encode_ack(namespace, ack_id, args)

    def decoder(self, protocol: int, *, max_attachment_bytes: int | None) -> Any:
        return JSON_PARSER.decoder(protocol, max_attachment_bytes=max_attachment_bytes)


def test_a_parser_without_event_and_ack_gets_one_from_its_encoders() -> None:
    own = _OwnParser()
    parser = parser_named(own)  # type: ignore[arg-type]  # it lacks encode_event_and_ack
    assert parser.name == "own"
    assert parser.encode_event_and_ack("/", "echo", {"a": 1}, 4) == (
        ['2["echo",{"a":1}]'],
        ['34[{"a":1}]'],
    )
    assert parser.encode_event_and_ack("/", "echo", 1, None) == (['2["echo",1]'], None)
    assert own.calls == ["event", "ack", "event"]
    assert parser.encode_ack("/", 1, ()) == ["31[]"]
    assert parser.decoder(5, max_attachment_bytes=None).pending_attachments == 0
