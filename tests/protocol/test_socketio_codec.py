"""Tests of the Socket.IO packet codec (gosf.protocol.socketio)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from socketio import packet as sio_packet  # type: ignore[import-untyped, unused-ignore]

from gosf.protocol.errors import LocalProtocolError, PayloadTooLarge, RemoteProtocolError
from gosf.protocol.socketio import (
    Decoder,
    Packet,
    PacketType,
    encode,
    encode_ack,
    encode_event,
    encode_event_and_ack,
)

T = PacketType
PH0 = '{"_placeholder":true,"num":0}'
PH1 = '{"_placeholder":true,"num":1}'
RESERVED = {
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
}


def decode_all(messages: list[str | bytes], protocol: int = 5) -> Packet | None:
    """Feed every message to a fresh decoder; all but the last must return None."""
    decoder = Decoder(protocol, max_attachments=1000)
    *head, last = messages
    for message in head:
        assert decoder.feed(message) is None
    result = decoder.feed(last)
    assert decoder.pending_attachments == 0
    return result


def leaves(data: Any) -> list[Any]:
    """Every non-container value in ``data``."""
    if isinstance(data, list):
        return [leaf for item in data for leaf in leaves(item)]
    if isinstance(data, dict):
        return [leaf for item in data.values() for leaf in leaves(item)]
    return [data]


# -- 1. known vectors -----------------------------------------------------------------------

# (packet, wire messages) pairs: from the socket.io-protocol v5 README (and its sample
# session, without the Engine.IO "4" prefix) and socket.io-parser 4.x tests.
V5_VECTORS: list[tuple[Packet, list[str | bytes]]] = [
    (Packet(T.CONNECT), ["0"]),
    (
        Packet(T.CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
        ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'],
    ),
    (Packet(T.CONNECT, "/", {"sid": "wZX3oN0bSVIhsaknAAAI"}), ['0{"sid":"wZX3oN0bSVIhsaknAAAI"}']),
    (
        Packet(T.CONNECT, "/admin", {"sid": "-G5j-67EZFp-q59rADQM"}),
        ['0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}'],
    ),
    (Packet(T.CONNECT, "/woot", {"token": "123"}), ['0/woot,{"token":"123"}']),
    (
        Packet(T.CONNECT_ERROR, "/", {"message": "Not authorized"}),
        ['4{"message":"Not authorized"}'],
    ),
    (Packet(T.EVENT, "/", ["foo"]), ['2["foo"]']),
    (Packet(T.EVENT, "/", ["hey", "Jude"]), ['2["hey","Jude"]']),
    (Packet(T.EVENT, "/admin", ["bar"]), ['2/admin,["bar"]']),
    (Packet(T.EVENT, "/", ["a", 1, {}]), ['2["a",1,{}]']),
    (Packet(T.EVENT, "/test", ["a", 1, {}], 1), ['2/test,1["a",1,{}]']),
    (Packet(T.EVENT, "/", ["foo"], 12), ['212["foo"]']),
    (Packet(T.EVENT, "/admin", ["tellme"], 1), ['2/admin,1["tellme"]']),
    (Packet(T.ACK, "/", ["a", 1, {}], 123), ['3123["a",1,{}]']),
    (Packet(T.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
    (Packet(T.ACK, "/", [], 12), ["312[]"]),
    (
        Packet(T.BINARY_EVENT, "/", ["baz", b"\x01\x02\x03\x04"]),
        [f'51-["baz",{PH0}]', b"\x01\x02\x03\x04"],
    ),
    (
        Packet(T.BINARY_EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
        [f'52-/admin,["baz",{PH0},{PH1}]', b"\x01\x02", b"\x03\x04"],
    ),
    (
        Packet(T.BINARY_ACK, "/", ["bar", b"\x01\x02\x03\x04"], 15),
        [f'61-15["bar",{PH0}]', b"\x01\x02\x03\x04"],
    ),
    (Packet(T.BINARY_ACK, "/admin", [b"\xff"], 1), [f"61-/admin,1[{PH0}]", b"\xff"]),
    (Packet(T.DISCONNECT), ["1"]),
    (Packet(T.DISCONNECT, "/admin"), ["1/admin,"]),
]

# From the v4 branch of socket.io-protocol (socket.io 2.x).
V4_VECTORS: list[tuple[Packet, list[str | bytes]]] = [
    (Packet(T.CONNECT), ["0"]),
    (Packet(T.CONNECT, "/admin"), ["0/admin,"]),
    (
        Packet(T.CONNECT, "/admin", {"query": "token=1234&uid=abcd"}),
        ["0/admin?token=1234&uid=abcd,"],
    ),
    (Packet(T.CONNECT, "/", {"query": "a=1"}), ["0/?a=1,"]),
    (Packet(T.DISCONNECT, "/admin"), ["1/admin,"]),
    (Packet(T.EVENT, "/", ["hello", 1]), ['2["hello",1]']),
    (
        Packet(T.EVENT, "/admin", ["project:delete", 123], 456),
        ['2/admin,456["project:delete",123]'],
    ),
    (Packet(T.ACK, "/admin", [], 456), ["3/admin,456[]"]),
    (Packet(T.CONNECT_ERROR, "/admin", "Not authorized"), ['4/admin,"Not authorized"']),
    (
        Packet(T.BINARY_EVENT, "/", ["hello", b"\x01\x02\x03"]),
        [f'51-["hello",{PH0}]', b"\x01\x02\x03"],
    ),
    (
        Packet(T.BINARY_EVENT, "/admin", ["project:delete", b"\x01\x02\x03"], 456),
        [f'51-/admin,456["project:delete",{PH0}]', b"\x01\x02\x03"],
    ),
    (
        Packet(T.BINARY_ACK, "/admin", [b"\x03\x02\x01"], 456),
        [f"61-/admin,456[{PH0}]", b"\x03\x02\x01"],
    ),
]

ALL_VECTORS = [(5, p, w) for p, w in V5_VECTORS] + [(4, p, w) for p, w in V4_VECTORS]


@pytest.mark.parametrize(("protocol", "packet", "wire"), ALL_VECTORS)
def test_vector_encode(protocol: int, packet: Packet, wire: list[str | bytes]) -> None:
    assert encode(packet, protocol) == wire


@pytest.mark.parametrize(("protocol", "packet", "wire"), ALL_VECTORS)
def test_vector_decode(protocol: int, packet: Packet, wire: list[str | bytes]) -> None:
    assert decode_all(wire, protocol) == packet


@pytest.mark.parametrize(
    ("protocol", "wire", "packet"),
    [
        (5, ["1/admin"], Packet(T.DISCONNECT, "/admin")),  # no trailing comma: namespace to the end
        (5, ['2/,["a"]'], Packet(T.EVENT, "/", ["a"])),
        (5, ['2 ["a"] '], Packet(T.EVENT, "/", ["a"])),  # JSON whitespace, as JSON.parse
        (
            5,
            ['4"Unauthorized"'],
            Packet(T.CONNECT_ERROR, "/", "Unauthorized"),
        ),  # parser 4.x accepts
        (5, ["4"], Packet(T.CONNECT_ERROR)),
        (5, ['2007["a"]'], Packet(T.EVENT, "/", ["a"], 7)),
        (5, ['2["a",18446744073709551616]'], Packet(T.EVENT, "/", ["a", 18446744073709551616.0])),
        (
            5,
            ['2["a",{"_placeholder":true,"num":0}]'],
            Packet(T.EVENT, "/", ["a", {"_placeholder": True, "num": 0}]),
        ),
        (
            5,
            ['0/admin?x=1,{"a":1}'],
            Packet(T.CONNECT, "/admin?x=1", {"a": 1}),
        ),  # v5: kept verbatim
        (4, ["0/admin?token=1"], Packet(T.CONNECT, "/admin", {"query": "token=1"})),
        (4, ["0/admin?,"], Packet(T.CONNECT, "/admin", {"query": ""})),
        (4, ['4{"message":"x"}'], Packet(T.CONNECT_ERROR, "/", {"message": "x"})),
        (4, ["442"], Packet(T.CONNECT_ERROR, "/", 42)),  # no ack id on type 4
        (4, ['2["connect"]'], Packet(T.EVENT, "/", ["connect"])),  # only v5 reserves names
        (5, ['50-["a"]'], Packet(T.BINARY_EVENT, "/", ["a"])),
        (
            5,
            [f'52-["a",{PH1},[{PH0}],{{"k":{PH1}}}]', b"x", bytearray(b"y")],
            Packet(T.BINARY_EVENT, "/", ["a", b"y", [b"x"], {"k": b"y"}]),
        ),
    ],
)
def test_decode_only(protocol: int, wire: list[str | bytes], packet: Packet) -> None:
    result = decode_all(wire, protocol)
    assert result == packet
    assert result is not None
    assert not any(isinstance(leaf, bytearray | memoryview) for leaf in leaves(result.data))


def test_auto_binary_numbering_is_depth_first_in_document_order() -> None:
    data = ["e", {"a": b"0", "b": [bytearray(b"1"), {"c": memoryview(b"2")}]}, b"3", (b"4",)]
    wire = encode(Packet(T.EVENT, "/nsp", data, 9))
    placeholders = [f'{{"_placeholder":true,"num":{i}}}' for i in range(5)]
    expected = '["e",{{"a":{},"b":[{},{{"c":{}}}]}},{},[{}]]'.format(*placeholders)
    assert wire == [f"55-/nsp,9{expected}", b"0", b"1", b"2", b"3", b"4"]
    assert all(type(part) is bytes for part in wire[1:])
    expected_data = ["e", {"a": b"0", "b": [b"1", {"c": b"2"}]}, b"3", [b"4"]]
    assert decode_all(wire) == Packet(T.BINARY_EVENT, "/nsp", expected_data, 9)
    assert encode(Packet(T.ACK, "/", [b"x"], 1)) == [f"61-1[{PH0}]", b"x"]


def test_encode_does_not_mutate_input_and_decoder_is_reusable() -> None:
    data = ["e", {"k": b"v"}]
    wire = encode(Packet(T.EVENT, "/", data))
    assert data == ["e", {"k": b"v"}]
    decoder = Decoder()
    assert decoder.feed(wire[0]) is None
    assert decoder.pending_attachments == 1
    assert decoder.feed(wire[1]) == Packet(T.BINARY_EVENT, "/", data)
    assert decoder.pending_attachments == 0
    assert decoder.feed('2["x"]') == Packet(T.EVENT, "/", ["x"])


def test_deeply_nested_placeholders_do_not_hit_the_recursion_limit() -> None:
    depth = 1000
    wire = '51-["a",' + "[" * depth + PH0 + "]" * depth + "]"
    result = decode_all([wire, b"z"])
    assert result is not None
    node = result.data[1]
    for _ in range(depth - 1):
        node = node[0]
    assert node == [b"z"]


# -- 2. differential tests against python-socketio (protocol 5) -----------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
keys = st.text(max_size=6).filter(lambda k: k != "_placeholder")


def _nest(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)


json_values: st.SearchStrategy[Any] = st.recursive(json_leaves, _nest, max_leaves=12)
bin_values: st.SearchStrategy[Any] = st.recursive(
    json_leaves | st.binary(max_size=6), _nest, max_leaves=12
)
namespaces = st.just("/") | st.from_regex(r"/[a-z]{1,8}", fullmatch=True)
ack_ids = st.integers(0, 2**31)
event_names = st.text(max_size=10).filter(lambda s: s not in RESERVED)
connect_errors = st.builds(
    lambda m, d: {"message": m} | d,
    st.text(max_size=10),
    st.just({}) | st.builds(lambda v: {"data": v}, json_values),
)

v5_packets = st.one_of(
    st.builds(
        Packet,
        st.just(T.CONNECT),
        namespaces,
        st.none() | st.dictionaries(keys, json_values, max_size=4),
    ),
    st.builds(Packet, st.just(T.DISCONNECT), namespaces),
    st.builds(Packet, st.just(T.CONNECT_ERROR), namespaces, connect_errors),
    st.builds(
        Packet,
        st.just(T.EVENT),
        namespaces,
        st.builds(lambda n, a: [n, *a], event_names, st.lists(bin_values, max_size=4)),
        st.none() | ack_ids,
    ),
    st.builds(Packet, st.just(T.ACK), namespaces, st.lists(bin_values, max_size=4), ack_ids),
)


def has_binary(data: Any) -> bool:
    if isinstance(data, bytes):
        return True
    if isinstance(data, list):
        return any(has_binary(x) for x in data)
    if isinstance(data, dict):
        return any(has_binary(x) for x in data.values())
    return False


def as_received(packet: Packet) -> Packet:
    """The packet a decoder returns for ``packet`` (EVENT/ACK with bytes become BINARY_*)."""
    if packet.type in (T.EVENT, T.ACK) and has_binary(packet.data):
        return Packet(T(packet.type + 3), packet.namespace, packet.data, packet.id)
    return packet


@settings(max_examples=200, deadline=None)
@given(v5_packets)
def test_our_encoding_decoded_by_python_socketio(packet: Packet) -> None:
    wire = encode(packet)
    assert isinstance(wire[0], str)
    theirs = sio_packet.Packet(encoded_packet=wire[0])
    for attachment in wire[1:]:
        theirs.add_attachment(attachment)
    expected = as_received(packet)
    assert theirs.packet_type == expected.type
    assert (theirs.namespace or "/") == expected.namespace
    assert theirs.id == expected.id
    assert theirs.data == expected.data


@settings(max_examples=200, deadline=None)
@given(v5_packets)
def test_python_socketio_encoding_decoded_by_us(packet: Packet) -> None:
    theirs = sio_packet.Packet(int(packet.type), packet.data, packet.namespace, packet.id)
    wire = theirs.encode()
    assert decode_all(wire if isinstance(wire, list) else [wire]) == as_received(packet)


v4_packets = st.one_of(
    st.builds(Packet, st.just(T.CONNECT), namespaces),
    st.builds(
        Packet,
        st.just(T.CONNECT),
        namespaces,
        st.builds(lambda q: {"query": q}, st.text(max_size=10).filter(lambda q: "," not in q)),
    ),
    st.builds(Packet, st.just(T.DISCONNECT), namespaces),
    st.builds(Packet, st.just(T.CONNECT_ERROR), namespaces, json_values),
    st.builds(
        Packet,
        st.just(T.EVENT),
        namespaces,
        st.builds(lambda n, a: [n, *a], st.text(max_size=10), st.lists(bin_values, max_size=4)),
        st.none() | ack_ids,
    ),
    st.builds(Packet, st.just(T.ACK), namespaces, st.lists(bin_values, max_size=4), ack_ids),
)


@settings(max_examples=200, deadline=None)
@given(v4_packets)
def test_v4_round_trip(packet: Packet) -> None:
    assert decode_all(encode(packet, 4), 4) == as_received(packet)


# -- 3. encode_event is encode's fast path ---------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(namespaces, st.text(max_size=10), st.lists(bin_values, max_size=4), st.none() | ack_ids)
def test_encode_event_matches_encode(
    namespace: str, event: str, args: list[Any], ack_id: int | None
) -> None:
    expected = encode(Packet(T.EVENT, namespace, [event, *args], ack_id))
    assert encode_event(namespace, event, args, ack_id) == expected
    assert encode_event(namespace, event, tuple(args), ack_id) == expected


@settings(max_examples=200, deadline=None)
@given(namespaces, st.lists(bin_values, max_size=4), ack_ids)
def test_encode_ack_matches_encode(namespace: str, args: list[Any], ack_id: int) -> None:
    expected = encode(Packet(T.ACK, namespace, args, ack_id))
    assert encode_ack(namespace, ack_id, args) == expected
    assert encode_ack(namespace, ack_id, tuple(args)) == expected


# -- 4. errors ------------------------------------------------------------------------------

BAD_INPUT: list[tuple[int, list[str | bytes]]] = [
    (5, [""]),
    (5, ["7"]),
    (5, ["9[]"]),
    (5, ['x["a"]']),
    (5, ['\u0663["a"]']),  # a non-ASCII digit
    (5, ["5"]),
    (5, ['5-["a"]']),
    (5, ['5x-["a"]']),
    (5, ['5-1-["a"]']),
    (5, ['599999999999-["a"]']),
    (5, ['511-["a"]']),  # > max_attachments
    (5, [b"\x00"]),
    (5, ['2["a"]', b"\x00"]),
    (5, [f'51-["a",{PH0}]', '2["a"]']),
    (5, ['2["a"']),
    (5, ['2["a"]x']),
    (5, ['2["a"]]']),
    (5, ["2"]),
    (5, ["2[]"]),
    (5, ["2{}"]),
    (5, ['2"a"']),
    (5, ["2[1]"]),
    (5, ["2[null]"]),
    (5, ['2[true,"foo"]']),
    (5, ['2[{"toString":"foo"}]']),
    (5, ["2/admin,"]),
    (5, ['2/admin["a"]']),  # no comma: the whole rest is the namespace, and no payload
    (5, ['2admin,["a"]']),
    (5, ['2["connect"]']),
    (5, ['2["disconnect","123"]']),
    (5, ['2["a","\ud800"]']),
    (5, ['2["a",1e400]']),
    (5, ['2["a",' + "[" * 1100 + "]" * 1100 + "]"]),
    (5, ['21234567890123456["a"]']),  # 16-digit ack id
    (5, ['2-1["a"]']),
    (5, ["3"]),
    (5, ["312"]),
    (5, ["312{}"]),
    (5, ['312"a"']),
    (5, ['3["a"]']),  # ACK without id
    (5, ['61-["a"]']),
    (5, ["0[]"]),
    (5, ['0"a"']),
    (5, ["0null"]),
    (5, ['0/admin,"invalid"']),
    (5, ["01"]),
    (5, ["1{}"]),
    (5, ["1/admin,{}"]),
    (5, ["1null"]),
    (5, ["112"]),
    (5, ["4[]"]),
    (5, ["412"]),
    (5, ['42["some","data"']),
    (5, [f'51-["a",{PH1}]', b"x"]),
    (5, ['51-["a",{"_placeholder":true,"num":-1}]', b"x"]),
    (5, ['51-["a",{"_placeholder":true,"num":"0"}]', b"x"]),
    (5, ['51-["a",{"_placeholder":true,"num":true}]', b"x"]),
    (5, ['51-["a",{"_placeholder":true,"num":0.0}]', b"x"]),
    (5, ['51-["a",{"_placeholder":true}]', b"x"]),
    (5, [f'50-["a",{PH0}]']),
    (4, ["0{}"]),
    (4, ['0/admin,{"token":"1"}']),
    (4, ["1/admin,{}"]),
    (4, ["2[]"]),
    (4, ["3[]"]),
]


@pytest.mark.parametrize(("protocol", "wire"), BAD_INPUT)
def test_bad_input(protocol: int, wire: list[str | bytes]) -> None:
    decoder = Decoder(protocol)
    *head, last = wire
    for message in head:  # accepted: a complete packet, or None while attachments are due
        decoder.feed(message)
    with pytest.raises(RemoteProtocolError) as info:
        decoder.feed(last)
    assert 0 < len(str(info.value)) < 80


TOKENS = [*"0123456-/,[]{}: \\", "1-", "/admin", "?q=1", '"a"', "12", "null", "true"]
TOKENS += ['"_placeholder"', '"num"', PH0, PH1, "\ud800"]
messages = st.one_of(
    st.lists(st.sampled_from(TOKENS), max_size=12).map("".join),
    st.text(max_size=20),
    st.binary(max_size=4),
)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([4, 5]), st.lists(messages, min_size=1, max_size=6))
def test_fuzz_decoder_raises_only_remote_protocol_error(
    protocol: int, wire: list[str | bytes]
) -> None:
    decoder = Decoder(protocol)
    for message in wire:
        try:
            result = decoder.feed(message)
        except RemoteProtocolError:
            return
        assert result is None or isinstance(result, Packet)


@pytest.mark.parametrize(
    ("protocol", "packet"),
    [
        (5, Packet(9, "/", None)),  # type: ignore[arg-type]
        (5, Packet(T.EVENT, "/", [])),
        (5, Packet(T.EVENT, "/", [1, "a"])),
        (5, Packet(T.EVENT, "/", "a")),
        (5, Packet(T.EVENT, "/", None)),
        (5, Packet(T.EVENT, "admin", ["a"])),
        (5, Packet(T.EVENT, "/a,b", ["a"])),
        (5, Packet(T.EVENT, "/", ["a"], -1)),
        (5, Packet(T.EVENT, "/", ["a"], 10**15)),
        (5, Packet(T.EVENT, "/", ["a"], True)),
        (5, Packet(T.EVENT, "/", ["a"], "1")),  # type: ignore[arg-type]
        (5, Packet(T.EVENT, "/", ["a", 2**64])),
        (5, Packet(T.EVENT, "/", ["a", {1, 2}])),
        (5, Packet(T.EVENT, "/", ["a", {1: "x"}])),
        (5, Packet(T.EVENT, "/", ["a", {1: b"x"}])),
        (5, Packet(T.EVENT, "/", ["a", "\ud800", b"x"])),
        (5, Packet(T.ACK, "/", "a", 1)),
        (5, Packet(T.ACK, "/", ["a"])),
        (5, Packet(T.DISCONNECT, "/", {})),
        (5, Packet(T.CONNECT, "/", None, 1)),
        (5, Packet(T.CONNECT, "/", ["a"])),
        (5, Packet(T.CONNECT, "/", {"a": b"x"})),
        (5, Packet(T.CONNECT_ERROR, "/", "Not authorized")),
        (5, Packet(T.CONNECT_ERROR, "/", None)),
        (4, Packet(T.CONNECT, "/", {"token": "1"})),
        (4, Packet(T.CONNECT, "/", {"query": "a,b"})),
        (4, Packet(T.CONNECT, "/", {"query": 1})),
        (4, Packet(T.CONNECT, "/a?b", {"query": "c"})),
        (4, Packet(T.CONNECT_ERROR, "/", b"x")),
    ],
)
def test_encode_rejects(protocol: int, packet: Packet) -> None:
    with pytest.raises(LocalProtocolError):
        encode(packet, protocol)


def test_encode_rejects_cycles_and_deep_nesting() -> None:
    cyclic: list[Any] = ["a", b"x"]
    cyclic.append(cyclic)
    deep: list[Any] = [b"x"]
    for _ in range(300):
        deep = [deep]
    for data in (cyclic, ["a", deep]):
        with pytest.raises(LocalProtocolError):
            encode(Packet(T.EVENT, "/", data))
        with pytest.raises(LocalProtocolError):
            encode_event("/", "a", data[1:])


@pytest.mark.parametrize(
    ("namespace", "event", "args", "ack_id"),
    [
        ("admin", "a", [], None),
        ("/", 1, [], None),
        ("/", "a", [], -1),
        ("/", "a", [object()], None),
    ],
)
def test_encode_event_rejects(
    namespace: str, event: Any, args: list[Any], ack_id: int | None
) -> None:
    with pytest.raises(LocalProtocolError):
        encode_event(namespace, event, args, ack_id)


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        Decoder(3)
    with pytest.raises(ValueError):
        encode(Packet(T.CONNECT), 6)
    with pytest.raises(TypeError):
        Decoder().feed(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Decoder(max_attachment_bytes=-1)


def test_one_packets_attachments_are_bounded_in_total() -> None:
    # Each attachment is within a message's bound; together they are not: a
    # connection holds no more than max_attachment_bytes for an unfinished packet.
    decoder = Decoder(5, max_attachments=10, max_attachment_bytes=1000)
    header = '53-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},'
    assert decoder.feed(header + '{"_placeholder":true,"num":2}]') is None
    assert decoder.feed(b"x" * 400) is None
    assert decoder.feed(b"x" * 400) is None
    with pytest.raises(PayloadTooLarge):
        decoder.feed(b"x" * 400)


def test_the_attachment_bound_is_per_packet() -> None:
    decoder = Decoder(5, max_attachment_bytes=1000)
    for _ in range(3):  # packet after packet, each within the bound
        assert decoder.feed('51-["up",{"_placeholder":true,"num":0}]') is None
        packet = decoder.feed(b"x" * 1000)
        assert packet is not None and packet.data == ["up", b"x" * 1000]


def test_encode_ack_takes_any_sequence_of_args() -> None:
    """orjson writes a list or a tuple itself; other sequences (and a tuple
    subclass it refuses) go the slower way, to the same text."""
    from collections import deque
    from typing import NamedTuple

    class Pair(NamedTuple):
        a: int
        b: bytes

    assert encode_ack("/", 1, deque([1, "x"])) == ['31[1,"x"]']
    assert encode_ack("/", 1, Pair(1, b"z")) == encode_ack("/", 1, [1, b"z"])
    text = encode_ack("/", 1, Pair(1, b"z"))[0]
    assert isinstance(text, str) and text.startswith("61-1[1,")


# -- GOSF's response, as an event and as the ack (the fast path) -----------------------------


def _both(namespace: str, event: str, data: Any, ack_id: int | None) -> tuple[Any, Any]:
    """What encode_event and encode_ack give, or the error each raises."""

    def outcome(encode_one: Any) -> Any:
        try:
            return encode_one()
        except LocalProtocolError as exc:
            return type(exc)

    event_parts = outcome(lambda: encode_event(namespace, event, (data,)))
    ack_parts = None if ack_id is None else outcome(lambda: encode_ack(namespace, ack_id, (data,)))
    return event_parts, ack_parts


@settings(max_examples=300, deadline=None)
@given(namespaces, event_names, bin_values, st.none() | ack_ids)
def test_event_and_ack_encode_as_the_two_shortcuts(
    namespace: str, event: str, data: Any, ack_id: int | None
) -> None:
    """Serialised once, the same texts as encode_event and encode_ack; with
    bytes, the same attachments (it falls back to the two)."""
    assert encode_event_and_ack(namespace, event, data, ack_id) == _both(
        namespace, event, data, ack_id
    )


@pytest.mark.parametrize(
    ("namespace", "event", "data", "ack_id"),
    [
        ("/", 'say "hi", \\ \n\u2028 é', {"text": "a,b"}, 7),  # a name JSON must escape
        ("/chat", "echo", {"blob": b"\x00\x01", "n": [1, b"x"]}, 3),  # attachments
        ("/", "echo", None, 0),
        ("/", "echo", [1, {"a": []}], None),
    ],
)
def test_event_and_ack_edges(namespace: str, event: str, data: Any, ack_id: int | None) -> None:
    assert encode_event_and_ack(namespace, event, data, ack_id) == _both(
        namespace, event, data, ack_id
    )


@pytest.mark.parametrize(
    ("namespace", "event", "data", "ack_id"),
    [
        ("/", "echo", {1, 2}, 1),  # JSON cannot carry a set
        ("/", 3, {}, 1),  # not a name
        ("chat", "echo", {}, 1),  # not a namespace
        ("/", "echo", {}, -1),  # not an ack id
        ("/", "echo", {}, 2**53),
    ],
)
def test_event_and_ack_refuse_what_the_shortcuts_refuse(
    namespace: str, event: Any, data: Any, ack_id: int
) -> None:
    with pytest.raises(LocalProtocolError):
        encode_event_and_ack(namespace, event, data, ack_id)
