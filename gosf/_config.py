"""Typed, validated server options.

Everything that tunes the Engine.IO/Socket.IO server lives in one pydantic
model, validated once when the server is built: a wrong type or an unknown key
is a :class:`pydantic.ValidationError` at start, never a crash later.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ("ServerOptions",)


class ServerOptions(BaseModel):
    """Options of the protocol server (Engine.IO + Socket.IO).

    Times are in seconds, kept to the millisecond: the Engine.IO handshake
    announces them in milliseconds and the server uses exactly what it
    announced.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = "/socket.io"
    """URL path the server answers on (the stock clients' default)."""

    ping_interval: float = Field(25.0, gt=0)
    """Seconds between heartbeats."""

    ping_timeout: float = Field(20.0, gt=0)
    """Seconds to wait for the heartbeat answer before closing the session."""

    max_payload: int = Field(1_000_000, ge=1024)
    """Largest HTTP body or websocket message accepted, in bytes."""

    transports: tuple[Literal["polling", "websocket"], ...] = ("polling", "websocket")
    """Transports clients may use; the first request of a session picks one."""

    allow_eio3: bool = True
    """Accept Engine.IO 3 / Socket.IO 4 clients (socket.io JS 2.x)."""

    cors_allowed_origins: list[str] | Literal["*"] | None = None
    """Origins allowed to talk to the server from a browser.

    ``None`` (the default) allows requests without an ``Origin`` header and
    same-origin requests (the ``Origin`` matches the ``Host``); ``"*"`` allows
    every origin; a list allows exactly those origins (e.g.
    ``["https://example.com"]``). A disallowed origin gets ``403``.
    """

    cors_credentials: bool = True
    """Send ``Access-Control-Allow-Credentials: true`` to allowed origins."""

    max_outbound_buffer: int = Field(1024, ge=1)
    """Packets queued for one client before it counts as a slow consumer.

    A handler's ``emit`` waits for room when the queue is full (backpressure);
    a broadcast never waits: a client whose queue is full is disconnected.
    """

    max_concurrent_handlers: int = Field(64, ge=1)
    """Event handlers one connection may run at once before its reader waits."""

    connect_timeout: float = Field(45.0, gt=0)
    """Seconds a new Engine.IO session has to connect a namespace."""

    @field_validator("ping_interval", "ping_timeout", "connect_timeout")
    @classmethod
    def _whole_milliseconds(cls, value: float) -> float:
        # The handshake announces milliseconds: use exactly what is announced.
        return round(value * 1000) / 1000

    @property
    def ping_interval_ms(self) -> int:
        return round(self.ping_interval * 1000)

    @property
    def ping_timeout_ms(self) -> int:
        return round(self.ping_timeout * 1000)

    @field_validator("path")
    @classmethod
    def _normalise_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with '/'")
        return value.rstrip("/") or "/"

    @field_validator("transports")
    @classmethod
    def _non_empty(
        cls, value: tuple[Literal["polling", "websocket"], ...]
    ) -> tuple[Literal["polling", "websocket"], ...]:
        if not value:
            raise ValueError("at least one transport is required")
        return value
