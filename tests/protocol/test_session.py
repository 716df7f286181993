"""The Engine.IO session state machine, with a fake clock and no event loop.

Each test plays a client against :class:`gosf.protocol.session.Session`:
packets in, what the session answers out, time moved by hand. The three
rules the reference server keeps and gosf's first transports broke have
tests of their own (``test_rule_*``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from gosf.protocol.engineio import Packet, PacketType, decode_payload, encode_payload
from gosf.protocol.errors import LocalProtocolError, RemoteProtocolError
from gosf.protocol.session import (
    CloseReason,
    PollVerdict,
    Session,
    SessionConfig,
    State,
    Transport,
    WebSocketVerdict,
)

T = PacketType
CONFIG = SessionConfig(
    ping_interval=25.0,
    ping_timeout=20.0,
    upgrade_timeout=10.0,
    max_buffer=8,
    write_timeout=45.0,
    linger=5.0,
)
PING, PONG, NOOP, CLOSE, UPGRADE = (Packet(t) for t in (T.PING, T.PONG, T.NOOP, T.CLOSE, T.UPGRADE))
PROBE = Packet(T.PING, "probe")


def msg(data: str | bytes) -> Packet:
    return Packet(T.MESSAGE, data)


def polling(protocol: int = 4, config: SessionConfig = CONFIG) -> Session:
    return Session("n.s", protocol=protocol, transport=Transport.POLLING, config=config, now=0.0)


def websocket(protocol: int = 4, config: SessionConfig = CONFIG) -> Session:
    return Session("n.s", protocol=protocol, transport=Transport.WEBSOCKET, config=config, now=0.0)


def get(session: Session, now: float = 0.0) -> list[Packet] | None:
    """One long-polling GET that is answered at once, if it can be."""
    assert session.get_request(now) is PollVerdict.SERVE
    answer = session.poll_answer(now)
    if answer is None:
        return None
    assert not isinstance(answer, PollVerdict), answer
    session.written()
    return answer


def upgraded(session: Session, now: float = 0.0) -> None:
    assert session.websocket_request(now) is WebSocketVerdict.PROBE
    assert session.probe(PROBE, now) == Packet(T.PONG, "probe")
    assert session.probe(UPGRADE, now) is None


# -- opening and messages ------------------------------------------------------------


def test_a_new_session_is_open_on_its_transport() -> None:
    session = polling()
    assert session.state is State.OPEN and session.transport is Transport.POLLING
    assert not session.closed and not session.upgrading and session.queued == 0


def test_only_protocols_3_and_4() -> None:
    with pytest.raises(LocalProtocolError):
        Session("s", protocol=5, transport=Transport.POLLING, config=CONFIG, now=0.0)


def test_messages_go_to_the_layer_above() -> None:
    session = websocket()
    assert session.receive(msg('2["hi"]'), 1.0) == '2["hi"]'
    assert session.receive(msg(b"\x01\x02"), 1.0) == b"\x01\x02"
    assert session.receive(NOOP, 1.0) is None


@pytest.mark.parametrize("kind", [T.OPEN, T.UPGRADE])
def test_packets_a_client_may_not_send_close_the_session(kind: PacketType) -> None:
    session = websocket()
    with pytest.raises(RemoteProtocolError):
        session.receive(Packet(kind), 1.0)
    assert session.closed and session.close_reason is CloseReason.PROTOCOL_ERROR


# -- heartbeat, protocol 4 ---------------------------------------------------------------


def test_v4_the_server_pings_after_ping_interval() -> None:
    session = websocket()
    assert session.deadline == 25.0
    session.tick(24.9)
    assert session.queued == 0
    session.tick(25.0)
    assert session.take() == [PING]
    assert session.deadline == 45.0  # the pong is due within ping_timeout


def test_v4_a_pong_schedules_the_next_ping_from_its_arrival() -> None:
    session = websocket()
    session.tick(25.0)
    session.take()
    session.written()
    session.receive(PONG, 30.0)
    assert session.deadline == 55.0
    session.tick(55.0)
    assert session.take() == [PING]


def test_v4_no_pong_within_ping_timeout_closes() -> None:
    session = websocket()
    session.tick(25.0)
    session.tick(44.9)
    assert not session.closed
    session.tick(45.0)
    assert session.closed and session.close_reason is CloseReason.PING_TIMEOUT
    assert session.deadline == math.inf


def test_v4_an_unasked_for_pong_changes_nothing() -> None:
    session = websocket()
    session.receive(PONG, 10.0)  # no ping out: the schedule stays
    assert session.deadline == 25.0 and not session.closed


def test_v4_a_client_ping_is_a_protocol_error() -> None:
    session = websocket()
    with pytest.raises(RemoteProtocolError):
        session.receive(PING, 1.0)
    assert session.close_reason is CloseReason.PROTOCOL_ERROR


# -- heartbeat, protocol 3 -----------------------------------------------------------------


def test_v3_the_client_pings_and_gets_its_data_back() -> None:
    session = polling(protocol=3)
    assert session.deadline == 45.0  # ping_interval + ping_timeout, no server ping
    session.receive(Packet(T.PING, "x"), 10.0)
    assert get(session, 10.0) == [Packet(T.PONG, "x")]
    assert session.deadline == 55.0


def test_v3_a_silent_client_is_closed() -> None:
    session = polling(protocol=3)
    session.tick(44.9)
    assert session.queued == 0 and not session.closed  # the server never pings
    session.tick(45.0)
    assert session.close_reason is CloseReason.PING_TIMEOUT


def test_v3_a_pong_from_the_client_is_a_protocol_error() -> None:
    session = polling(protocol=3)
    with pytest.raises(RemoteProtocolError):
        session.receive(PONG, 1.0)


# -- long-polling ------------------------------------------------------------------------


def test_a_get_waits_until_something_is_queued() -> None:
    session = polling()
    assert session.get_request(0.0) is PollVerdict.SERVE
    assert session.poll_answer(1.0) is None
    session.send([msg("a"), msg("b")])
    assert session.poll_answer(1.0) == [msg("a"), msg("b")]
    session.written()
    assert session.queued == 0


def test_a_second_get_at_once_closes_the_session() -> None:
    session = polling()
    assert session.get_request(0.0) is PollVerdict.SERVE
    assert session.get_request(0.0) is PollVerdict.OVERLAP
    assert session.close_reason is CloseReason.OVERLAPPING_GET
    assert session.poll_answer(1.0) == [CLOSE]  # the first one is released


def test_a_second_post_at_once_closes_the_session() -> None:
    session = polling()
    assert session.post_request() is PollVerdict.SERVE
    assert session.post_request() is PollVerdict.OVERLAP
    assert session.close_reason is CloseReason.OVERLAPPING_POST


def test_get_and_post_may_overlap() -> None:
    session = polling()
    assert session.get_request(0.0) is PollVerdict.SERVE
    assert session.post_request() is PollVerdict.SERVE
    session.post_done()
    assert session.post_request() is PollVerdict.SERVE


def test_a_get_after_the_previous_one_is_served() -> None:
    session = polling()
    session.send([msg("a")])
    assert get(session) == [msg("a")]
    session.send([msg("b")])
    assert get(session) == [msg("b")]


def test_a_get_whose_client_left_while_it_waited_takes_nothing() -> None:
    session = polling()
    assert session.get_request(0.0) is PollVerdict.SERVE
    assert session.poll_answer(1.0) is None
    session.get_abandoned()
    session.send([msg("a")])
    assert session.get_request(2.0) is PollVerdict.SERVE  # not an overlap
    assert session.poll_answer(2.0) == [msg("a")]


def test_an_answered_get_is_over_before_its_response_is_written() -> None:
    # The client may send its next GET as soon as it has the response, before
    # the server's write returns: that one is not an overlap.
    session = polling()
    session.send([msg("a")])
    assert session.get_request(0.0) is PollVerdict.SERVE
    assert session.poll_answer(0.0) == [msg("a")]
    assert not session.get_pending
    assert session.get_request(0.0) is PollVerdict.SERVE
    session.written()
    assert session.settled == session.sent == 1


def test_what_a_failed_response_took_is_lost_and_settled() -> None:
    session = polling()
    session.send([msg("a")])
    assert get(session) == [msg("a")]  # the driver calls written() either way
    assert session.queued == 0 and session.settled == 1


def test_packets_put_back_go_first_again() -> None:
    session = websocket()
    session.send([msg("a"), msg("b"), msg("c")])
    taken = session.take()
    session.written(1)  # "a" went out, then the write was interrupted
    session.send([msg("d")])
    session.put_back(taken[1:])
    assert session.take() == [msg("b"), msg("c"), msg("d")]
    session.written()
    assert session.settled == session.sent == 4


def test_a_writer_that_empties_the_queue_takes_nothing_more() -> None:
    session = websocket()
    session.send([msg("a"), msg("b")])
    taken = session.take()
    empty = session.take()  # how a writer learns it is done
    assert empty == [] and empty is not session.take()  # never the queue itself
    empty.append(msg("not queued"))
    session.written(5)  # more than were in flight: only those settle
    assert (session.queued, session.settled, session.sent) == (0, 2, 2)
    assert taken == [msg("a"), msg("b")]
    session.send([msg("c")])
    assert session.take() == [msg("c")]
    session.written(1)
    assert session.settled == session.sent == 3 and session.writable


def test_a_get_carries_at_most_max_poll_packets() -> None:
    session = polling(config=replace(CONFIG, max_poll_packets=2))
    session.send([msg("a"), msg("b"), msg("c")])
    assert get(session) == [msg("a"), msg("b")]
    assert get(session) == [msg("c")]


def test_a_close_settles_what_it_drops() -> None:
    session = websocket()
    session.send([msg("a"), msg("b")])
    session.take(1)
    session.close(CloseReason.SLOW_CLIENT, 1.0, graceful=False)
    assert session.settled == session.sent == 2
    session.written()  # the write in flight ends after the close: nothing changes
    session.put_back([msg("b")])
    assert session.settled == 2 and session.queued == 0


def test_polls_of_a_websocket_session_are_refused() -> None:
    session = websocket()
    assert session.get_request(0.0) is PollVerdict.WRONG_TRANSPORT
    assert session.post_request() is PollVerdict.WRONG_TRANSPORT


def test_a_server_side_close_releases_a_waiting_get_with_close() -> None:
    session = polling()
    assert session.get_request(0.0) is PollVerdict.SERVE
    session.tick(25.0)  # ping
    assert session.poll_answer(25.0) == [PING]
    session.written()
    assert session.get_request(0.0) is PollVerdict.SERVE
    session.tick(45.0)  # no pong
    assert session.poll_answer(45.0) == [CLOSE]


def test_rule_1_a_polling_clients_close_answers_its_pending_get_with_noop() -> None:
    # The reference server: POST "1" while a GET waits -> the GET gets "6",
    # and the session is gone (the next GET is "unknown sid").
    session = polling()
    assert session.get_request(0.0) is PollVerdict.SERVE
    assert session.post_request() is PollVerdict.SERVE
    body, content_type = encode_payload([CLOSE], 4)
    for packet in decode_payload(body, 4, content_type=content_type):
        session.receive(packet, 1.0)
    session.post_done()
    assert session.poll_answer(1.0) == [NOOP]
    session.written()
    assert session.get_request(0.0) is PollVerdict.UNKNOWN_SID
    assert session.close_reason is CloseReason.CLIENT_CLOSE


# -- the upgrade ------------------------------------------------------------------------


def test_the_probe_dance_moves_the_session_to_the_websocket() -> None:
    session = polling()
    session.send([msg("queued while polling")])
    assert session.websocket_request(1.0) is WebSocketVerdict.PROBE
    assert session.upgrading and session.transport is Transport.POLLING
    assert session.probe(PROBE, 1.0) == Packet(T.PONG, "probe")
    assert session.probe(NOOP, 1.0) is None  # a client may send NOOPs meanwhile
    assert session.probe(UPGRADE, 1.0) is None
    assert (session.state, session.transport) == (State.OPEN, Transport.WEBSOCKET)
    assert session.take() == [msg("queued while polling")]  # nothing lost


def test_the_probe_releases_the_pending_get_with_a_noop() -> None:
    session = polling()
    session.send([msg("kept for the websocket")])
    session.websocket_request(1.0)
    assert get(session, 1.0) == [msg("kept for the websocket")]  # not probed yet
    assert session.get_request(1.0) is PollVerdict.SERVE  # pending when the probe comes
    assert session.poll_answer(1.0) is None
    session.send([msg("after")])
    session.probe(PROBE, 1.0)
    # Not before the "3probe" is written: the client would poll again first.
    assert session.poll_answer(1.0) == [msg("after")]
    session.written()
    assert session.get_request(1.0) is PollVerdict.SERVE
    session.send([msg("later")])
    session.probe_answered()
    assert session.poll_answer(1.0) == [NOOP]  # at once: the client pauses polling
    session.written()
    session.probe(UPGRADE, 1.0)
    assert session.take() == [msg("later")]


def test_a_get_pending_from_before_the_probe_is_released_by_the_upgrade() -> None:
    session = polling()
    assert session.get_request(0.5) is PollVerdict.SERVE
    session.websocket_request(1.0)
    session.probe(PROBE, 1.0)
    session.probe(UPGRADE, 1.0)
    session.send([msg("for the websocket")])
    assert session.poll_answer(1.0) == [NOOP]
    assert session.take() == [msg("for the websocket")]


def test_rule_2_polling_after_the_upgrade_is_refused() -> None:
    # The reference server: once the websocket sent "2probe" then "5", a
    # polling request for the sid gets 400.
    session = polling()
    upgraded(session)
    assert session.get_request(0.0) is PollVerdict.WRONG_TRANSPORT
    assert session.post_request() is PollVerdict.WRONG_TRANSPORT
    assert not session.closed  # the websocket goes on


def test_rule_3_a_second_websocket_is_accepted_and_closed() -> None:
    # The reference server accepts it (101) and closes it; the first goes on.
    session = polling()
    upgraded(session)
    assert session.websocket_request(2.0) is WebSocketVerdict.ACCEPT_AND_CLOSE
    assert session.state is State.OPEN and session.transport is Transport.WEBSOCKET
    assert websocket().websocket_request(0.0) is WebSocketVerdict.ACCEPT_AND_CLOSE


def test_a_second_websocket_during_an_upgrade_is_accepted_and_closed() -> None:
    session = polling()
    assert session.websocket_request(1.0) is WebSocketVerdict.PROBE
    assert session.websocket_request(1.0) is WebSocketVerdict.ACCEPT_AND_CLOSE
    assert session.upgrading


def test_a_websocket_for_a_closed_session_is_unknown() -> None:
    session = polling()
    session.close(CloseReason.SERVER_DISCONNECT, 0.0, graceful=False)
    assert session.websocket_request(1.0) is WebSocketVerdict.UNKNOWN_SID


def test_no_upgrade_within_the_timeout_goes_back_to_polling() -> None:
    session = polling()
    session.websocket_request(1.0)
    session.probe(PROBE, 1.0)
    assert session.deadline == 11.0
    session.tick(11.0)
    assert session.state is State.OPEN and session.transport is Transport.POLLING
    session.send([msg("still polling")])
    assert get(session, 11.0) == [msg("still polling")]


@pytest.mark.parametrize("first", [msg("x"), UPGRADE, Packet(T.PING, "not probe")])
def test_anything_but_the_probe_first_aborts_the_upgrade(first: Packet) -> None:
    session = polling()
    session.websocket_request(1.0)
    with pytest.raises(RemoteProtocolError):
        session.probe(first, 1.0)
    assert session.state is State.OPEN and session.transport is Transport.POLLING
    assert not session.closed


def test_anything_but_noop_or_upgrade_after_the_probe_aborts_it() -> None:
    session = polling()
    session.websocket_request(1.0)
    session.probe(PROBE, 1.0)
    with pytest.raises(RemoteProtocolError):
        session.probe(msg("too early"), 1.0)
    assert not session.upgrading and session.transport is Transport.POLLING


def test_the_upgrading_websocket_going_away_aborts_the_upgrade() -> None:
    session = polling()
    session.websocket_request(1.0)
    session.upgrade_socket_closed()
    assert not session.upgrading and not session.closed
    assert session.websocket_request(2.0) is WebSocketVerdict.PROBE  # may try again


def test_probe_outside_an_upgrade_is_a_driver_bug() -> None:
    with pytest.raises(LocalProtocolError):
        polling().probe(PROBE, 0.0)


def test_heartbeats_go_on_during_the_upgrade() -> None:
    session = polling()
    session.websocket_request(20.0)
    session.probe(PROBE, 20.0)
    session.tick(25.0)
    assert session.queued == 1  # the ping waits for the websocket
    session.probe(UPGRADE, 26.0)
    assert session.take() == [PING]
    session.written()
    session.receive(PONG, 27.0)
    assert session.deadline == 52.0


# -- closing ----------------------------------------------------------------------------


def test_a_graceful_websocket_close_ends_once_the_close_is_written() -> None:
    session = websocket()
    session.send([msg("last")])
    session.close(CloseReason.SERVER_DISCONNECT, 1.0)
    assert session.state is State.CLOSING and not session.send([msg("refused")])
    assert session.take() == [msg("last"), CLOSE]
    assert session.state is State.CLOSING
    session.written()
    assert session.closed and session.close_reason is CloseReason.SERVER_DISCONNECT


def test_a_closing_session_ignores_the_client_but_its_close() -> None:
    session = websocket()
    session.close(CloseReason.SERVER_SHUTTING_DOWN, 1.0)
    assert session.receive(msg("late"), 1.0) is None
    session.receive(CLOSE, 1.0)
    assert session.closed and session.close_reason is CloseReason.SERVER_SHUTTING_DOWN


def test_a_polling_client_that_never_fetches_the_close_is_gone_after_linger() -> None:
    session = polling()
    session.close(CloseReason.SERVER_DISCONNECT, 10.0)
    assert session.deadline == 15.0
    session.tick(15.0)
    assert session.closed


def test_a_graceful_close_fits_a_full_queue() -> None:
    session = websocket()
    assert session.send([msg(str(i)) for i in range(CONFIG.max_buffer)])
    session.close(CloseReason.SERVER_DISCONNECT, 1.0)
    assert session.take()[-1] == CLOSE


def test_an_abrupt_close_drops_the_queue() -> None:
    session = websocket()
    session.send([msg("dropped")])
    session.close(CloseReason.SERVER_DISCONNECT, 1.0, graceful=False)
    assert session.closed and session.queued == 0


def test_close_is_idempotent_and_keeps_the_first_reason() -> None:
    session = websocket()
    session.close(CloseReason.SERVER_DISCONNECT, 1.0)
    session.close(CloseReason.SERVER_SHUTTING_DOWN, 1.0)
    session.close(CloseReason.PING_TIMEOUT, 1.0, graceful=False)
    assert session.close_reason is CloseReason.SERVER_DISCONNECT


def test_the_client_closing_a_websocket_session() -> None:
    session = websocket()
    session.receive(CLOSE, 1.0)
    assert session.closed and session.close_reason is CloseReason.CLIENT_CLOSE


def test_the_carrying_websocket_going_away_ends_the_session() -> None:
    session = websocket()
    session.transport_closed(Transport.WEBSOCKET)
    assert session.close_reason is CloseReason.TRANSPORT_CLOSE
    failed = websocket()
    failed.transport_closed(Transport.WEBSOCKET, failed=True)
    assert failed.close_reason is CloseReason.TRANSPORT_ERROR


def test_a_polling_request_going_away_does_not_end_the_session() -> None:
    session = polling()
    session.transport_closed(Transport.POLLING)
    session.transport_closed(Transport.WEBSOCKET)  # an upgrading websocket, not the carrier
    assert not session.closed


def test_bad_input_closes() -> None:
    session = websocket()
    session.bad_input(CloseReason.PAYLOAD_TOO_LARGE)
    assert session.close_reason is CloseReason.PAYLOAD_TOO_LARGE


def test_a_closed_session_accepts_nothing() -> None:
    session = websocket()
    session.close(CloseReason.SERVER_DISCONNECT, 0.0, graceful=False)
    assert session.receive(msg("x"), 1.0) is None
    assert not session.send([msg("y")])
    session.tick(1000.0)
    assert session.deadline == math.inf


# -- slow clients ----------------------------------------------------------------------


def test_an_overflowing_queue_closes_a_slow_client() -> None:
    session = websocket()
    assert session.send([msg(str(i)) for i in range(CONFIG.max_buffer)])
    assert not session.send([msg("one too many")])
    assert session.closed and session.close_reason is CloseReason.SLOW_CLIENT


def test_packets_are_queued_all_or_none() -> None:
    session = websocket(config=SessionConfig(max_buffer=3))
    assert session.send([msg("a"), msg("b")])
    assert not session.send([msg("c"), msg("d")])
    assert session.closed


def test_a_client_that_answers_pings_but_never_reads_is_closed() -> None:
    # The transport took a packet to write and the write never completes
    # (the client's socket buffers are full); pongs come all the same.
    session = websocket()
    session.send([msg("big answer")])
    assert session.take() == [msg("big answer")]
    session.tick(25.0)  # the first look: waiting since the start, 25 s
    assert not session.closed
    assert session.take() == [PING]  # written behind the stuck one, if ever
    session.receive(PONG, 26.0)
    session.tick(51.0)  # the next look: 51 s with nothing written
    assert session.closed and session.close_reason is CloseReason.SLOW_CLIENT


def test_a_v3_client_that_pings_but_never_reads_is_closed() -> None:
    session = websocket(protocol=3)
    session.send([msg("big answer")])
    session.take()
    for now in (20.0, 40.0):
        session.receive(PING, now)
    assert not session.closed
    session.receive(PING, 70.0)  # 50 s with nothing written since the first look
    assert session.closed and session.close_reason is CloseReason.SLOW_CLIENT


def test_a_client_that_reads_slowly_but_steadily_stays() -> None:
    session = websocket()
    now = 0.0
    for _ in range(10):  # a write completes between every two pings
        session.send([msg("chunk")])
        session.take()
        now = session.deadline
        session.tick(now)
        session.written()
        session.take()  # the ping
        session.written()
        session.receive(PONG, now + 1.0)
    assert not session.closed


def test_an_idle_session_is_never_a_slow_client() -> None:
    session = websocket()
    for _ in range(10):
        now = session.deadline
        session.tick(now)
        session.take()
        session.written()
        session.receive(PONG, now + 1.0)
    assert not session.closed


def test_no_stall_is_counted_during_an_upgrade() -> None:
    # What waits for the websocket is not the client's fault.
    session = polling(config=SessionConfig(write_timeout=1.0, upgrade_timeout=100.0))
    session.send([msg("for the websocket")])
    session.websocket_request(1.0)
    session.probe(PROBE, 1.0)
    session.tick(25.0)
    assert not session.closed
    session.probe(UPGRADE, 30.0)
    assert session.take() == [msg("for the websocket"), PING]


# -- a client left unread (the layer above holds the reading) ----------------------------


def test_a_pong_left_unread_while_reading_is_held_is_not_a_timeout() -> None:
    session = websocket()
    session.tick(25.0)  # ping; the pong is due at 45
    session.hold_reading(True, 30.0)
    session.tick(45.0)
    assert not session.closed and session.deadline == 65.0
    session.hold_reading(False, 50.0)  # reading again: a full ping_timeout to be heard
    session.tick(65.0)
    assert not session.closed and session.deadline == 70.0
    session.receive(PONG, 66.0)
    assert not session.closed and session.deadline == 91.0


def test_a_client_read_again_and_still_silent_times_out() -> None:
    session = websocket()
    session.tick(25.0)
    session.hold_reading(True, 30.0)
    session.hold_reading(False, 31.0)
    session.tick(45.0)
    assert not session.closed  # within ping_timeout of reading again
    session.tick(51.0)
    assert session.close_reason is CloseReason.PING_TIMEOUT


# -- the upgrade's race ----------------------------------------------------------------


def test_a_get_that_arrives_after_the_probe_waits_for_the_upgrade_packet() -> None:
    # It was sent after the "5", which the websocket has not delivered yet:
    # it is refused once the "5" is read, as the reference server refuses it.
    session = polling()
    session.websocket_request(1.0)
    session.probe(PROBE, 1.0)
    session.probe_answered()
    assert session.get_request(1.0) is PollVerdict.SERVE
    assert session.poll_answer(1.0) is None
    assert session.deadline == 1.1
    session.probe(UPGRADE, 1.05)
    assert session.poll_answer(1.05) is PollVerdict.WRONG_TRANSPORT


def test_a_get_after_the_probe_with_no_upgrade_packet_gets_a_noop() -> None:
    session = polling()
    session.websocket_request(1.0)
    session.probe(PROBE, 1.0)
    session.probe_answered()
    assert session.get_request(1.0) is PollVerdict.SERVE
    session.tick(1.1)
    assert session.poll_answer(1.1) == [NOOP]


def test_a_probe_answered_twice_or_after_the_upgrade_changes_nothing() -> None:
    session = polling()
    upgraded(session, 1.0)
    session.probe_answered()
    assert session.transport is Transport.WEBSOCKET and not session.upgrading


def test_a_non_graceful_close_ends_a_closing_session_and_keeps_its_reason() -> None:
    session = polling()
    session.close(CloseReason.SERVER_DISCONNECT, 0.0)
    assert session.state is State.CLOSING
    session.close(CloseReason.SERVER_SHUTTING_DOWN, 1.0, graceful=False)
    assert session.closed and session.close_reason is CloseReason.SERVER_DISCONNECT
    assert session.get_request(1.0) is PollVerdict.UNKNOWN_SID


# -- volatile packets: whether the client can take one now ---------------------------------


def test_a_websocket_is_writable_while_nothing_is_queued_or_being_written() -> None:
    session = websocket()
    assert session.writable
    session.send([msg("a")])
    assert not session.writable  # the buffer is not empty
    taken = session.take()
    assert not session.writable  # being written
    session.written(len(taken))
    assert session.writable


def test_a_polling_session_is_writable_only_while_a_get_waits() -> None:
    session = polling()
    assert not session.writable  # no GET to carry it
    assert session.get_request(0.0) is PollVerdict.SERVE
    assert session.writable
    session.send([msg("a")])
    assert not session.writable
    assert session.poll_answer(0.0) == [msg("a")]
    assert not session.writable  # answered: no GET waits any more
    session.written()
    assert not session.writable


def test_an_upgrading_closing_or_closed_session_is_not_writable() -> None:
    session = polling()
    session.get_request(0.0)
    assert session.websocket_request(1.0) is WebSocketVerdict.PROBE
    assert not session.writable  # an upgrade in progress
    session.probe(PROBE, 1.0)
    session.probe(UPGRADE, 1.0)
    assert session.writable  # the websocket carries it now
    session.close(CloseReason.SERVER_DISCONNECT, 2.0)
    assert not session.writable  # closing
    session.bad_input()
    assert not session.writable  # closed


# -- a held opening (a cluster without sticky sessions) --------------------------------

HOLDING = replace(CONFIG, hold=0.3)


def held() -> Session:
    return Session(
        "n.s", protocol=4, transport=Transport.POLLING, config=HOLDING, now=0.0, held=True
    )


def test_rule_a_held_session_keeps_its_messages_until_the_hold_ends() -> None:
    session = held()
    assert session.held and session.deadline == 0.3
    assert session.receive(msg("0"), 0.1) is None  # the CONNECT: kept, not handed up
    assert session.receive(msg(b"\x01"), 0.1) is None
    assert session.receive(NOOP, 0.1) is None
    session.tick(0.2)
    assert not session.release_due
    session.tick(0.3)
    assert session.release_due and session.held
    assert session.release() == ["0", b"\x01"]
    assert not session.held and not session.release_due
    assert session.receive(msg("2"), 0.4) == "2"  # handed up from now on
    assert session.release() == []


def test_a_held_session_released_by_its_own_websocket() -> None:
    session = held()
    session.receive(msg("0"), 0.0)
    upgraded(session)
    assert session.held  # the driver releases it as its websocket takes over
    assert session.release() == ["0"]
    assert session.hand_over() is None


def test_a_held_session_handed_over_leaves_nothing_behind() -> None:
    session = held()
    session.receive(msg("0"), 0.0)
    assert session.get_request(0.0) is PollVerdict.SERVE
    session.send([msg("queued")])
    assert session.poll_answer(0.0) == [msg("queued")]  # taken, in flight
    session.send([msg("later")])
    upgraded(session)
    assert session.hand_over() == (["0"], [msg("later")])
    assert session.closed and session.close_reason is CloseReason.HANDED_OVER
    assert session.deadline == math.inf
    assert session.hand_over() is None  # once
    assert not session.held and session.release() == []


def test_a_pending_get_of_a_handed_over_session_gets_a_noop() -> None:
    session = held()
    assert session.get_request(0.0) is PollVerdict.SERVE
    assert session.hand_over() == ([], [])
    assert session.poll_answer(0.0) == [NOOP]


def test_a_session_whose_hold_ended_is_not_handed_over() -> None:
    session = held()
    session.tick(0.3)
    assert session.hand_over() is None  # the driver is opening it here
    assert not session.closed


def test_a_held_session_that_closes_keeps_nothing_back() -> None:
    session = held()
    session.receive(msg("0"), 0.0)
    session.receive(CLOSE, 0.1)
    assert session.closed and not session.held
    assert session.release() == [] and session.hand_over() is None


def test_a_held_session_bounds_what_it_keeps() -> None:
    session = held()
    for n in range(HOLDING.max_buffer):
        session.receive(msg(str(n)), 0.0)
    with pytest.raises(RemoteProtocolError):
        session.receive(msg("one too many"), 0.0)
    assert session.close_reason is CloseReason.PROTOCOL_ERROR


def test_only_a_polling_session_with_a_hold_begins_held() -> None:
    with pytest.raises(LocalProtocolError):
        Session("n.s", protocol=4, transport=Transport.POLLING, config=CONFIG, now=0.0, held=True)
    with pytest.raises(LocalProtocolError):
        Session(
            "n.s", protocol=4, transport=Transport.WEBSOCKET, config=HOLDING, now=0.0, held=True
        )
