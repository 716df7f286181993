"""The server of tests/interop/test_admin_npm.py and tests/e2e/test_admin_ui.py:
a SocketIOServer with the Admin UI's protocol on ``/admin`` (user ``admin``,
password ``secret``) and the UI's files at ``/admin-ui/``.

Namespace ``"/"``: ``join(room)`` joins it and acks the socket's rooms,
``echo(x)`` acks ``x``, ``ping(x)`` sends ``pong`` with ``x`` to the caller.

``app`` is a GOSF app with the same login in its ``admin`` config key and the
broker ``GOSF_BROKER`` names (tests/interop/test_admin_cluster.py and
tests/e2e/test_admin_ui.py run two); its endpoint ``join`` joins the room the
message's text names.
"""

from __future__ import annotations

import os

import gosf
import gosf.admin

# Few rounds: the tests log in often, and the hash's cost is not under test.
PASSWORD_HASH = gosf.admin.hash_password("secret", rounds=4)

server = gosf.SocketIOServer(other_app=gosf.admin.AdminUI("/admin-ui"))
admin = gosf.admin.instrument(
    server, auth=gosf.admin.BasicAuth("admin", PASSWORD_HASH), server_id="gosf-test"
)
asgi = server.asgi


@server.on("join")
async def join(socket: gosf.Socket, room: str) -> list[str]:
    socket.join(room)
    return sorted(socket.rooms)


@server.on("echo")
async def echo(socket: gosf.Socket, value: object) -> object:
    return value


@server.on("ping")
async def ping(socket: gosf.Socket, value: object) -> None:
    await socket.emit("pong", value)


app = gosf.App(
    broker=os.environ.get("GOSF_BROKER"),
    admin={"username": "admin", "password_hash": PASSWORD_HASH},
)


@app.listen("join")
async def join_room(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    client.join(request.message.text)
    return gosf.Message.success(client.sid)
