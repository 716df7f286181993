"""examples/chat over loopback with python-socketio's client, and its static file server."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import socketio

from examples.chat.app import CLIENT_JS, MAX_TEXT, StaticFiles
from tests.conftest import Served

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

TIMEOUT = 5.0
_ids = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


def unique(prefix: str) -> str:
    """A name no other test uses (the server is shared by the module)."""
    return f"{prefix}{next(_ids)}"


class Peer:
    """A python-socketio client that records every event it gets."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self._arrived = anyio.Event()
        self.sio.on("*", self._record)

    async def _record(self, event: str, data: Any = None) -> None:
        self.events[event].append(data)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def call(self, endpoint: str, body: Any = None, **message: Any) -> Any:
        """A GOSF request; the ack it gets back."""
        payload = {**message, "body": body} if body is not None else message
        return await self.sio.call(endpoint, payload, timeout=TIMEOUT)

    async def join(self, name: str, room: str) -> Any:
        reply = await self.call("chat.join", {"name": name, "room": room})
        assert reply["success"], reply
        return reply

    async def wait_for(self, event: str, where: Callable[[Any], bool] = lambda data: True) -> Any:
        """The first ``event`` whose data satisfies ``where`` (waiting at most TIMEOUT)."""
        with anyio.fail_after(TIMEOUT):
            while True:
                for data in self.events[event]:
                    if where(data):
                        return data
                await self._arrived.wait()

    async def fence(self) -> None:
        """Return once every event sent to this client before now has been handled.

        Events and acks arrive in order on one connection, and the client handles
        them in order, so a round trip is a barrier.
        """
        await self.call("chat.nothing")  # unknown endpoint: a NOT_FOUND ack


@asynccontextmanager
async def peers(server: Served, count: int) -> AsyncIterator[list[Peer]]:
    """``count`` connected peers, disconnected on the way out."""
    made = [Peer() for _ in range(count)]
    try:
        for peer in made:
            await peer.sio.connect(server.url, transports=["websocket"], wait_timeout=TIMEOUT)
        yield made
    finally:
        with anyio.move_on_after(TIMEOUT, shield=True):
            for peer in made:
                await peer.sio.disconnect()


async def test_join_announces_to_the_others_and_lists_members(chat_server: Served) -> None:
    room, alice, bob = unique("room"), unique("alice"), unique("bob")
    async with peers(chat_server, 2) as (a, b):
        first = await a.join(alice, room)
        assert first == {
            "success": True,
            "body": {"name": alice, "room": room, "members": [alice]},
        }
        second = await b.join(bob, room)
        assert second["body"]["members"] == sorted([alice, bob])
        joined = await a.wait_for("chat.joined")
        assert joined == {"success": True, "body": {"name": bob, "room": room}}
        await b.fence()
        assert b.events["chat.joined"] == []  # a client broadcast skips the sender
        # GOSF: the reply also comes as an event named after the endpoint
        assert b.events["chat.join"] == [second]


async def test_say_reaches_the_room_but_not_the_sender_nor_other_rooms(
    chat_server: Served,
) -> None:
    room, other = unique("room"), unique("room")
    async with peers(chat_server, 3) as (a, b, c):
        await a.join(unique("alice"), room)
        await b.join(unique("bob"), room)
        await c.join(unique("carol"), other)
        reply = await a.call("chat.say", {"text": "hello, room"})
        said = {"from": reply["body"]["from"], "room": room, "text": "hello, room"}
        assert reply == {"success": True, "body": said}
        assert await b.wait_for("chat.message") == {"success": True, "body": said}
        await a.fence()
        await c.fence()
        assert a.events["chat.message"] == []
        assert c.events["chat.message"] == []
        assert a.events["chat.say"] == [reply]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "TEXT_REQUIRED"),
        ({"text": ""}, "TEXT_REQUIRED"),
        ({"text": "   "}, "TEXT_REQUIRED"),
        ({"text": 42}, "BAD_REQUEST"),  # not a string: the model refuses it
        ({"text": "x" * (MAX_TEXT + 1)}, "TEXT_TOO_LONG"),
    ],
)
async def test_say_validates_the_text(chat_server: Served, body: Any, code: str) -> None:
    room = unique("room")
    async with peers(chat_server, 2) as (a, b):
        await a.join(unique("alice"), room)
        await b.join(unique("bob"), room)
        reply = await a.call("chat.say", body)
        assert reply["success"] is False
        assert reply["text"] == code
        ok = await a.call("chat.say", {"text": "x" * MAX_TEXT})
        assert ok["success"] is True
        messages = [await b.wait_for("chat.message")]
        await b.fence()
        assert b.events["chat.message"] == messages  # the invalid one was not broadcast


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"room": "lobby"}, "NAME_REQUIRED"),
        ({"name": "", "room": "lobby"}, "NAME_REQUIRED"),
        ({"name": "a b", "room": "lobby"}, "NAME_INVALID"),
        ({"name": "x" * 33, "room": "lobby"}, "NAME_INVALID"),
        ({"name": "dave"}, "ROOM_REQUIRED"),
        ({"name": "dave", "room": "../etc"}, "ROOM_INVALID"),
    ],
)
async def test_join_validates_name_and_room(chat_server: Served, body: Any, code: str) -> None:
    async with peers(chat_server, 1) as (a,):
        reply = await a.call("chat.join", body)
        assert reply["success"] is False
        assert reply["text"] == code


async def test_requests_before_joining_fail(chat_server: Served) -> None:
    async with peers(chat_server, 1) as (a,):
        for endpoint, body in [
            ("chat.say", {"text": "hi"}),
            ("chat.whisper", {"to": "bob", "text": "hi"}),
            ("chat.leave", {}),
        ]:
            reply = await a.call(endpoint, body)
            assert reply == {"success": False, "text": "NOT_JOINED"}, endpoint
        bad = await a.sio.call("chat.say", "not a message", timeout=TIMEOUT)
        assert bad["success"] is False
        assert bad["text"] == "BAD_REQUEST"


async def test_whisper_reaches_every_device_of_its_target_only(chat_server: Served) -> None:
    room, elsewhere = unique("room"), unique("room")
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    async with peers(chat_server, 4) as (a, b, c_phone, c_laptop):
        await a.join(alice, room)
        await b.join(bob, room)
        await c_phone.join(carol, room)
        await c_laptop.join(carol, elsewhere)  # the same user, another device and room
        reply = await a.call("chat.whisper", {"to": carol, "text": "psst"})
        whispered = {"from": alice, "to": carol, "text": "psst"}
        assert reply == {"success": True, "body": whispered}
        for device in (c_phone, c_laptop):
            assert await device.wait_for("chat.whispered") == {"success": True, "body": whispered}
        await a.fence()
        await b.fence()
        assert a.events["chat.whispered"] == []
        assert b.events["chat.whispered"] == []

        missing = await a.call("chat.whisper", {"to": unique("nobody"), "text": "hello?"})
        assert missing["success"] is False
        assert missing["text"] == "USER_NOT_FOUND"
        empty = await a.call("chat.whisper", {"to": carol, "text": ""})
        assert empty["text"] == "TEXT_REQUIRED"


async def test_leave_and_disconnect_announce_departure(chat_server: Served) -> None:
    room = unique("room")
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    async with peers(chat_server, 3) as (a, b, c):
        await a.join(alice, room)
        await b.join(bob, room)
        await c.join(carol, room)

        assert await b.call("chat.leave", {}) == {"success": True}
        left = await a.wait_for("chat.left", lambda d: d["body"]["name"] == bob)
        assert left == {"success": True, "body": {"name": bob, "room": room, "reason": "left"}}
        # bob is out of the room and out of user-bob: nothing reaches him any more
        await a.call("chat.say", {"text": "bob is gone"})
        assert (await b.call("chat.whisper", {"to": alice, "text": "x"}))["text"] == "NOT_JOINED"
        assert (await a.call("chat.whisper", {"to": bob, "text": "x"}))["text"] == "USER_NOT_FOUND"
        await c.wait_for("chat.message")
        await b.fence()
        assert b.events["chat.message"] == []

        await c.sio.disconnect()
        gone = await a.wait_for("chat.left", lambda d: d["body"]["name"] == carol)
        assert gone["body"] == {"name": carol, "room": room, "reason": "disconnected"}
        rejoin = await b.join(bob, room)
        assert rejoin["body"]["members"] == sorted([alice, bob])


async def test_joining_another_room_leaves_the_first(chat_server: Served) -> None:
    first, second = unique("room"), unique("room")
    alice, bob = unique("alice"), unique("bob")
    async with peers(chat_server, 2) as (a, b):
        await a.join(alice, first)
        await b.join(bob, first)
        await b.join(bob, second)
        left = await a.wait_for("chat.left")
        assert left["body"] == {"name": bob, "room": first, "reason": "rejoined"}
        await a.call("chat.say", {"text": "still here?"})
        await b.fence()
        assert b.events["chat.message"] == []


# -- the static files -----------------------------------------------------------------


async def raw_get(server: Served, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as written (no client-side ``..`` normalisation)."""
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with anyio.fail_after(TIMEOUT):
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            await stream.send(request.encode())
            data = b""
            try:
                while chunk := await stream.receive():
                    data += chunk
            except anyio.EndOfStream:
                pass
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    "target",
    [
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/%2E%2E/%2E%2E/pyproject.toml",
        "/%2e%2e%2fpyproject.toml",
        "/..%2f..%2fpyproject.toml",
        "/..%5c..%5cpyproject.toml",
        "/static/../../pyproject.toml",
        "/../app.py",
        "/%2e%2e/app.py",
        "/%2e%2e/node_modules/socket.io-client/package.json",
        "//etc/passwd",
        "/.%2e/pyproject.toml",
        "/index.html%00.js",
        "/app.py",
    ],
)
async def test_static_refuses_path_traversal(chat_server: Served, target: str) -> None:
    status, body = await raw_get(chat_server, target)
    assert status in (400, 404), (target, status)
    assert b"[project]" not in body
    assert b"gosf" not in body


def test_static_locate_stays_inside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "static"
    root.mkdir()
    (root / "index.html").write_text("<p>hi</p>")
    (tmp_path / "secret.txt").write_text("secret")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    files = StaticFiles(root)
    assert files.locate("/") == (root / "index.html").resolve()
    for path in ["/../secret.txt", "/./index.html", "/a\\..\\secret.txt", "/escape.txt", "x"]:
        assert files.locate(path) is None, path


async def test_static_serves_the_page_and_the_client(chat_server: Served) -> None:
    async with httpx.AsyncClient(base_url=chat_server.url, timeout=TIMEOUT) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script src="/socket.io-client.js">' in page.text
        assert (await http.get("/index.html")).text == page.text

        script = await http.get("/chat.js")
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        style = await http.get("/chat.css")
        assert style.status_code == 200
        assert style.headers["content-type"] == "text/css; charset=utf-8"
        icon = await http.get("/favicon.svg")
        assert icon.headers["content-type"] == "image/svg+xml"
        # everything the page uses is the app's own: no inline code, no other origin
        assert page.headers["content-security-policy"].startswith("default-src 'self';")
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        assert "://" not in page.text

        head = await http.head("/")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == page.headers["content-length"]

        post = await http.post("/", content=b"x")
        assert post.status_code == 405
        assert post.headers["allow"] == "GET, HEAD"
        assert (await http.get("/nothing-here.html")).status_code == 404

        if not CLIENT_JS.is_file():
            pytest.skip(f"{CLIENT_JS} is missing: run scripts/install-test-deps")
        client = await http.get("/socket.io-client.js")
        assert client.status_code == 200
        assert client.headers["content-type"] == "text/javascript; charset=utf-8"
        assert client.content == CLIENT_JS.read_bytes()
