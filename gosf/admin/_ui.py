"""The Admin UI's files, served by gosf: an ASGI app for a path prefix.

The files are those of npm ``@socket.io/admin-ui`` (``ui/dist``) with local
copies of the fonts its page loads from public CDNs (npm ``@mdi/font`` and
``@fontsource/roboto``), so the UI works on a machine with no internet. They
ship in gosf's wheel, in ``gosf/admin/ui`` with their licences;
``scripts/build-admin-ui`` makes that folder from the npm packages.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import anyio

from ..types import ASGIApp, Receive, Scope, Send

__all__ = ("UI_DIR", "AdminUI")

UI_DIR = Path(__file__).resolve().parent / "ui"
"""Where the Admin UI's files are."""

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
}


class AdminUI:
    """An ASGI app serving the Admin UI at ``path`` (``/admin-ui/`` by default)
    and passing every other request to ``other_app`` (a 404 without one).

    The page asks for the server's URL and the namespace (``/admin``) to
    connect to; it may be served by another process than the one it
    connects to. Mount it with ``SocketIOServer(other_app=AdminUI())``, or
    with the ``admin_ui_path`` key of a :class:`gosf.App`'s config.

    Raises:
        ValueError: ``path`` does not start with ``/``.
        FileNotFoundError: ``directory`` has no ``index.html``.
    """

    def __init__(
        self, path: str = "/admin-ui", other_app: ASGIApp | None = None, directory: Path = UI_DIR
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"the Admin UI's path starts with '/': {path!r}")
        if not (directory / "index.html").is_file():
            raise FileNotFoundError(f"no Admin UI in {directory} (run scripts/build-admin-ui)")
        self.path = path.rstrip("/")
        self.other_app = other_app
        self.directory = directory.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == self.path or path.startswith(self.path + "/")):
            if self.other_app is not None:
                await self.other_app(scope, receive, send)
            elif scope["type"] == "http":
                await _respond(send, 404, b"Not Found", "text/plain; charset=utf-8")
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed", "text/plain; charset=utf-8")
            return
        if path == self.path:
            # The page's assets are relative to it: it must end with a slash.
            await _respond(send, 308, b"", None, [(b"location", (self.path + "/").encode())])
            return
        file = self._file(path[len(self.path) + 1 :] or "index.html")
        if file is None:
            await _respond(send, 404, b"Not Found", "text/plain; charset=utf-8")
            return
        body = await anyio.Path(file).read_bytes()
        kind = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
        # The built files carry a hash in their names: they never change.
        cache = b"no-cache" if file.suffix == ".html" else b"public, max-age=86400"
        await _respond(
            send,
            200,
            b"" if scope["method"] == "HEAD" else body,
            kind,
            [(b"cache-control", cache)],
            length=len(body),
        )

    def _file(self, relative: str) -> Path | None:
        """The file ``relative`` names inside the UI's folder, or ``None`` (also
        for ``..`` leading out of it)."""
        candidate = (self.directory / relative).resolve()
        if not candidate.is_relative_to(self.directory) or not candidate.is_file():
            return None
        return candidate


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str | None,
    headers: list[tuple[bytes, bytes]] | None = None,
    length: int | None = None,
) -> None:
    all_headers = list(headers or ())
    if content_type is not None:
        all_headers.append((b"content-type", content_type.encode()))
    all_headers.append((b"content-length", str(len(body) if length is None else length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
