"""The adapter of a namespace, alone: rooms, the own-room rule and delivery, with
stand-in sockets and sessions (no event loop, no network)."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import pytest

from gosf._socketio.adapter import Adapter, to_engine
from gosf.brokers import Broadcast
from gosf.protocol.engineio import Packet as EnginePacket
from gosf.protocol.engineio import message


@dataclass(eq=False)
class Outlet:
    """A session that takes packets unless it is full."""

    full: bool = False
    writable: bool = True  # takes a volatile packet now
    got: list[list[EnginePacket]] = field(default_factory=list)

    def send_nowait(self, packets: list[EnginePacket]) -> bool:
        if self.full:
            return False
        self.got.append(packets)
        return True


@dataclass(eq=False)
class Member:
    sid: str
    connected: bool = True
    session: Outlet = field(default_factory=Outlet)


class Heard:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def joined(self, socket: Member, room: str) -> None:
        self.calls.append(("joined", socket.sid, room))

    def left(self, socket: Member, room: str) -> None:
        self.calls.append(("left", socket.sid, room))

    def published(self, namespace: str, duration: float, failed: bool) -> None:
        self.calls.append(("published", namespace, str(failed)))


def attached(*sids: str) -> tuple[Adapter[Member], list[Member]]:
    adapter: Adapter[Member] = Adapter("/")
    members = [Member(sid) for sid in sids]
    for member in members:
        adapter.attach(member)
    return adapter, members


PACKETS = [message('2["news"]')]


def test_an_attached_socket_is_in_its_own_room_without_a_set() -> None:
    adapter, (a,) = attached("a")
    assert adapter.rooms_of(a) == {"a"}
    assert adapter.members("a") == [a]
    assert adapter.rooms == {}  # found by its sid, not kept in a set


def test_a_room_named_by_a_sid_holds_its_owner_and_who_joined_it() -> None:
    adapter, (a, b) = attached("a", "b")
    adapter.add(b, "a")
    assert sorted(m.sid for m in adapter.members("a")) == ["a", "b"]
    adapter.remove(a, "a")  # the owner leaves its own room; b stays in it
    assert adapter.members("a") == [b]
    assert adapter.rooms_of(a) == frozenset()
    adapter.add(a, "a")
    assert adapter.rooms_of(a) == {"a"}


def test_observers_hear_of_changes_only() -> None:
    adapter, (a,) = attached("a")
    heard = adapter.observer = Heard()
    adapter.add(a, "red")
    adapter.add(a, "red")
    adapter.add(a, "a")
    adapter.remove(a, "blue")
    adapter.remove_all(a)
    adapter.remove_all(a)
    assert heard.calls == [("joined", "a", "red"), ("left", "a", "a"), ("left", "a", "red")]
    assert adapter.rooms == {} and adapter.rooms_of(a) == frozenset()


def test_a_detached_socket_keeps_its_rooms_until_it_leaves_them() -> None:
    adapter, (a,) = attached("a")
    adapter.add(a, "red")
    assert adapter.detach(a) and not adapter.detach(a)
    assert adapter.rooms_of(a) == {"a", "red"}  # what disconnect handlers see
    assert adapter.members() == []
    adapter.remove_all(a)
    assert adapter.rooms == {}


def test_a_cluster_command_cannot_take_a_socket_out_of_its_own_room() -> None:
    adapter, (a,) = attached("a")
    adapter.add(a, "red")
    adapter.remove_joined(a, "a")
    adapter.remove_joined(a, "red")
    assert adapter.rooms_of(a) == {"a"}


def test_delivery_reaches_each_connected_member_once_but_the_skipped() -> None:
    adapter, (a, b, c, d) = attached("a", "b", "c", "d")
    for member in (a, b, c):
        adapter.add(member, "red")
    adapter.add(a, "blue")
    c.connected = False
    d.session.full = True
    assert adapter.deliver(PACKETS, ("red", "blue", "d"), skip="b") == 1
    assert a.session.got == [PACKETS] and b.session.got == c.session.got == []
    assert adapter.deliver(PACKETS, None, None) == 2  # d's buffer is full: not counted


def test_room_counts_leave_out_the_rooms_named_by_sids() -> None:
    adapter, (a, b) = attached("a", "b")
    adapter.add(a, "red")
    adapter.add(b, "red")
    adapter.add(b, "a")
    b.connected = False
    assert adapter.room_counts() == {"red": 1}


@pytest.mark.anyio
async def test_a_broadcast_goes_to_the_broker_and_one_from_it_is_delivered(
    anyio_backend: str,
) -> None:
    published: list[Broadcast] = []

    async def publish(broadcast: Broadcast) -> None:
        published.append(broadcast)

    adapter: Adapter[Member] = Adapter("/chat", publish)
    a = Member("a")
    adapter.attach(a)
    with anyio.fail_after(5):
        await adapter.publish(['2/chat,["x"]'], ("red",), "b")
    assert published == [Broadcast("/chat", ('2/chat,["x"]',), ("red",), "b")]
    assert adapter.receive(Broadcast("/chat", ('2/chat,["x"]',), None, None)) == 1
    assert a.session.got == [to_engine(['2/chat,["x"]'])]


def test_skip_rooms_leave_out_their_members_whichever_target_room_they_are_in() -> None:
    adapter, (a, b, c, d) = attached("a", "b", "c", "d")
    for member in (a, b, c):
        adapter.add(member, "red")
    adapter.add(b, "muted")
    adapter.add(d, "muted")
    # Node's to("red").except("muted"): b is in both, so it is left out.
    assert adapter.deliver(PACKETS, ("red",), None, skip_rooms=("muted",)) == 2
    assert [m.sid for m in (a, b, c, d) if m.session.got] == ["a", "c"]
    # Everyone but the members of two rooms, a sid's own room among them.
    assert adapter.deliver(PACKETS, None, None, skip_rooms=("muted", "a")) == 1
    assert len(c.session.got) == 2 and len(a.session.got) == 1
    # Rooms nobody is in leave nobody out; skip still applies.
    assert adapter.deliver(PACKETS, None, "c", skip_rooms=("nobody",)) == 3


def test_a_volatile_delivery_skips_and_counts_members_that_cannot_take_it_now() -> None:
    adapter, (a, b, c) = attached("a", "b", "c")
    b.session.writable = False
    c.connected = False  # not a member that could take anything: not a drop
    assert adapter.deliver(PACKETS, None, None, volatile=True) == 1
    assert a.session.got == [PACKETS] and b.session.got == [] and c.session.got == []
    assert adapter.volatile_dropped == 1
    assert adapter.deliver(PACKETS, None, None) == 2  # not volatile: queued behind the rest
    assert b.session.got == [PACKETS] and adapter.volatile_dropped == 1


@pytest.mark.anyio
async def test_skip_rooms_and_volatile_cross_the_broker_and_apply_on_arrival(
    anyio_backend: str,
) -> None:
    published: list[Broadcast] = []

    async def publish(broadcast: Broadcast) -> None:
        published.append(broadcast)

    adapter: Adapter[Member] = Adapter("/chat", publish)
    with anyio.fail_after(5):
        await adapter.publish(['2/chat,["x"]'], None, None, skip_rooms=("muted",), volatile=True)
    assert published == [
        Broadcast("/chat", ('2/chat,["x"]',), None, None, skip_rooms=("muted",), volatile=True)
    ]
    other, (a, b, c) = attached("a", "b", "c")
    other.add(b, "muted")
    c.session.writable = False
    assert other.receive(published[0]) == 1
    assert a.session.got and not b.session.got and not c.session.got
    assert other.volatile_dropped == 1


@pytest.mark.parametrize("parts", [["text"], ["text", b"attachment"]])
def test_to_engine_wraps_every_part(parts: list[str | bytes]) -> None:
    assert to_engine(parts) == [message(part) for part in parts]
