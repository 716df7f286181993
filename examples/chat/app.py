"""A chat room on gosf: endpoints, rooms, client and global broadcasts.

Serve it with ``python -m examples.chat`` or any ASGI server::

    npm ci --prefix examples/chat        # the stock socket.io browser client
    hypercorn examples.chat.app:app --worker-class trio --bind 127.0.0.1:8000

then open http://127.0.0.1:8000/ in two browser tabs.

The protocol, in GOSF's terms (every request is a GOSF message; the data is in
its ``body``, short error codes come back in ``text``):

==============  =========================  ==========================================
endpoint        request ``body``           effect
==============  =========================  ==========================================
chat.join       ``{name, room}``           joins ``room-<room>`` and ``user-<name>``;
                                           the room gets ``chat.joined``
chat.say        ``{text}``                 the others in the room get ``chat.message``
chat.whisper    ``{to, text}``             every device of ``to`` gets
                                           ``chat.whispered`` (a global broadcast to
                                           the room ``user-<to>``)
chat.leave      (none)                     leaves both rooms; the room gets ``chat.left``
==============  =========================  ==========================================

A disconnect counts as leaving. Each endpoint's reply comes back, as GOSF does
it, both as the ack and as an event named after the endpoint; pushes use
other event names so a client never mistakes one for the other.

The endpoints are typed: each declares its request body's model
(``gosf.Request[JoinIn]``) and its reply's (``-> Joined | Message``), and the
app declares what it broadcasts (``app.broadcasts``), so the AsyncAPI
document (``/asyncapi.json``, shown at ``/asyncapi``) describes all of it. A
body of the wrong shape (``{"text": 42}``) is ``BAD_REQUEST`` with the
errors; the app's own codes say what a well-formed body got wrong.

The page (``static/``: ``index.html``, ``chat.css``, ``chat.js``, the stock
socket.io client; nothing from another origin) shows the connection's state,
turns each failure code into a sentence, and joins its room again whenever
the connection comes back: the server keeps rooms per connection, so after a
restart it knows nobody until they rejoin. docs/chat.md walks through both
sides.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

import gosf
from gosf import Client, Message, Request

__all__ = ("MAX_TEXT", "StaticFiles", "app")

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
CLIENT_JS = HERE / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

MAX_TEXT = 500
"""Longest chat message, in characters."""

NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
"""What a user name and a room name may be (they become parts of room names)."""


# -- static files ---------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
CSP = b"default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
"""The page's own files only: no inline script or style, nothing from another origin."""


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


class StaticFiles:
    """A tiny ASGI app serving the files under ``root``, plus a few named ``extra`` ones.

    ``/`` serves ``index.html``; ``extra`` maps a URL path to a file anywhere
    (``{"/socket.io-client.js": .../socket.io.min.js}``). Only ``GET`` and
    ``HEAD``; anything that is not a regular file inside ``root`` (``..``,
    hidden names, symlinks out of ``root``, directories) is a 404.
    """

    def __init__(self, root: Path, extra: dict[str, Path] | None = None) -> None:
        self.root = root.resolve()
        self.extra = dict(extra or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            response = _Response(405, b"Method Not Allowed\n")
            await _send(send, response, head=False, extra=[(b"allow", b"GET, HEAD")])
            return
        response = await anyio.to_thread.run_sync(self._load, scope["path"])
        await _send(send, response, head=method == "HEAD")

    def locate(self, path: str) -> Path | None:
        """The file ``path`` (a decoded URL path) names, or None: never one outside ``root``."""
        if path in self.extra:
            return self.extra[path]
        if path == "/" or path == "":
            path = "/index.html"
        parts = path.split("/")
        if parts[0] != "" or "\\" in path or "\0" in path:
            return None
        parts = parts[1:]
        if any(not part or part.startswith(".") for part in parts):
            return None  # "..", ".", hidden files, "//"
        candidate = self.root.joinpath(*parts).resolve()
        if not candidate.is_relative_to(self.root):
            return None
        return candidate

    def _load(self, path: str) -> _Response:
        file = self.locate(path)
        if file is None or not file.is_file():
            if path in self.extra:
                hint = f"{path} is missing: run `npm ci --prefix examples/chat`\n"
                return _Response(404, hint.encode())
            return _Response(404, b"Not Found\n")
        content_type = CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream")
        return _Response(200, file.read_bytes(), content_type)


async def _send(
    send: Send, response: _Response, *, head: bool, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-cache"),
        (b"content-security-policy", CSP),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})


static = StaticFiles(STATIC_DIR, {"/socket.io-client.js": CLIENT_JS})

app = gosf.App(other_app=static)
"""The chat app: Socket.IO on ``/socket.io/``, the page everywhere else."""
app.info.update(title="gosf chat", version="1.0.0", description="A chat room on gosf.")


# -- the bodies -----------------------------------------------------------------------
#
# Fields default to "" so that a missing one gets the app's own code
# (NAME_REQUIRED...) rather than pydantic's "Field required": the page turns
# those codes into sentences.

NAME_RULE = "1-32 characters: letters, digits, _ . -"


class JoinIn(BaseModel):
    """Who joins which chat room."""

    name: str = Field("", description=f"The user's name: {NAME_RULE}")
    room: str = Field("", description=f"The chat room: {NAME_RULE}")


class SayIn(BaseModel):
    """A line for the room."""

    text: str = Field("", description=f"Up to {MAX_TEXT} characters, not blank")


class WhisperIn(BaseModel):
    """A line for one user."""

    to: str = Field("", description="The user's name")
    text: str = Field("", description=f"Up to {MAX_TEXT} characters, not blank")


class Member(BaseModel):
    """Someone in a chat room."""

    name: str
    room: str


class Joined(Member):
    """The room joined, and who is there (the joiner included)."""

    members: list[str]


class Left(Member):
    """Someone left: ``left``, ``rejoined`` (another room) or ``disconnected``."""

    reason: str


class _FromSomeone(BaseModel):
    # "from" is a Python keyword: the field is from_, read and sent as "from".
    model_config = ConfigDict(serialize_by_alias=True)

    from_: str = Field(alias="from", description="The sender's name")
    text: str


class Said(_FromSomeone):
    """A line said in a room."""

    room: str


class Whispered(_FromSomeone):
    """A line whispered to one user."""

    to: str


app.broadcasts("chat.joined", Member, doc="Someone joined the room.")
app.broadcasts("chat.message", Said, doc="A line said in the room, to the others there.")
app.broadcasts("chat.whispered", Whispered, doc="A line whispered to every device of a user.")
app.broadcasts("chat.left", Left, doc="Someone left the room.")


# -- helpers --------------------------------------------------------------------------


def room_of(room: str) -> str:
    """The Socket.IO room of a chat room."""
    return f"room-{room}"


def user_room(name: str) -> str:
    """The room every connection of user ``name`` is in (GOSF's ``user-<id>`` best practice)."""
    return f"user-{name}"


def members(room: str) -> list[str]:
    """The names of the users in chat room ``room``, sorted, each once."""
    return sorted({client.state["name"] for client in app.members(room_of(room))})


def _name(value: str, key: str) -> str | Message:
    if not value.strip():
        return Message.failure(f"{key.upper()}_REQUIRED")
    if not NAME.fullmatch(value):
        return Message.failure(f"{key.upper()}_INVALID", {"reason": NAME_RULE})
    return value


def _text(text: str) -> str | Message:
    if not text.strip():
        return Message.failure("TEXT_REQUIRED")
    if len(text) > MAX_TEXT:
        return Message.failure("TEXT_TOO_LONG", {"max": MAX_TEXT})
    return text


async def _depart(client: Client, reason: str) -> None:
    """Take ``client`` out of its chat room and tell the others there."""
    name = client.state.pop("name", None)
    room = client.state.pop("room", None)
    if name is None or room is None:
        return
    client.leave(room_of(room))
    client.leave(user_room(name))
    left = Left(name=name, room=room, reason=reason)
    await client.broadcast(room_of(room), "chat.left", Message.success(body=left.model_dump()))


# -- endpoints ------------------------------------------------------------------------


@app.listen("chat.join")
async def join(client: Client, request: Request[JoinIn]) -> Joined | Message:
    """Join chat room ``body.room`` as ``body.name``; replies with the room's members.

    Fails with NAME_REQUIRED, NAME_INVALID, ROOM_REQUIRED or ROOM_INVALID.
    """
    name, room = _name(request.body.name, "name"), _name(request.body.room, "room")
    if isinstance(name, Message):
        return name
    if isinstance(room, Message):
        return room
    if "name" in client.state:
        await _depart(client, "rejoined")
    client.join(room_of(room))
    client.join(user_room(name))
    client.state.update(name=name, room=room)
    joined = Member(name=name, room=room)
    await client.broadcast(room_of(room), "chat.joined", Message.success(body=joined.model_dump()))
    return Joined(name=name, room=room, members=members(room))


@app.listen("chat.say")
async def say(client: Client, request: Request[SayIn]) -> Said | Message:
    """Send ``body.text`` to the others in the room; the sender gets it back as confirmation.

    Fails with NOT_JOINED, TEXT_REQUIRED or TEXT_TOO_LONG.
    """
    if "room" not in client.state:
        return Message.failure("NOT_JOINED")
    text = _text(request.body.text)
    if isinstance(text, Message):
        return text
    said = Said.model_validate(
        {"from": client.state["name"], "room": client.state["room"], "text": text}
    )
    body = said.model_dump()
    await client.broadcast(room_of(said.room), "chat.message", Message.success(body=body))
    return said


@app.listen("chat.whisper")
async def whisper(client: Client, request: Request[WhisperIn]) -> Whispered | Message:
    """Send ``body.text`` to every connection of user ``body.to``, wherever they chat.

    Fails with NOT_JOINED, TO_REQUIRED, TO_INVALID, TEXT_REQUIRED, TEXT_TOO_LONG or
    USER_NOT_FOUND.
    """
    if "name" not in client.state:
        return Message.failure("NOT_JOINED")
    to = _name(request.body.to, "to")
    if isinstance(to, Message):
        return to
    text = _text(request.body.text)
    if isinstance(text, Message):
        return text
    if not app.members(user_room(to)):
        return Message.failure("USER_NOT_FOUND", {"to": to})
    whispered = Whispered.model_validate({"from": client.state["name"], "to": to, "text": text})
    body = whispered.model_dump()
    await app.broadcast(user_room(to), "chat.whispered", Message.success(body=body))
    return whispered


@app.listen("chat.leave")
async def leave(client: Client, request: Request) -> Message:
    """Leave the chat room (the connection stays open). Fails with NOT_JOINED."""
    if "room" not in client.state:
        return Message.failure("NOT_JOINED")
    await _depart(client, "left")
    return Message.success()


@app.on_disconnect
async def disconnected(client: Client, request: Request) -> None:
    """A closed tab leaves its room like ``chat.leave`` does."""
    await _depart(client, "disconnected")
