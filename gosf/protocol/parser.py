"""Which codec a server speaks: Socket.IO's JSON text packets, or msgpack.

A server picks its :class:`Parser` once (``SocketIOServer(parser="msgpack")``,
the GOSF config key ``parser``): every client of that server, and every
process of its cluster, uses the same one (npm clients pass the matching
``parser`` option). Broadcasts travel between processes encoded, so the
processes of a cluster and their emitters must agree on it.

A parser encodes packets and makes a decoder per connection;
:data:`JSON_PARSER` is :mod:`.socketio`, :data:`MSGPACK_PARSER`
:mod:`.socketio_msgpack`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal, Protocol

from . import socketio, socketio_msgpack
from .socketio import Packet

__all__ = (
    "JSON_PARSER",
    "MSGPACK_PARSER",
    "JSONParser",
    "MsgpackParser",
    "PacketDecoder",
    "Parser",
    "ParserName",
    "parser_named",
)

ParserName = Literal["json", "msgpack"]
"""The parsers a configuration names."""


class PacketDecoder(Protocol):
    """One connection's decoder (see :class:`.socketio.Decoder`)."""

    @property
    def pending_attachments(self) -> int:
        """How many binary messages it still waits for."""
        ...

    def feed(self, data: str | bytes) -> Packet | None:
        """One message: a complete packet, or ``None`` while attachments are due.

        Raises:
            RemoteProtocolError: the message is malformed or unexpected.
        """
        ...


class Parser(Protocol):
    """A Socket.IO codec (the functions of :mod:`.socketio`, the JSON one)."""

    @property
    def name(self) -> str: ...

    def encode(self, packet: Packet, protocol: int = 5) -> list[str | bytes]: ...

    def encode_event(
        self, namespace: str, event: str, args: Sequence[Any], ack_id: int | None = None
    ) -> list[str | bytes]: ...

    def encode_ack(self, namespace: str, ack_id: int, args: Sequence[Any]) -> list[str | bytes]: ...

    def encode_event_and_ack(
        self, namespace: str, event: str, data: Any, ack_id: int | None
    ) -> tuple[list[str | bytes], list[str | bytes] | None]:
        """``data`` as an EVENT ``event`` and (``ack_id`` given) as that ACK:
        what :meth:`encode_event` and :meth:`encode_ack` give. A parser
        without it gets it from those two (:func:`parser_named`)."""
        ...

    def decoder(self, protocol: int, *, max_attachment_bytes: int | None) -> PacketDecoder: ...


class JSONParser:
    """The default parser: text packets, binary data as attachments (:mod:`.socketio`)."""

    name: Final = "json"
    encode = staticmethod(socketio.encode)
    encode_event = staticmethod(socketio.encode_event)
    encode_ack = staticmethod(socketio.encode_ack)
    encode_event_and_ack = staticmethod(socketio.encode_event_and_ack)

    def decoder(self, protocol: int, *, max_attachment_bytes: int | None) -> PacketDecoder:
        return socketio.Decoder(protocol, max_attachment_bytes=max_attachment_bytes)

    def __repr__(self) -> str:
        return "JSON_PARSER"


class MsgpackParser:
    """npm ``socket.io-msgpack-parser``'s codec: one binary message per packet
    (:mod:`.socketio_msgpack`; needs ``gosf[msgpack]``)."""

    name: Final = "msgpack"
    encode = staticmethod(socketio_msgpack.encode)
    encode_event = staticmethod(socketio_msgpack.encode_event)
    encode_ack = staticmethod(socketio_msgpack.encode_ack)
    encode_event_and_ack = staticmethod(socketio_msgpack.encode_event_and_ack)

    def decoder(self, protocol: int, *, max_attachment_bytes: int | None) -> PacketDecoder:
        return socketio_msgpack.MsgpackDecoder(protocol, max_attachment_bytes=max_attachment_bytes)

    def __repr__(self) -> str:
        return "MSGPACK_PARSER"


JSON_PARSER: Final = JSONParser()
MSGPACK_PARSER: Final = MsgpackParser()


class _Paired:
    """A parser of one's own without ``encode_event_and_ack`` (written before
    :class:`Parser` had it), given one made of its two encoders."""

    def __init__(self, parser: Parser) -> None:
        self.parser = parser

    @property
    def name(self) -> str:
        return self.parser.name

    def encode(self, packet: Packet, protocol: int = 5) -> list[str | bytes]:
        return self.parser.encode(packet, protocol)

    def encode_event(
        self, namespace: str, event: str, args: Sequence[Any], ack_id: int | None = None
    ) -> list[str | bytes]:
        return self.parser.encode_event(namespace, event, args, ack_id)

    def encode_ack(self, namespace: str, ack_id: int, args: Sequence[Any]) -> list[str | bytes]:
        return self.parser.encode_ack(namespace, ack_id, args)

    def encode_event_and_ack(
        self, namespace: str, event: str, data: Any, ack_id: int | None
    ) -> tuple[list[str | bytes], list[str | bytes] | None]:
        parts = self.parser.encode_event(namespace, event, (data,))
        return parts, None if ack_id is None else self.parser.encode_ack(namespace, ack_id, (data,))

    def decoder(self, protocol: int, *, max_attachment_bytes: int | None) -> PacketDecoder:
        return self.parser.decoder(protocol, max_attachment_bytes=max_attachment_bytes)

    def __repr__(self) -> str:
        return repr(self.parser)


def parser_named(parser: ParserName | Parser) -> Parser:
    """The parser ``"json"`` or ``"msgpack"`` names (a :class:`Parser` as it is,
    or given ``encode_event_and_ack`` if it has none).

    Raises:
        ValueError: an unknown name.
    """
    if not isinstance(parser, str):
        if not hasattr(parser, "encode_event_and_ack"):
            return _Paired(parser)
        return parser
    if parser == "json":
        return JSON_PARSER
    if parser == "msgpack":
        socketio_msgpack._msgpack()  # ImportError now, not at the first packet
        return MSGPACK_PARSER
    raise ValueError(f"unknown parser {parser!r}: 'json' or 'msgpack'")
