"""Typed, validated options of the protocol server (Engine.IO + Socket.IO).

Everything that tunes the server lives in one pydantic model,
:class:`ServerOptions`, validated once when the server is built: a wrong type
or an unknown key is a :class:`pydantic.ValidationError` at start, never a
crash later.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ("Recovery", "ServerOptions")


class Recovery(BaseModel):
    """Connection state recovery (Socket.IO 5 clients only; docs/guide.md).

    A client that drops unexpectedly and reconnects within
    ``max_disconnection_duration`` gets back its sid, rooms and state, and
    every event it missed. What it costs in memory is bounded per namespace:
    at most ``max_packets`` events and ``max_bytes`` of their encodings in the
    log, and ``max_sessions`` parked sessions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_disconnection_duration: float = Field(default=120.0, gt=0)
    """Seconds a dropped session is kept, and an event kept in the log."""

    skip_connect_handlers: bool = True
    """Restore a session without running the connect handlers (Node's
    ``skipMiddlewares``); off: they run again, and see ``socket.recovered``."""

    max_packets: int = Field(default=10_000, ge=1)
    """Events kept in one namespace's log; older ones are dropped first."""

    max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Bytes of encoded events kept in one namespace's log."""

    max_sessions: int = Field(default=10_000, ge=1)
    """Sessions parked at once in one namespace; the oldest goes first."""


class ServerOptions(BaseModel):
    """Options of the protocol server (Engine.IO + Socket.IO).

    Times are in seconds, kept to the millisecond: the Engine.IO handshake
    announces them in milliseconds and the server uses exactly what it
    announced.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = "/socket.io"
    """URL path the server answers on (the stock clients' default)."""

    ping_interval: float = Field(default=25.0, gt=0)
    """Seconds between heartbeats."""

    ping_timeout: float = Field(default=20.0, gt=0)
    """Seconds to wait for the heartbeat answer before closing the session."""

    max_payload: int = Field(default=1_000_000, ge=1024)
    """Largest HTTP body or websocket message accepted, in bytes."""

    transports: tuple[Literal["polling", "websocket"], ...] = ("polling", "websocket")
    """Transports clients may use; the first request of a session picks one."""

    allow_eio3: bool = True
    """Accept Engine.IO 3 / Socket.IO 4 clients (socket.io JS 2.x)."""

    cors_allowed_origins: list[str] | Literal["*"] | None = None
    """Origins allowed to talk to the server from a browser.

    Requests without an ``Origin`` header (not from a browser) and same-origin
    requests (the ``Origin`` matches the ``Host``: the server's own pages)
    always pass. ``None`` (the default) allows no other origin; ``"*"``
    allows every origin; a list allows those origins too (e.g.
    ``["https://example.com"]``). A refused origin gets ``403`` with no CORS
    headers, before anything else of the request is looked at, and is logged
    at WARNING (once per origin).
    """

    cors_credentials: bool = True
    """Send ``Access-Control-Allow-Credentials: true`` to allowed origins."""

    valid_hostnames: list[str] | None = None
    """Host names the server answers (``*`` wildcards as in certificates; the
    port does not count): a request whose ``Host`` is not one of them gets
    ``421``, on every path. ``None`` (the default) answers any ``Host``."""

    hostnames_certificate: str | None = None
    """A PEM certificate whose names are the valid host names, when
    ``valid_hostnames`` is not given; read once, when the server is built."""

    max_outbound_buffer: int = Field(default=1024, ge=1)
    """Packets queued for one client before it counts as a slow consumer.

    A handler's ``emit`` waits for room when the queue is full (backpressure);
    a broadcast never waits: a client whose queue is full is disconnected.
    """

    write_timeout: float | None = Field(default=None, gt=0)
    """Seconds a client's outbound queue may stay stuck (something to send,
    nothing written) before the client is disconnected as a slow consumer.

    ``None`` (the default): ``ping_interval + ping_timeout``, the time a
    client that stopped reading would take to fail its heartbeat, were it
    not still answering pings. Checked at each heartbeat, so a stuck client
    goes within ``write_timeout + ping_interval``.
    """

    max_concurrent_handlers: int = Field(default=64, ge=1)
    """Event handlers one connection may run at once before its reader waits."""

    connect_timeout: float = Field(default=45.0, gt=0)
    """Seconds a new Engine.IO session has to connect a namespace."""

    upgrade_handover: float = Field(default=0.3, ge=0, le=5)
    """Seconds a new long-polling session of a cluster (a broker other than
    the local one) waits for its websocket upgrade before it opens.

    Meanwhile its Socket.IO CONNECT is held: when the upgrade reaches another
    process, the session moves there (same sid) and is served directly,
    not relayed through the broker for its whole life. A client that does
    not upgrade within this time connects then, and a later upgrade on
    another process is relayed. ``0`` turns the hold off (every upgrade
    that lands elsewhere is relayed). See "No sticky sessions" in
    docs/deployment.md.
    """

    recovery: Recovery | None = None
    """Connection state recovery; ``None`` (the default): off."""

    parser: Literal["json", "msgpack"] = "json"
    """The Socket.IO codec of every client (``gosf.protocol.parser``): JSON
    text packets, or ``msgpack`` (npm ``socket.io-msgpack-parser``)."""

    @field_validator("ping_interval", "ping_timeout", "connect_timeout")
    @classmethod
    def _whole_milliseconds(cls, value: float) -> float:
        # The handshake announces milliseconds: use exactly what is announced.
        return round(value * 1000) / 1000

    @property
    def stall_timeout(self) -> float:
        """:attr:`write_timeout`, or its default."""
        if self.write_timeout is not None:
            return self.write_timeout
        return self.ping_interval + self.ping_timeout

    @property
    def ping_interval_ms(self) -> int:
        """``ping_interval`` in milliseconds, as the handshake announces it."""
        return round(self.ping_interval * 1000)

    @property
    def ping_timeout_ms(self) -> int:
        """``ping_timeout`` in milliseconds, as the handshake announces it."""
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
