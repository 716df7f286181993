"""How an ack to a broadcast of another process travels back to it: one direct
message (``Broker.send_to``) per ack, or per recipient gone, written by
:func:`encode_answer` and read by :func:`decode_answer` (``acks.py`` has the
collection it feeds).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

import orjson

from ..protocol.errors import RemoteProtocolError
from ..protocol.parser import JSON_PARSER, PacketDecoder, Parser
from ..protocol.socketio import Decoder

__all__ = ("ACK_MESSAGE", "decode_answer", "decode_packet", "encode_answer")

ACK_MESSAGE = b"gosf-ack\n"
"""How a direct message carrying an ack starts (the others are forwarded requests)."""


def encode_answer(
    parser: Parser, broadcast: str, sid: str, namespace: str, args: list[Any] | None
) -> bytes:
    """The direct message that carries ``sid``'s ack (``None``: its disconnection)
    of the broadcast ``broadcast`` to the origin, the ack encoded by ``parser``
    (the cluster's), in JSON: ``{"b": id, "s": sid, "p": text | null, "att":
    [base64...]}`` or ``{"b": id, "s": sid, "gone": true}``.

    Raises:
        LocalProtocolError: ``parser`` cannot carry ``args``.
    """
    head: dict[str, Any] = {"b": broadcast, "s": sid}
    if args is None:
        head["gone"] = True
    else:
        parts = parser.encode_ack(namespace, 0, args)
        first = parts[0]
        head["p"] = first if isinstance(first, str) else None
        binary = parts[1:] if isinstance(first, str) else parts
        head["att"] = [
            base64.b64encode(part).decode("ascii") for part in binary if isinstance(part, bytes)
        ]
    return ACK_MESSAGE + orjson.dumps(head)


def decode_packet(parser: Parser, parts: Iterable[str | bytes]) -> list[Any]:
    """The data of the one packet ``parts`` encode (by ``parser``).

    Raises:
        ValueError: they do not encode one whole packet.
    """
    parts = list(parts)
    decoder: PacketDecoder
    if parser is JSON_PARSER:
        # A client's packet is held to a few attachments; one that a process of
        # the cluster encoded is not (the args of a broadcast may have more).
        decoder = Decoder(5, max_attachments=len(parts))
    else:
        decoder = parser.decoder(5, max_attachment_bytes=None)
    packet = None
    for part in parts:
        try:
            packet = decoder.feed(part)
        except RemoteProtocolError as exc:
            raise ValueError(str(exc)) from None
    if packet is None:
        raise ValueError("an incomplete packet")
    return list(packet.data)


def decode_answer(parser: Parser, data: bytes) -> tuple[str, str, list[Any] | None]:
    """``(broadcast id, sid, args or None)`` of a message of :func:`encode_answer`.

    Raises:
        ValueError: ``data`` is not such a message.
    """
    try:
        head = orjson.loads(data[len(ACK_MESSAGE) :])
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"bad ack message: {exc}") from None
    if not isinstance(head, dict):
        raise ValueError("an ack message is an object")
    broadcast, sid = head.get("b"), head.get("s")
    if not isinstance(broadcast, str) or not isinstance(sid, str):
        raise ValueError("an ack message names its broadcast and its sid")
    if head.get("gone") is True:
        return broadcast, sid, None
    text, attachments = head.get("p"), head.get("att", [])
    if not isinstance(text, str | None) or not isinstance(attachments, list):
        raise ValueError("an ack message carries a packet")
    try:
        binary = [base64.b64decode(item, validate=True) for item in attachments]
    except (binascii.Error, TypeError) as exc:
        raise ValueError(f"bad attachment: {exc}") from None
    return broadcast, sid, decode_packet(parser, [*([] if text is None else [text]), *binary])
