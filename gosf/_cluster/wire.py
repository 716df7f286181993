"""The messages processes exchange to forward requests for each other's sessions.

Pure functions, no I/O. One message is ``header b"\\n" body``: the header a
JSON object (orjson never writes a raw newline, so the first one ends it)
holding ``"v"`` (this version), ``"k"`` (the kind) and ``"r"`` (the request
or relay id); the body is bytes as they are. The kinds and their fields are
described in :mod:`._forward` (polling requests) and :mod:`._relay`
(websocket relays).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ("ASKER_KINDS", "KINDS", "VERSION", "decode_forward", "encode_forward")

VERSION = 1

ASKER_KINDS = frozenset({"get", "post", "cancel", "ws-open", "ws-in", "ws-gone"})
"""Kinds a process sends to the owner of a session (they name the sender: ``"f"``)."""
KINDS = ASKER_KINDS | {"reply", "ws-out", "ws-close", "ws-credit", "ws-keep", "ws-adopt"}


def encode_forward(head: dict[str, Any], body: bytes = b"") -> bytes:
    """One forwarding message (the version is added to ``head``)."""
    return b"".join((orjson.dumps({"v": VERSION, **head}), b"\n", body))


def decode_forward(data: bytes) -> tuple[dict[str, Any], bytes]:
    """``(header, body)`` of a forwarding message.

    Raises:
        ValueError: ``data`` is not a forwarding message of this version.
    """
    newline = data.find(b"\n")
    if newline < 0:
        raise ValueError("no header")
    try:
        head = orjson.loads(data[:newline])
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"bad header: {exc}") from None
    if not isinstance(head, dict) or head.get("v") != VERSION:
        raise ValueError("not a header of this version")
    kind, rid = head.get("k"), head.get("r")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if not isinstance(rid, int) or isinstance(rid, bool):
        raise ValueError("the request id must be an integer")
    if kind in ASKER_KINDS and not isinstance(head.get("f"), str):
        raise ValueError("the asker's node id must be a string")
    if kind in ("get", "post", "ws-open") and not isinstance(head.get("s"), str):
        raise ValueError("the sid must be a string")
    if kind == "reply" and not (isinstance(head.get("st"), int) and isinstance(head.get("c"), str)):
        raise ValueError("a reply needs a status and a content type")
    if head.get("c") is not None and not isinstance(head.get("c"), str):
        raise ValueError("the content type must be a string or null")
    return head, data[newline + 1 :]
