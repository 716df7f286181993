"""One Engine.IO session, server side, as a sans-IO state machine.

Two rules, as in h11's ``_state.py``:

1. Everything that changes a session's state lives in this module: the
   heartbeat, the probe and upgrade, overlapping polls, the outbound queue's
   bounds, closing and lingering. The driver (the anyio layer) does I/O and
   reports what happened; it never decides.
2. Nothing here does I/O or reads a clock: every call that depends on time
   takes ``now``, and :attr:`Session.deadline` says when the driver must call
   :meth:`Session.tick` next.

How a session lives::

    OPEN ──probe on a websocket──▶ UPGRADING ──UPGRADE (5)──▶ OPEN (websocket)
      ▲                                │
      └──── upgrade timeout, bad probe ┘
    OPEN/UPGRADING ──server closes gracefully──▶ CLOSING ──last packets taken──▶ CLOSED
    any ──ping timeout, client CLOSE, transport gone, bad input, slow client──▶ CLOSED

The rules the reference server (``socketio/engine.io``, ``lib/socket.ts``,
``lib/transports/polling.ts``, ``lib/server.ts``) keeps, and this machine with it:

* Heartbeat, protocol 4: the server pings ``ping_interval`` after the open
  packet and after each pong; no pong within ``ping_timeout`` closes the
  session. A client ping, or a pong nobody asked for, is a protocol error
  (the reference: "invalid heartbeat direction"); gosf ignores a late pong.
* Heartbeat, protocol 3: the client pings; the server answers with a pong
  carrying the same data; ``ping_interval + ping_timeout`` without a ping
  closes the session.
* While the layer above holds the reading (backpressure: its handlers are
  all busy), an answer to the heartbeat may wait unread: it is not counted
  against the client, which gets a full ``ping_timeout`` of reading once
  reading resumes.
* Long-polling: one GET and one POST at a time; a second one of either closes
  the session and is refused (400). A GET is answered with everything queued,
  except that a CLOSE goes in a response of its own (socket.io-client handles
  the packets before it first).
* A client's CLOSE over polling while a GET waits: the GET is answered with a
  NOOP, the session is gone at once (the next request gets "unknown sid").
* Upgrade: a websocket for a polling session waits for ``2probe`` (answered
  ``3probe`` on that websocket; once that is written, the GET pending then is
  answered with a NOOP, so the client can pause polling), then ``5``: from then on the
  websocket carries the session and a polling request for it is refused
  (400). A GET that arrives after the probe waits up to ``upgrade_grace``:
  refused if the ``5`` comes meanwhile (it was sent after it), else a NOOP.
  No ``5`` within ``upgrade_timeout``, or anything but a NOOP before it, and
  that websocket is closed; the session goes on polling.
* A websocket for a session that a websocket already carries (or that is
  upgrading) is accepted and closed at once; the first one goes on.
* The outbound queue holds at most ``max_buffer`` packets: one more closes the
  session as a slow client. So does a client that answers pings but does not
  read: checked as the heartbeat moves, packets waiting (queued, or taken
  and not yet written) with nothing written for ``write_timeout``.
* A graceful close queues a CLOSE after what is queued; the client has
  ``linger`` seconds to take it (a polling client fetches it with one more
  GET) before the session is gone.
* Volatile packets (Socket.IO's ``volatile`` flag) are for a client that can
  take them at once, else dropped: the session is :attr:`Session.writable`
  only while it is open (not upgrading, not closing), nothing is queued or
  being written, and, over long-polling, a GET is waiting for its answer.
  The reference: engine.io's ``transport.writable`` as socket.io reads it.
* A pending GET of a session that ended is released: with a NOOP when the
  client closed it or it was handed over, else with a CLOSE. A GET pending
  when a websocket takes over gets a NOOP.
* Held opening (a cluster without sticky sessions): a long-polling session
  may begin *held*. Until ``hold`` seconds have passed, the MESSAGE packets
  it receives are kept in order (at most ``MAX_HELD``, and ``max_buffer``:
  one more is a protocol error), not handed up, and the layer above is not told the
  session exists, so that nothing of it is anywhere but here. The hold ends
  at that deadline (:attr:`Session.release_due`; the driver then takes the
  kept messages with :meth:`Session.release` and hands them up), or when a
  websocket of this process takes the session over (the driver releases it
  first), or when the session is handed over to the process that another
  websocket reached (:meth:`Session.hand_over`, allowed while it is still
  held): the kept messages and the outbound queue go with it, and here the
  session is CLOSED with ``HANDED_OVER``, its sid free for that process.
  The reference: ``@socket.io/cluster-engine``'s delayed connection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._session_terms import (
    CloseReason,
    PollVerdict,
    SessionConfig,
    State,
    Transport,
    WebSocketVerdict,
)
from .engineio import Packet, PacketType
from .errors import LocalProtocolError, RemoteProtocolError

__all__ = (
    "CloseReason",
    "PollVerdict",
    "Session",
    "SessionConfig",
    "State",
    "Transport",
    "WebSocketVerdict",
)

# How far an upgrade's probe dance has come.
_NO_PROBE = 0
_PROBED = 1  # the client's "2probe" came; the "3probe" is to be written
_PROBE_ANSWERED = 2  # it was written: the client pauses polling

MAX_HELD = 64
"""Most messages a held session keeps back. A stock client sends one CONNECT
per namespace before it is connected (its emits wait client-side)."""

_PING = Packet(PacketType.PING)
_PONG_PROBE = Packet(PacketType.PONG, "probe")
_NOOP = Packet(PacketType.NOOP)
_CLOSE = Packet(PacketType.CLOSE)


class Session:
    """The state of one Engine.IO session; the driver does the I/O.

    Inbound: :meth:`receive` (a packet on the carrying transport),
    :meth:`probe` (a packet on a websocket that is upgrading), the request
    checks (:meth:`get_request`, :meth:`post_request`,
    :meth:`websocket_request`) and :meth:`transport_closed`. Outbound:
    :meth:`send` queues, :meth:`take` hands what the carrying transport
    should write now. Time: :meth:`tick` at :attr:`deadline`.
    """

    __slots__ = (
        "_get_held_due",
        "_held",
        "_hold_due",
        "_in_flight",
        "_linger_due",
        "_ping_due",
        "_pong_due",
        "_probe",
        "_queue",
        "_read_held",
        "_read_resumed",
        "_stall_since",
        "_stall_writes",
        "_upgrade_due",
        "_writes",
        "close_reason",
        "config",
        "get_pending",
        "post_pending",
        "protocol",
        "release_due",
        "sent",
        "settled",
        "sid",
        "state",
        "transport",
    )

    def __init__(
        self,
        sid: str,
        *,
        protocol: int,
        transport: Transport,
        config: SessionConfig,
        now: float,
        held: bool = False,
    ) -> None:
        if protocol not in (3, 4):
            raise LocalProtocolError(f"unsupported Engine.IO protocol {protocol!r}")
        self.sid = sid
        self.protocol = protocol
        self.transport = transport
        self.config = config
        self.state = State.OPEN
        self.close_reason: CloseReason | None = None
        self._queue: list[Packet] = []
        self.get_pending = False
        """A long-polling GET is waiting for its answer."""
        self.post_pending = False
        """A long-polling POST is being read."""
        self.sent = 0
        """Packets queued over the session's life (see :attr:`settled`)."""
        self.settled = 0
        """Packets whose write has ended, written or lost with a client that
        left: everything queued before :attr:`sent` was ``n`` has been once
        this reaches ``n``."""
        self._probe = _NO_PROBE  # UPGRADING: how far the probe dance has come
        self._in_flight = 0  # taken by the transport, not yet written
        self._writes = 0  # writes completed; and at the last stall check, since when
        self._stall_writes, self._stall_since = 0, now
        self._read_held = False  # the layer above holds the reading (backpressure)
        self._read_resumed = -math.inf
        # Deadlines (math.inf: none). Heartbeat: protocol 4 pings at _ping_due
        # and waits for the pong until _pong_due; protocol 3 waits for the
        # client's ping until _pong_due.
        self._ping_due = math.inf
        self._pong_due = math.inf
        self._upgrade_due = math.inf
        self._linger_due = math.inf
        self._get_held_due = math.inf  # a GET that came after the probe
        # A held opening (see the rules): the messages kept back, until when.
        self._held: list[str | bytes] | None = None
        self._hold_due = math.inf
        self.release_due = False
        """The hold has ended: the driver takes the kept messages (:meth:`release`)."""
        if held:
            if transport is not Transport.POLLING or config.hold <= 0:
                raise LocalProtocolError("only a long-polling session with a hold begins held")
            self._held = []
            self._hold_due = now + config.hold
        if protocol >= 4:
            self._ping_due = now + config.ping_interval
        else:
            self._pong_due = now + config.ping_interval + config.ping_timeout

    # -- what the driver reads ---------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def upgrading(self) -> bool:
        """A websocket is taking the session over (see :meth:`probe`)."""
        return self.state is State.UPGRADING

    @property
    def writable(self) -> bool:
        """Whether a packet queued now would go out at once, behind nothing:
        what decides whether a volatile packet is sent or dropped (see the
        module's rules)."""
        if self.state is not State.OPEN or self._queue or self._in_flight:
            return False
        return self.transport is Transport.WEBSOCKET or self.get_pending

    @property
    def held(self) -> bool:
        """The session's messages are kept back (see the rules: held opening)."""
        return self._held is not None

    @property
    def queued(self) -> int:
        """Packets waiting for the carrying transport."""
        return len(self._queue)

    @property
    def deadline(self) -> float:
        """When :meth:`tick` must be called next (``math.inf``: never)."""
        if self.state is State.CLOSED:
            return math.inf
        return min(
            self._ping_due,
            self._pong_due,
            self._upgrade_due,
            self._linger_due,
            self._get_held_due,
            self._hold_due,
        )

    # -- time --------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Act on every deadline that has come.

        After it the driver looks at :attr:`state` (closed: close the
        transports) and :attr:`upgrading` (an upgrade that timed out: close
        that websocket) and writes what was queued (a ping).
        """
        if self.state is State.CLOSED:
            return
        if now >= self._pong_due:
            unread_until = self._unread_grace(now)
            if unread_until is None:
                self._end(CloseReason.PING_TIMEOUT)
                return
            self._pong_due = unread_until
        if now >= self._linger_due:
            self._end(self.close_reason or CloseReason.SERVER_DISCONNECT)
            return
        if now >= self._upgrade_due:
            self._abort_upgrade()
        if now >= self._get_held_due:
            self._get_held_due = math.inf  # poll_answer() now releases it
        if now >= self._hold_due:
            self._hold_due = math.inf
            self.release_due = True
        if now >= self._ping_due:
            if self._stalled(now):
                return
            self._ping_due = math.inf
            if self.send([_PING]):
                self._pong_due = now + self.config.ping_timeout

    def hold_reading(self, held: bool, now: float) -> None:
        """The layer above stops (``True``) or resumes reading the client's input."""
        self._read_held = held
        if not held:
            self._read_resumed = now

    def _unread_grace(self, now: float) -> float | None:
        """When to look again at a heartbeat answer that may wait unread, or
        ``None``: the client was read and is late."""
        if self._read_held:
            return now + self.config.ping_timeout
        grace_ends = self._read_resumed + self.config.ping_timeout
        return grace_ends if now < grace_ends else None

    def _stalled(self, now: float) -> bool:
        """Whether packets have waited for the client with nothing written for
        ``write_timeout`` (looked at as the heartbeat moves); if so, the
        session is closed as a slow client. A heartbeat does not prove that a
        client reads."""
        waiting = bool(self._queue) or self._in_flight > 0
        if not waiting or self._writes != self._stall_writes or self.upgrading:
            self._stall_writes, self._stall_since = self._writes, now
            return False
        if now - self._stall_since < self.config.write_timeout:
            return False
        self._end(CloseReason.SLOW_CLIENT)
        return True

    # -- inbound -----------------------------------------------------------------

    def receive(self, packet: Packet, now: float) -> str | bytes | None:
        """A packet from the client on the carrying transport: the data of a
        MESSAGE for the layer above, else ``None`` (handled here).

        Raises:
            RemoteProtocolError: the packet is not allowed; the session is closed.
        """
        kind = packet.type
        if self.state is State.CLOSED:
            return None
        if self.state is State.CLOSING:  # the server said goodbye: only the client's counts
            if kind is PacketType.CLOSE:
                self._end(CloseReason.CLIENT_CLOSE)
            return None
        if kind is PacketType.MESSAGE:
            held = self._held
            if held is None:
                return packet.data
            if len(held) >= min(self.config.max_buffer, MAX_HELD):
                self._end(CloseReason.PROTOCOL_ERROR)
                raise RemoteProtocolError("too many messages before the session opened")
            held.append(packet.data)
            return None
        if kind is PacketType.PONG and self.protocol >= 4:
            if self._pong_due < math.inf:  # a late or unasked-for pong changes nothing
                self._pong_due = math.inf
                self._ping_due = now + self.config.ping_interval
            return None
        if kind is PacketType.PING and self.protocol < 4:
            if self._stalled(now):
                return None
            self._pong_due = now + self.config.ping_interval + self.config.ping_timeout
            self.send([Packet(PacketType.PONG, packet.data)])
            return None
        if kind is PacketType.CLOSE:
            self._end(CloseReason.CLIENT_CLOSE)
            return None
        if kind is PacketType.NOOP:
            return None
        self._end(CloseReason.PROTOCOL_ERROR)
        raise RemoteProtocolError(f"unexpected {kind.name} packet")

    def bad_input(self, reason: CloseReason = CloseReason.PARSE_ERROR) -> None:
        """The carrying transport got something that does not decode (or is too large)."""
        self._end(reason)

    def transport_closed(self, transport: Transport, *, failed: bool = False) -> None:
        """The connection of ``transport`` went away (``failed``: writing to it failed).

        Only the carrying websocket's end ends the session: a long-polling
        client that leaves a GET behind may come back with another one.
        """
        if transport is Transport.WEBSOCKET and self.transport is Transport.WEBSOCKET:
            self._end(CloseReason.TRANSPORT_ERROR if failed else CloseReason.TRANSPORT_CLOSE)

    # -- long-polling --------------------------------------------------------------

    def get_request(self, now: float) -> PollVerdict:
        """A long-polling GET arrived; on ``SERVE`` it is pending until
        :meth:`poll_answer` answers it or its client leaves (:meth:`get_abandoned`)."""
        verdict = self._poll_verdict(self.get_pending, CloseReason.OVERLAPPING_GET)
        if verdict is PollVerdict.SERVE:
            self.get_pending = True
            if self.upgrading and self._probe is _PROBE_ANSWERED:
                self._get_held_due = now + self.config.upgrade_grace  # see poll_answer()
        return verdict

    def post_request(self) -> PollVerdict:
        """A long-polling POST arrived; on ``SERVE`` it is pending until :meth:`post_done`."""
        verdict = self._poll_verdict(self.post_pending, CloseReason.OVERLAPPING_POST)
        if verdict is PollVerdict.SERVE:
            self.post_pending = True
        return verdict

    def _poll_verdict(self, pending: bool, overlap: CloseReason) -> PollVerdict:
        if self.state is State.CLOSED:
            return PollVerdict.UNKNOWN_SID
        if self.transport is not Transport.POLLING:
            return PollVerdict.WRONG_TRANSPORT
        if pending:
            self._end(overlap)
            return PollVerdict.OVERLAP
        return PollVerdict.SERVE

    def poll_answer(self, now: float) -> list[Packet] | PollVerdict | None:
        """What the pending GET answers now, or ``None``: keep it waiting.

        Packets (taken, see :meth:`take`: the driver calls :meth:`written`
        once the response is sent, or has failed) or ``WRONG_TRANSPORT`` (a
        GET that came after the probe, overtaken by the ``5``: refuse it)
        answer the GET: it is no longer pending.
        """
        answer = self._poll_answer()
        if answer is not None:
            self.get_pending = False
            self._get_held_due = math.inf
        return answer

    def _poll_answer(self) -> list[Packet] | PollVerdict | None:
        if self.state is State.CLOSED:
            # Ended while the GET waited: the client's own CLOSE (over a POST)
            # gets its GET back empty, anything else tells it the session is over.
            gone_on = self.close_reason in (CloseReason.CLIENT_CLOSE, CloseReason.HANDED_OVER)
            return [_NOOP] if gone_on else [_CLOSE]
        held = self._get_held_due < math.inf
        if self.transport is not Transport.POLLING:
            # Sent after its "5", which was read first: refused as the reference
            # server refuses it; one pending from before is released.
            return PollVerdict.WRONG_TRANSPORT if held else [_NOOP]
        if self.upgrading and self._probe is _PROBE_ANSWERED:
            # The client pauses polling to upgrade: release it, but give one that
            # came after the probe a moment for the "5" (tick() ends the moment).
            return None if held else [_NOOP]
        if not self._queue:
            return None
        packets = self.take(self.config.max_poll_packets)
        if len(packets) > 1 and packets[-1].type is PacketType.CLOSE:
            self.put_back([packets.pop()])  # the CLOSE in a response of its own
        return packets

    def get_abandoned(self) -> None:
        """The pending GET's client left before it was answered."""
        self.get_pending = False
        self._get_held_due = math.inf

    def post_done(self) -> None:
        """The pending POST's body has been handled."""
        self.post_pending = False

    # -- the upgrade -----------------------------------------------------------------

    def websocket_request(self, now: float) -> WebSocketVerdict:
        """A websocket arrived for this session; on ``PROBE`` the session is UPGRADING."""
        if self.state is State.CLOSED:
            return WebSocketVerdict.UNKNOWN_SID
        if self.state is not State.OPEN or self.transport is not Transport.POLLING:
            return WebSocketVerdict.ACCEPT_AND_CLOSE
        self.state = State.UPGRADING
        self._probe = _NO_PROBE
        self._upgrade_due = now + self.config.upgrade_timeout
        return WebSocketVerdict.PROBE

    def probe(self, packet: Packet, now: float) -> Packet | None:
        """A packet on the upgrading websocket: what to write back on it (the
        probe's pong), or ``None``. After the UPGRADE packet the websocket
        carries the session (:attr:`transport`).

        Raises:
            RemoteProtocolError: not the probe dance; the upgrade is aborted
                (the driver closes that websocket), the session goes on.
        """
        if self.state is not State.UPGRADING:
            if self.state is State.CLOSED:
                return None
            raise LocalProtocolError(f"probe() while {self.state.name}")
        kind = packet.type
        if self._probe is _NO_PROBE:
            if kind is PacketType.PING and packet.data == "probe":
                self._probe = _PROBED
                return _PONG_PROBE
            self._abort_upgrade()
            raise RemoteProtocolError("expected a ping probe")
        if kind is PacketType.UPGRADE:
            self.state = State.OPEN
            self.transport = Transport.WEBSOCKET
            self._upgrade_due = math.inf
            return None
        if kind is PacketType.NOOP:
            return None
        self._abort_upgrade()
        raise RemoteProtocolError("expected the upgrade packet")

    def probe_answered(self) -> None:
        """The probe's pong has been written on the upgrading websocket: the
        client pauses polling, so its pending GET is answered with a NOOP
        (:meth:`poll_answer`)."""
        if self.state is State.UPGRADING and self._probe is _PROBED:
            self._probe = _PROBE_ANSWERED

    def upgrade_socket_closed(self) -> None:
        """The upgrading websocket went away before the UPGRADE packet."""
        if self.state is State.UPGRADING:
            self._abort_upgrade()

    def _abort_upgrade(self) -> None:
        self.state = State.OPEN
        self._probe = _NO_PROBE
        self._upgrade_due = math.inf

    # -- a held opening (see the rules) -----------------------------------------------

    def release(self) -> list[str | bytes]:
        """End the hold: the messages kept back, in order, for the layer above
        (told of the session first). Nothing when the session was not held."""
        held, self._held = self._held or [], None
        self._hold_due = math.inf
        self.release_due = False
        return held

    def hand_over(self) -> tuple[list[str | bytes], list[Packet]] | None:
        """Give the held session up to the process that will carry it on: the
        messages kept back and the packets queued for the client, or ``None``
        when it may not go (no longer held, or closed). Given, it is CLOSED
        here with ``HANDED_OVER``."""
        if self._held is None or self.release_due or self.state is State.CLOSED:
            return None
        held, queued = self._held, self._queue
        self._held, self._queue = None, []
        self.settled += len(queued)  # they leave with the session
        self._end(CloseReason.HANDED_OVER)
        return held, queued

    # -- outbound --------------------------------------------------------------------

    def send(self, packets: Sequence[Packet]) -> bool:
        """Queue ``packets`` for the client, all or none; ``False`` when they
        were not queued: the session is closing or closed, or the queue
        overflowed (the session is now closed as a slow client)."""
        if self.state is State.CLOSED or self.state is State.CLOSING:
            return False
        if len(self._queue) + len(packets) > self.config.max_buffer:
            self._end(CloseReason.SLOW_CLIENT)
            return False
        self._queue.extend(packets)
        self.sent += len(packets)
        return True

    def take(self, limit: int | None = None) -> list[Packet]:
        """Hand up to ``limit`` queued packets to the carrying transport (all
        when ``None``) to write now; the driver then says how that went:
        :meth:`written`, or :meth:`put_back` for those it did not write."""
        queue = self._queue
        if not queue:  # how a writer learns it is done: nothing to swap or count
            return []
        if limit is None or limit >= len(queue):
            taken, self._queue = queue, []
        else:
            taken, self._queue = queue[:limit], queue[limit:]
        self._in_flight += len(taken)
        return taken

    def written(self, count: int | None = None) -> None:
        """``count`` of the packets taken have been written (all when ``None``),
        or have failed to be with a client that went away: either way they are
        settled. A closing session with nothing left to write is now closed."""
        in_flight = self._in_flight
        done = in_flight if count is None or count > in_flight else count
        self._in_flight = in_flight - done
        self.settled += done
        self._writes += 1
        if self.state is State.CLOSING and not self._queue and not self._in_flight:
            self._end(self.close_reason or CloseReason.SERVER_DISCONNECT)

    def put_back(self, packets: list[Packet]) -> None:
        """The transport did not write these packets it took (it was
        interrupted): they go first again, in order, even past ``max_buffer``."""
        if self.state is State.CLOSED:  # dropped with the queue, already settled
            return
        self._in_flight -= len(packets)
        self._queue[:0] = packets

    # -- closing -----------------------------------------------------------------------

    def close(self, reason: CloseReason, now: float, *, graceful: bool = True) -> None:
        """The server closes the session (idempotent).

        ``graceful``: what is queued is still delivered, then a CLOSE packet
        (CLOSING until taken; a polling client has ``linger`` seconds to fetch
        it). Otherwise the session is closed at once and the queue dropped,
        also when it was closing; its first reason stays.
        """
        if self.state is State.CLOSED:
            return
        if not graceful:
            self._end(reason)  # a closing session too: its client does not take its last packets
            return
        if self.state is State.CLOSING:
            return
        self.close_reason = reason
        self._abort_upgrade()
        self.state = State.CLOSING
        self._queue.append(_CLOSE)  # beyond max_buffer: the last packet always fits
        self.sent += 1
        self._ping_due = self._pong_due = math.inf
        self._linger_due = now + self.config.linger

    def _end(self, reason: CloseReason) -> None:
        if self.state is State.CLOSED:
            return
        if self.close_reason is None:
            self.close_reason = reason
        self.state = State.CLOSED
        self.settled += len(self._queue) + self._in_flight  # dropped: nobody waits for them
        self._queue = []
        self._probe = _NO_PROBE
        self._in_flight = 0
        self._ping_due = self._pong_due = self._upgrade_due = math.inf
        self._linger_due = self._get_held_due = self._hold_due = math.inf
        self._held, self.release_due = None, False  # nothing kept is handed up any more
