"""What a gosf app answers beside Socket.IO: a root page, a health endpoint, metrics.

Opening the URL a server prints shows a small page saying gosf is running and
where Socket.IO answers, instead of a bare 404; a load balancer asks the health
endpoint whether to send the process traffic.

:class:`Pages` is the ``other_app`` the app hands its Socket.IO server: the
server has routed the Socket.IO path and checked the ``Host`` (on every path)
before a request gets here. From there, in this order::

    <path>healthz (health_endpoint)  → the health endpoint, even with other_app
    <path>asyncapi.json (asyncapi_path) → the AsyncAPI document (JSON; ``.yaml``:
                                        YAML when PyYAML is installed), even with other_app
    <path>asyncapi (docs_path)        → the page that shows it, even with other_app
    <path>metrics (metrics_endpoint) → the Prometheus metrics, even with other_app
    anything, when other_app is given → other_app, <path> included: an app
                                        mounted there owns its own index
    <path> (root_page)                → the root page
    anything else                     → 404 (a websocket: closed, 1008)

Both answer GET and HEAD (the headers of the GET, no body), and 405 to any
other method. The health endpoint says ``{"status": "ok"}`` with 200 while
the app serves, and 503 with ``"draining"`` once it shuts down (new
connections are refused, in-flight requests finish) or ``"stopped"`` while
it is not running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from .._config import Config
from .._engineio.http import RequestBody
from ..types import ASGIApp, Receive, Scope, Send
from .asyncapi import to_json, to_yaml, yaml_available
from .docspage import docs_page

if TYPE_CHECKING:
    from .._socketio.prometheus import PrometheusMetrics

__all__ = ("Link", "Pages", "PagesHost", "Status")

Status = Literal["ok", "draining", "stopped"]
"""What the health endpoint reports: serving, shutting down, not running."""

READ_BODY_TIMEOUT = 5.0
"""Seconds a refused request's body may take to arrive before the
connection is given up (nothing here reads a body)."""

MAX_DISCARDED_BODY = 65536
"""Bytes of a refused request's body read and dropped to keep its connection."""

_HTML = b"text/html; charset=utf-8"
_JSON = b"application/json"
_YAML = b"application/yaml"

Page = Callable[[Config], tuple[int, bytes, bytes]]
"""A page: its status, body and content type."""


@dataclass(frozen=True)
class Link:
    """A link the root page shows: to a part of the app that is enabled."""

    title: str
    href: str


class PagesHost(Protocol):
    """What the pages need of their app (:class:`gosf.App` is one)."""

    @property
    def config(self) -> Config:
        """The app's configuration (replaced when the app is configured again)."""
        ...

    @property
    def status(self) -> Status:
        """Whether the app serves, drains or is not running."""
        ...

    def asyncapi(self) -> dict[str, Any]:
        """The app's AsyncAPI document."""
        ...

    @property
    def metrics(self) -> PrometheusMetrics | None:
        """The app's metrics (``None``: off)."""
        ...


class Pages:
    """The ASGI app serving the root page and the health endpoint, and passing
    everything else to ``other_app`` (see the module's docstring)."""

    def __init__(self, host: PagesHost, other_app: ASGIApp | None = None) -> None:
        self._host = host
        self.other_app = other_app
        self.links: list[Link] = []
        """What the root page links to, in order: each part of the app that has
        a page of its own adds its link here when it is enabled."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self._host.config
        path: str = scope.get("path", "")
        kind = scope["type"]
        page: Page | None = None
        if config.health_endpoint is not None and path == config.path + config.health_endpoint:
            page = self._health
        elif config.metrics_endpoint is not None and path == config.path + config.metrics_endpoint:
            metrics = self._host.metrics
            if metrics is not None and kind == "http":
                await metrics.app(path)(scope, receive, send)
                return
        elif path.startswith(config.path):
            page = self._described(config, path.removeprefix(config.path))
        if page is None:
            # Not one of gosf's own pages: the app it was given comes first,
            # then the root page.
            if self.other_app is not None:
                await self.other_app(scope, receive, send)
                return
            if config.root_page and path in (config.path, config.path.rstrip("/")):
                page = self._root
        if kind == "http":
            if page is None:
                await _answer(scope, receive, send, 404, b"Not Found")
            elif scope["method"] not in ("GET", "HEAD"):
                allow = [(b"allow", b"GET, HEAD")]
                await _answer(scope, receive, send, 405, b"Method Not Allowed", headers=allow)
            else:
                status, body, content_type = page(config)
                await _answer(scope, receive, send, status, body, content_type=content_type)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    def _health(self, config: Config) -> tuple[int, bytes, bytes]:
        status = self._host.status
        return (200 if status == "ok" else 503), orjson.dumps({"status": status}), _JSON

    def _root(self, config: Config) -> tuple[int, bytes, bytes]:
        links = list(self.links)
        if config.docs_path is not None:
            links.append(Link("API (AsyncAPI)", config.path + config.docs_path))
        return 200, root_page(config, links).encode(), _HTML

    def _described(self, config: Config, name: str) -> Page | None:
        """What answers ``name`` (the path under ``path``) among the pages that
        describe the app, if one does."""
        json_name = config.asyncapi_path
        if name == json_name:
            return self._asyncapi_json
        if json_name is not None and name == _yaml_name(json_name) and yaml_available():
            return self._asyncapi_yaml
        if name == config.docs_path:
            return self._docs
        return None

    def _asyncapi_json(self, config: Config) -> tuple[int, bytes, bytes]:
        return 200, to_json(self._host.asyncapi()), _JSON

    def _asyncapi_yaml(self, config: Config) -> tuple[int, bytes, bytes]:
        return 200, to_yaml(self._host.asyncapi()).encode(), _YAML

    def _docs(self, config: Config) -> tuple[int, bytes, bytes]:
        href = config.path + config.asyncapi_path if config.asyncapi_path else None
        return 200, docs_page(self._host.asyncapi(), href).encode(), _HTML


def _yaml_name(json_name: str) -> str:
    return json_name.removesuffix(".json") + ".yaml"


def root_page(config: Config, links: list[Link]) -> str:
    """The root page's HTML: gosf is running, where Socket.IO answers, and
    ``links`` (none: no list)."""
    socketio = escape(config.server_options().path + "/")
    parts = [
        "<!doctype html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>gosf</title>",
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;"
        "padding:0 1rem;color:#1d1d1f}code{background:#f0f0f3;padding:0 .25rem;"
        "border-radius:3px}</style></head>",
        "<body>",
        "<h1>gosf is running</h1>",
        f"<p>Socket.IO answers at <code>{socketio}</code>: "
        f'<code>io(url, {{ path: "{socketio}" }})</code></p>',
    ]
    if config.health_endpoint is not None:
        health = escape(config.path + config.health_endpoint)
        parts.append(f"<p>Health: <code>{health}</code></p>")
    if config.metrics_endpoint is not None:
        metrics = escape(config.path + config.metrics_endpoint)
        parts.append(f"<p>Metrics: <code>{metrics}</code></p>")
    if links:
        parts.append("<ul>")
        parts.extend(
            f'<li><a href="{escape(link.href)}">{escape(link.title)}</a></li>' for link in links
        )
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


async def _answer(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"text/plain; charset=UTF-8",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer once the request's body is read (as the Socket.IO path does:
    a server that closes a connection whose body is unread resets it, and the
    client never sees the answer); HEAD gets the headers of the GET alone."""
    all_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(headers or ()),
    ]
    request = RequestBody(receive)
    if not await request.discard(MAX_DISCARDED_BODY, READ_BODY_TIMEOUT):
        if request.left:
            return  # nobody to answer
        all_headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
