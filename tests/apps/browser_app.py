"""A page that runs the stock socket.io browser clients (v4, and v2 as GOSF's docs use).

``/page.html?client=v2|v4&transports=polling,websocket`` connects with the
chosen client and transports, echoes a text and a binary blob through the
server's ``echo`` event (ack), and leaves what it saw in ``window.result``.
The client scripts come from tests/js/node_modules (npm ci), not a CDN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gosf
from gosf import Receive, Scope, Send

MODULES = Path(__file__).resolve().parent.parent / "js" / "node_modules"
CLIENTS = {
    "/v4.js": MODULES / "socket.io-client" / "dist" / "socket.io.min.js",
    "/v2.js": MODULES / "socket.io-client-v2" / "dist" / "socket.io.js",
}

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>gosf protocol check</title>
<script>
  const params = new URLSearchParams(location.search);
  document.write('<script src="/' + params.get("client") + '.js"><\\/script>');
</script>
<script>
  window.result = null;
  const transports = params.get("transports").split(",");
  const socket = io(location.origin, { transports, forceNew: true, reconnection: false });
  function echo() {
    const bytes = new Uint8Array([0, 1, 2, 127, 128, 255]);
    socket.emit("echo", { text: "h\\u00e9llo \\u2713", blob: bytes.buffer }, (reply) => {
      window.result = {
        text: reply.text,
        blob: Array.from(new Uint8Array(reply.blob)),
        transport: socket.io.engine.transport.name,
        // v2 over XHR2: binary payloads, not the base64 fallback
        binary: socket.io.engine.transport.supportsBinary ?? null,
      };
      socket.close();
    });
  }
  socket.on("connect", () => {
    const engine = socket.io.engine;
    if (transports.length > 1 && engine.transport.name !== "websocket") {
      engine.once("upgrade", echo);
    } else {
      echo();
    }
  });
  socket.on("connect_error", (error) => { window.result = { error: String(error) }; });
  socket.on("error", (error) => { window.result = { error: String(error) }; });
</script>
"""


async def pages(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/page.html":
        body, kind = PAGE, b"text/html; charset=utf-8"
    elif path in CLIENTS and CLIENTS[path].is_file():
        body, kind = CLIENTS[path].read_bytes(), b"text/javascript"
    else:
        body, kind = b"not found", b"text/plain"
    status = 404 if body == b"not found" else 200
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]}
    )
    await send({"type": "http.response.body", "body": body})


server = gosf.SocketIOServer(other_app=pages)


@server.on("echo")
async def echo(socket: gosf.Socket, data: Any) -> Any:
    return data


asgi = server
