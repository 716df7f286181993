"""``tests/apps/recovery_app.py`` with a page that runs the stock socket.io v4
browser client, for the browser proof of connection state recovery
(tests/e2e/test_recovery_browser.py).

``/recovery.html?transports=websocket`` connects with reconnection on and
leaves in ``window.seen`` what happened to the socket (connects with their
id and ``recovered`` flag, disconnects with their reason) and in
``window.news`` every ``news`` event (its number and the type of its offset),
in the order they came. ``window.socket`` is the socket itself, for the test
to drive. The client script comes from tests/js/node_modules, not a CDN.
"""

from __future__ import annotations

from gosf import Receive, Scope, Send
from tests.apps.browser_app import CLIENTS
from tests.apps.recovery_app import asgi as recovery_asgi

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>gosf recovery check</title>
<script src="/v4.js"></script>
<script>
  const transports = new URLSearchParams(location.search).get("transports").split(",");
  window.seen = [];
  window.news = [];
  // Reconnection is the client's own: quick, and never given up while the test runs.
  const socket = io(location.origin, {
    transports,
    forceNew: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 500,
    randomizationFactor: 0,
    timeout: 2000,
  });
  window.socket = socket;
  socket.on("connect", () => seen.push({ connect: socket.id, recovered: socket.recovered }));
  socket.on("disconnect", (reason) => seen.push({ disconnect: reason }));
  socket.on("news", (n, offset) => news.push([n, typeof offset]));
</script>
"""


async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """The page and the client script over HTTP; everything else is the recovery app's."""
    path = scope.get("path")
    if scope["type"] != "http" or path not in ("/recovery.html", "/v4.js"):
        await recovery_asgi(scope, receive, send)
        return
    if path == "/recovery.html":
        body, kind = PAGE, b"text/html; charset=utf-8"
    else:
        body, kind = CLIENTS["/v4.js"].read_bytes(), b"text/javascript"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
    await send({"type": "http.response.body", "body": body})
