"""The cluster queries of connection state recovery: one process asks the
others for a session parked there (``gosf._socketio.handover``), and the one
that held it hands it over with what its client missed.

    {"op": "take-session", ...}   → {"found": true, "sid": ..., "rooms": [...], ...}
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ._query_base import (
    Query,
    QueryAnswer,
    count_field,
    mapping_field,
    names_field,
    string_field,
)

__all__ = ("HandedSession", "TakeSession")


def _parts_json(parts: tuple[str | bytes, ...]) -> list[Any]:
    return [
        part if isinstance(part, str) else {"b": base64.b64encode(part).decode("ascii")}
        for part in parts
    ]


def _parts(value: object) -> tuple[str | bytes, ...]:
    """Parts written by :func:`_parts_json`.

    Raises:
        ValueError: ``value`` is not such a list.
    """
    if not isinstance(value, list) or not value:
        raise ValueError(f"parts must be a non-empty list, not {value!r}")
    parts: list[str | bytes] = []
    for item in value:
        if isinstance(item, str):
            parts.append(item)
        elif isinstance(item, dict) and isinstance(item.get("b"), str):
            try:
                parts.append(base64.b64decode(item["b"], validate=True))
            except binascii.Error as exc:
                raise ValueError(f"bad binary part: {exc}") from None
        else:
            raise ValueError(f"a part must be a string or {{'b': base64}}, not {item!r}")
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class HandedSession(QueryAnswer):
    """A parked session handed over by the process that held it (``found``
    false: not this one), with what it missed there after the client's
    offset (each event's encoded parts, in order) and ``latest``, the
    number of the newest broadcast of each origin its log had
    (``gosf._socketio.handover``)."""

    found: bool
    sid: str = ""
    rooms: tuple[str, ...] = ()
    state: dict[str, Any] | None = None
    missed: tuple[tuple[str | bytes, ...], ...] = ()
    latest: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        if not self.found:
            return {"found": False}
        return {
            "found": True,
            "sid": self.sid,
            "rooms": list(self.rooms),
            "state": self.state or {},
            "missed": [_parts_json(parts) for parts in self.missed],
            "latest": self.latest or {},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        found = obj.get("found")
        if not isinstance(found, bool):
            raise ValueError(f"'found' must be a boolean, not {found!r}")
        if not found:
            return cls(False)
        missed = obj.get("missed", [])
        if not isinstance(missed, list):
            raise ValueError(f"'missed' must be a list, not {missed!r}")
        latest = mapping_field(obj, "latest")
        return cls(
            True,
            string_field(obj, "sid"),
            names_field(obj, "rooms"),
            mapping_field(obj, "state"),
            tuple(_parts(parts) for parts in missed),
            {origin: count_field(n, "an origin's number") for origin, n in latest.items()},
        )


@dataclass(frozen=True, slots=True)
class TakeSession(Query[HandedSession]):
    """Hand over the session parked under ``pid``, and what it missed after
    ``offset``, to the process asking: a client is back there.

    On the wire::

        {"op": "take-session", "n": "/", "pid": "...", "off": "..." | null}
                        → {"found": true, "sid": ..., "rooms": [...], "state": {...},
                           "missed": [["<text>", {"b": "<base64>"}]], "latest": {"3fa9c1": 41}}
    """

    namespace: str
    pid: str
    offset: str | None = None
    ops: ClassVar[tuple[str, ...]] = ("take-session",)

    @property
    def answer_type(self) -> type[HandedSession]:
        return HandedSession

    def to_json(self) -> dict[str, Any]:
        return {"op": "take-session", "n": self.namespace, "pid": self.pid, "off": self.offset}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        offset = None if obj.get("off") is None else string_field(obj, "off")
        return cls(string_field(obj, "n"), string_field(obj, "pid"), offset)
