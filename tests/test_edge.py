"""The edge of the server: what it needs installed, and the requests it refuses.

Raw HTTP requests and websocket handshakes against a loopback hypercorn, under
asyncio and trio: origins (CORS), host names (``rejectInvalidHostnames``) and
the bodies of refused POSTs.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import h11
import orjson
import pytest
import trustme
from anyio.abc import SocketStream

import gosf
from tests.conftest import ROOT
from tests.harness import serve_app

WITHOUT_SNIFFIO = textwrap.dedent(
    """
    import sys

    sys.modules["sniffio"] = None  # an install without it: `import sniffio` fails

    import anyio

    import gosf
    import gosf.testing

    app = gosf.App()


    def join(client, request):
        client.join("threaded")  # from a worker thread, carried to the loop's
        return gosf.Message.success(body={"rooms": sorted(client.rooms)})


    app.listen("join", join)


    async def main():
        with anyio.fail_after(10):
            async with gosf.testing.connect(app) as client:
                reply = await client.request("join", {})
        assert reply.body == {"rooms": ["threaded"]}, reply
        print("served")


    anyio.run(main)
    """
)


def test_gosf_runs_without_sniffio() -> None:
    # anyio 4.16 no longer depends on sniffio: `pip install gosf` may not
    # bring it. (trio still does, so this runs under asyncio only.)
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SNIFFIO],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "served"


# -- raw requests ---------------------------------------------------------------------


@dataclass
class Answer:
    """An HTTP answer read off the wire; ``closed``: the server closed the connection after it."""

    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool = False


class RawHTTP:
    """HTTP/1.1 requests on one loopback connection, with exactly the headers given (h11)."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._h11 = h11.Connection(h11.CLIENT)

    @classmethod
    @asynccontextmanager
    async def connect(cls, host: str) -> AsyncIterator[RawHTTP]:
        address, port = host.rsplit(":", 1)
        stream = await anyio.connect_tcp(address, int(port))
        try:
            yield cls(stream)
        finally:
            await stream.aclose()

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes = b"",
        *,
        length: int | None = None,
    ) -> Answer:
        """Send a request (``length``: the Content-Length it claims, else its
        body's) while reading the answer: the server may answer before the body
        is all sent. Sending stops, without error, when the server closes."""
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
        head = {**headers, "content-length": str(len(body) if length is None else length)}
        request = h11.Request(method=method, target=target, headers=list(head.items()))
        try:
            await self._stream.send(self._h11.send(request) or b"")
        except (anyio.BrokenResourceError, OSError):
            return Answer(0, {}, b"", closed=True)  # the server had closed the connection

        async def send_body() -> None:
            # In pieces, as a client would, so the server can answer first.
            try:
                for start in range(0, len(body), 65536):
                    data = h11.Data(data=body[start : start + 65536])
                    await self._stream.send(self._h11.send(data) or b"")
                if length is None:
                    await self._stream.send(self._h11.send(h11.EndOfMessage()) or b"")
            except (anyio.BrokenResourceError, OSError, h11.LocalProtocolError):
                pass  # the server closed the connection: the answer tells

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_body)
            answer = await self._answer()
        return answer

    async def _answer(self) -> Answer:
        status, headers, body = 0, {}, b""
        while True:
            event = self.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self._stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    data = b""
                self._h11.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {key.decode(): value.decode() for key, value in event.headers}
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return Answer(status, headers, body)
            elif isinstance(event, h11.ConnectionClosed):
                return Answer(status, headers, body, closed=True)

    def next_event(self) -> object:
        try:
            return self._h11.next_event()
        except h11.RemoteProtocolError:  # closed in the middle of an answer
            return h11.ConnectionClosed()

    async def wait_closed(self) -> None:
        """Return once the server has closed the connection (what comes before is dropped)."""
        try:
            while True:
                await self._stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass


async def ws_handshake(host: str, target: str, headers: dict[str, str]) -> int:
    """The status a websocket handshake with exactly these headers gets."""
    address, port = host.rsplit(":", 1)
    lines = [
        f"GET {target} HTTP/1.1",
        *(f"{name}: {value}" for name, value in headers.items()),
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==",
    ]
    async with await anyio.connect_tcp(address, int(port)) as stream:
        await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            head += await stream.receive()
    return int(head.split(b" ", 2)[1])


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``app`` under a loopback hypercorn of the running backend, as ``hypercorn
    myapp:app`` serves it (not through ``gosf.startup``); yields ``host:port``."""
    with anyio.fail_after(30):
        async with serve_app(app) as host:
            yield host


EIO4 = "/socket.io/?EIO=4&transport=polling"
EIO4_WS = "/socket.io/?EIO=4&transport=websocket"


async def polling_handshake(http: RawHTTP, headers: dict[str, str]) -> Answer:
    """A polling handshake; a session it opens is closed at once (a CLOSE packet),
    so the app has no client to wait for when it stops."""
    answer = await http.request("GET", EIO4, headers)
    if answer.status == 200:
        sid = orjson.loads(answer.body[1:])["sid"]
        closed = await http.request("POST", f"{EIO4}&sid={sid}", headers, b"1")
        assert closed.status == 200, closed
    return answer


# -- Origin (CORS) --------------------------------------------------------------------

GOOD = "https://good.example"
EVIL = "https://evil.example"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "query",
    [
        "EIO=5&transport=polling",
        "EIO=4&transport=polling&j=1",
        "EIO=4&transport=carrier-pigeon",
        "EIO=4&transport=polling&sid=unknown",
    ],
)
async def test_a_refused_origin_gets_no_cors_headers_even_for_a_bad_query(
    anyio_backend: str, query: str
) -> None:
    app = gosf.App({"enableCORS": GOOD})
    async with serving(app) as host, RawHTTP.connect(host) as http:
        for method in ("GET", "POST"):
            answer = await http.request(
                method, f"/socket.io/?{query}", {"host": host, "origin": EVIL}, b"1:6"
            )
            assert answer.status == 403, answer
            assert orjson.loads(answer.body)["message"] == "Forbidden"
            assert not [name for name in answer.headers if name.startswith("access-control")]
        websocket = f"/socket.io/?{query.replace('polling', 'websocket')}"
        assert await ws_handshake(host, websocket, {"host": host, "origin": EVIL}) == 403


@pytest.mark.anyio
async def test_an_allowed_origin_still_gets_cors_headers_on_a_bad_query(
    anyio_backend: str,
) -> None:
    app = gosf.App({"enableCORS": GOOD})
    async with serving(app) as host, RawHTTP.connect(host) as http:
        answer = await http.request("GET", "/socket.io/?EIO=5", {"host": host, "origin": GOOD})
        assert answer.status == 400
        assert answer.headers["access-control-allow-origin"] == GOOD


@pytest.mark.anyio
async def test_the_apps_own_origin_passes_an_origin_list(anyio_backend: str) -> None:
    # The page the app serves itself talks to it from its own origin: it is
    # not cross-origin, whatever enableCORS lists.
    app = gosf.App({"enableCORS": [GOOD]})
    async with serving(app) as host, RawHTTP.connect(host) as http:
        own = {"host": host, "origin": f"http://{host}"}
        answer = await polling_handshake(http, own)
        assert answer.status == 200, answer
        assert answer.body.startswith(b"0{")
        assert await ws_handshake(host, EIO4_WS, own) == 101
        assert await ws_handshake(host, EIO4_WS, {"host": host, "origin": EVIL}) == 403


@pytest.mark.anyio
async def test_a_refused_origin_is_logged_once_with_the_setting_to_change(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gosf")
    app = gosf.App({"enableCORS": GOOD})
    async with serving(app) as host, RawHTTP.connect(host) as http:
        for _ in range(3):
            answer = await http.request("GET", EIO4, {"host": host, "origin": EVIL})
            assert answer.status == 403
        assert await ws_handshake(host, EIO4_WS, {"host": host, "origin": EVIL}) == 403
    refusals = [r for r in caplog.records if r.name.startswith("gosf") and EVIL in r.getMessage()]
    warnings = [r for r in refusals if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert "enableCORS" in warnings[0].getMessage() and GOOD in warnings[0].getMessage()
    assert len(refusals) == 4  # the repeats at DEBUG


def test_refusal_warnings_are_bounded_against_many_distinct_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gosf._logs import WarnOnce

    logger = logging.getLogger("gosf.test_edge")
    warn = WarnOnce(logger, "refused %r", limit=3)
    with caplog.at_level(logging.DEBUG, logger="gosf.test_edge"):
        for origin in ["a", "b", "a", "c", "d", "e", "a"]:
            warn(origin)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    warnings = [message for level, message in levels if level == "WARNING"]
    assert warnings[:3] == ["refused 'a'", "refused 'b'", "refused 'c'"]
    assert len(warnings) == 4 and "DEBUG only" in warnings[3]  # once, at the limit
    assert len(levels) == 7  # every refusal is logged, past the limit at DEBUG


# -- Host (rejectInvalidHostnames) ----------------------------------------------------


@pytest.mark.anyio
async def test_valid_hostnames_hold_however_the_app_is_served(anyio_backend: str) -> None:
    async def page(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})

    app = gosf.App(
        {"rejectInvalidHostnames": True, "valid_hostnames": ["good.example", "*.good.example"]},
        other_app=page,
    )
    async with serving(app) as host, RawHTTP.connect(host) as http:
        port = host.rsplit(":", 1)[1]
        for name in ("good.example", f"good.example:{port}", "API.Good.Example"):
            answer = await polling_handshake(http, {"host": name})
            assert answer.status == 200, (name, answer)
            assert await ws_handshake(host, EIO4_WS, {"host": name}) == 101
        for name in ("evil.example", host, "good.example.evil.example"):
            answer = await polling_handshake(http, {"host": name})
            assert answer.status == 421, (name, answer)
            assert orjson.loads(answer.body)["detail"] == "invalid hostname"
            assert (await http.request("GET", "/", {"host": name})).status == 421  # any path
            assert await ws_handshake(host, EIO4_WS, {"host": name}) == 421


@pytest.mark.anyio
async def test_the_certificate_names_the_valid_hosts(anyio_backend: str, tmp_path: Path) -> None:
    cert = trustme.CA().issue_cert("localhost", "127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    config = {
        "secure": True,
        "ssl-cert": str(cert_file),
        "ssl-key": str(key_file),
        "rejectInvalidHostnames": True,
    }
    # Plain HTTP here (TLS is the server's business): the check is the app's.
    async with serving(gosf.App(config)) as host, RawHTTP.connect(host) as http:
        assert (await polling_handshake(http, {"host": host})).status == 200
        assert (await polling_handshake(http, {"host": "localhost"})).status == 200
        assert (await polling_handshake(http, {"host": "evil.example"})).status == 421


def test_an_unreadable_certificate_is_an_error_when_the_app_is_built(tmp_path: Path) -> None:
    config = {
        "secure": True,
        "ssl-cert": str(tmp_path / "missing.pem"),
        "ssl-key": str(tmp_path / "missing.key"),
        "rejectInvalidHostnames": True,
    }
    with pytest.raises(ValueError, match="cannot read certificate"):
        gosf.App(config)


# -- the body of a refused POST -------------------------------------------------------


def no_busy_resource_errors(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if "BusyResourceError" in r.getMessage()], caplog.text
    assert not [
        r for r in caplog.records if r.exc_info and "BusyResource" in repr(r.exc_info[1])
    ], caplog.text


@pytest.mark.anyio
async def test_a_refused_post_is_answered_after_its_body_and_keeps_the_connection(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = gosf.SocketIOServer(max_payload=1_000_000)
    body = b"x" * 600_000  # well within max_payload, far more than one read
    async with serving(server.asgi) as host, RawHTTP.connect(host) as http:
        with anyio.fail_after(10):
            answer = await http.request("POST", f"{EIO4}&sid=gone", {"host": host}, body)
            assert answer.status == 400, answer
            assert orjson.loads(answer.body)["message"] == "Session ID unknown"
            assert "connection" not in answer.headers
            # The same connection serves the next request: the body was read.
            again = await http.request("GET", EIO4, {"host": host})
            assert again.status == 200, again
    no_busy_resource_errors(caplog)


@pytest.mark.anyio
async def test_a_refused_post_larger_than_max_payload_is_answered_then_closed(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = gosf.SocketIOServer(max_payload=64 * 1024)
    sent = b"x" * (2 * 64 * 1024)  # of a body that claims far more
    async with serving(server.asgi) as host, RawHTTP.connect(host) as http:
        with anyio.fail_after(10):
            answer = await http.request(
                "POST", f"{EIO4}&sid=gone", {"host": host}, sent, length=10_000_000
            )
            assert answer.status == 400, answer
            assert orjson.loads(answer.body)["message"] == "Session ID unknown"
            assert answer.headers.get("connection") == "close"
            await http.wait_closed()
    no_busy_resource_errors(caplog)


@pytest.mark.anyio
async def test_a_refused_post_whose_client_left_gets_no_answer(anyio_backend: str) -> None:
    # An answer sent while the ASGI server closes the connection of a client
    # that left races the close: hypercorn's trio worker then fails the send
    # with trio.BusyResourceError (logged as "Error in ASGI Framework").
    server = gosf.SocketIOServer()
    incoming: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": b"x" * 1024, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/socket.io/",
        "query_string": b"EIO=4&transport=polling&sid=gone",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", b"10000000")],
    }
    with anyio.fail_after(5):
        async with server.running():
            await server(scope, receive, send)
    assert sent == []


@pytest.mark.anyio
async def test_clients_hanging_up_on_a_large_refused_post_log_no_error(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Under hypercorn's trio worker, gosf answering while such a client's
    # connection closes failed the send with trio.BusyResourceError ("Error in
    # ASGI Framework"), for a good share of these clients.
    caplog.set_level(logging.DEBUG)
    server = gosf.SocketIOServer()
    async with serving(server.asgi) as host:
        address, port = host.rsplit(":", 1)
        head = (
            f"POST {EIO4}&sid=gone HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5000000\r\n\r\n"
        ).encode()
        for _ in range(20):
            async with await anyio.connect_tcp(address, int(port)) as stream:
                await stream.send(head)
        # The server still serves (and has seen every hang-up before this answer).
        async with RawHTTP.connect(host) as http:
            assert (await http.request("GET", EIO4, {"host": host})).status == 200
    no_busy_resource_errors(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
