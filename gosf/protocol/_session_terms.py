"""The words of the Engine.IO session machine (``session.py``): its states,
its transports, why a session ends, what it answers a request with, and
its configuration. Imported from :mod:`gosf.protocol.session`."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = (
    "CloseReason",
    "PollVerdict",
    "SessionConfig",
    "State",
    "Transport",
    "WebSocketVerdict",
)


class State(enum.Enum):
    OPEN = "open"
    """One transport carries the session."""
    UPGRADING = "upgrading"
    """Polling carries the session; a websocket has asked to take it over."""
    CLOSING = "closing"
    """The server closed it gracefully: the last packets are still to be taken."""
    CLOSED = "closed"
    """Gone: nothing more is accepted or sent."""


class Transport(enum.StrEnum):
    """What carries a session (a :class:`str`: ``"polling"`` or ``"websocket"``)."""

    POLLING = "polling"
    WEBSOCKET = "websocket"


class CloseReason(enum.StrEnum):
    """Why a session ended: one reason each, the way the layer above is told.

    Each member is the string gosf has always given (a :class:`str`), so code
    that compares a reason with ``"ping timeout"`` or logs it keeps working;
    the words are the reference server's where it has the same reason.
    """

    TRANSPORT_CLOSE = "transport close"
    """The connection carrying the session went away."""
    TRANSPORT_ERROR = "transport error"
    """Writing to the client failed."""
    CLIENT_CLOSE = "client closed"
    """The client sent a CLOSE packet."""
    PING_TIMEOUT = "ping timeout"
    """The heartbeat went unanswered."""
    PARSE_ERROR = "parse error"
    """The client sent something that does not decode."""
    PROTOCOL_ERROR = "protocol error"
    """The client sent a packet the protocol does not allow here."""
    PAYLOAD_TOO_LARGE = "payload too large"
    """The client sent more than ``max_payload`` at once."""
    OVERLAPPING_GET = "overlapping GET requests"
    """Two long-polling GETs at once: a broken client."""
    OVERLAPPING_POST = "overlapping POST requests"
    """Two long-polling POSTs at once: a broken client."""
    SLOW_CLIENT = "slow client"
    """The outbound queue overflowed, or nothing was written for ``write_timeout``."""
    SERVER_DISCONNECT = "server disconnect"
    """The application disconnected the client."""
    SERVER_SHUTTING_DOWN = "server shutting down"
    """The server is stopping."""
    CONNECT_TIMEOUT = "connect timeout"
    """The client joined no namespace within ``connect_timeout``."""
    RELAY_OVERFLOW = "relay overflow"
    """The process relaying this session's websocket sent more frames than its
    window allows (a cluster)."""
    HANDED_OVER = "handed over"
    """A held session moved to the process its websocket reached (a cluster):
    it goes on there, with the same sid; the layer above never saw it here."""


class PollVerdict(enum.Enum):
    """What to do with a long-polling request for an existing session."""

    SERVE = "serve"
    UNKNOWN_SID = "unknown sid"
    """The session is gone: answer 400 "Session ID unknown"."""
    WRONG_TRANSPORT = "wrong transport"
    """A websocket carries the session: answer 400 "Bad request"."""
    OVERLAP = "overlap"
    """A second GET (or POST) at once: answer 400; the session is now closed."""


class WebSocketVerdict(enum.Enum):
    """What to do with a websocket request for an existing session."""

    PROBE = "probe"
    """Accept it and feed its packets to :meth:`Session.probe`."""
    ACCEPT_AND_CLOSE = "accept and close"
    """Accept it and close it at once; the session goes on as it was."""
    UNKNOWN_SID = "unknown sid"
    """The session is gone: refuse it (400 "Session ID unknown")."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """The timing and bounds of every session of a server (seconds, packets)."""

    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    upgrade_timeout: float = 10.0
    upgrade_grace: float = 0.1
    """How long a GET that arrives after the probe waits for the ``5``."""
    max_buffer: int = 1024
    max_poll_packets: int = 16
    """Most packets one long-polling GET response carries; the rest wait for the next GET."""
    write_timeout: float = 45.0
    """How long packets may wait for the client with nothing written."""
    linger: float = 5.0
    """How long a gracefully closed session waits for its client to take the CLOSE."""
    hold: float = 0.0
    """How long a session begun held keeps its messages back (see ``Session``'s rules)."""
