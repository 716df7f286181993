"""gosf.testing: apps tested in process, no socket, under asyncio and trio."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import gosf
import gosf.testing

pytestmark = pytest.mark.anyio


def make_app() -> gosf.App:
    app = gosf.App()

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(request.message.text)

    @app.listen("join")
    async def join(client: gosf.Client, request: gosf.Request) -> None:
        client.join("room")
        await client.broadcast("room", "joined", gosf.Message.success(client.sid))

    @app.on_connect
    def check(client: gosf.Client, request: gosf.Request) -> None:
        if client.auth.get("token") == "bad":
            raise gosf.ConnectionRefused("UNAUTHORIZED", {"hint": "log in"})

    return app


@pytest.fixture
def gosf_app() -> gosf.App:
    return make_app()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("gosf.testing opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield


async def test_request_response_and_event(anyio_backend: str, no_network: None) -> None:
    async with gosf.testing.connect(make_app()) as client:
        reply = await client.request("echo", {"id": 5, "text": "hi"})
        assert reply == gosf.Message(id=5, success=True, text="hi")
        assert await client.next_event("echo") == reply
        assert await client.request("nope") == gosf.Message.failure("NOT_FOUND")


async def test_several_clients_and_broadcasts(
    anyio_backend: str, gosf_server: gosf.testing.TestServer
) -> None:
    async with gosf_server.client() as alice, gosf_server.client() as bob:
        await alice.request("join")
        await bob.request("join")
        assert await alice.next_event("joined") == gosf.Message.success(bob.sid)
        assert bob.events("joined") == []


async def test_refused_connection(anyio_backend: str, gosf_server: gosf.testing.TestServer) -> None:
    with pytest.raises(gosf.ConnectionRefused) as refused:
        async with gosf_server.client(auth={"token": "bad"}):
            pass
    assert refused.value.message == "UNAUTHORIZED"
    assert refused.value.data == {"hint": "log in"}


async def test_connect_raises_a_refusal_as_the_client_does(anyio_backend: str) -> None:
    # connect() used to raise it inside two exception groups (the app's task groups).
    with pytest.raises(gosf.ConnectionRefused) as refused:
        async with gosf.testing.connect(make_app(), auth={"token": "bad"}):
            pass
    assert refused.value.message == "UNAUTHORIZED"
    assert refused.value.data == {"hint": "log in"}


async def test_an_error_in_the_block_comes_out_as_itself(anyio_backend: str) -> None:
    app = make_app()
    with pytest.raises(LookupError, match="from the test"):
        async with gosf.testing.connect(app) as client:
            assert await client.request("echo", {"text": "x"}) == gosf.Message.success("x")
            raise LookupError("from the test")
    assert not app.running and not app.clients  # shut down cleanly first


async def test_an_app_that_checks_the_host_is_reached_by_a_name_it_accepts(
    anyio_backend: str,
) -> None:
    app = make_app()
    app.configure(rejectInvalidHostnames=True, valid_hostnames=["*.example.com"])
    async with gosf.testing.serve(app) as server:
        async with server.client() as client:  # Host: test.example.com
            assert await client.request("echo", {"text": "in"}) == gosf.Message.success("in")
        with pytest.raises(gosf.HandshakeError):
            async with server.client(host="evil.example"):
                pass


async def test_protocol_4_client_in_memory(
    anyio_backend: str, gosf_server: gosf.testing.TestServer
) -> None:
    async with gosf_server.client(protocol=4) as client:
        assert await client.request("echo", {"text": "v2"}) == gosf.Message.success("v2")
