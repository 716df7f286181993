"""A GOSF app in a namespace other than "/" (the ``namespace`` key): its
endpoints, hooks, broadcasts and rooms live there, "/" is not the app's, and
a microservice reaches such an app in its namespace."""

from __future__ import annotations

import anyio
import pytest

import gosf
import gosf.testing

pytestmark = pytest.mark.anyio


def api_app() -> gosf.App:
    app = gosf.App(namespace="/api")

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        client.join("echoers")
        return gosf.Message.success(request.message.text)

    @app.listen("shout")
    async def shout(client: gosf.Client, request: gosf.Request) -> None:
        await app.broadcast("echoers", "heard", request.message)

    return app


async def test_an_app_listens_in_its_namespace(anyio_backend: str) -> None:
    app = api_app()
    connected: list[str] = []

    @app.on_connect
    async def hello(client: gosf.Client, request: gosf.Request) -> None:
        connected.append(client.sid)

    with anyio.fail_after(10):
        async with gosf.testing.serve(app) as served, served.client() as client:
            assert client.namespace == "/api"
            reply = await client.request("echo", {"text": "hi"})
            assert reply is not None and reply.text == "hi"
            await client.send("shout", {"text": "all"})
            assert (await client.next_event("heard")).text == "all"
            assert [c.sid for c in app.members("echoers")] == [client.sid] == connected
            assert app.server.namespaces["/api"].sockets.keys() == {client.sid}
            assert app.server.namespaces["/"].sockets == {}


async def test_the_default_namespace_is_not_the_apps(anyio_backend: str) -> None:
    app = api_app()
    with anyio.fail_after(10):
        async with gosf.testing.serve(app) as served:
            sio = gosf.SocketIOClient()
            async with sio.connect(
                "http://testserver", path="/socket.io", connector=served.connector
            ):
                with pytest.raises(TimeoutError):
                    await sio.call("echo", {"text": "hi"}, timeout=0.2)


async def test_a_microservice_calls_an_app_in_its_namespace(anyio_backend: str) -> None:
    app = api_app()
    with anyio.fail_after(10):
        async with gosf.testing.serve(app) as served:
            service = gosf.Microservice(
                "api", "testserver", 80, namespace="/api", connector=served.connector
            )
            async with service:
                await service.wait_connected(5)
                answer = await service.call("echo", gosf.Message.success("ping"))
                assert answer.text == "ping"


def test_the_namespace_key_starts_with_a_slash() -> None:
    with pytest.raises(ValueError):
        gosf.Config(namespace="api")


async def test_the_cluster_helpers_act_in_the_apps_namespace(anyio_backend: str) -> None:
    """``cluster_rooms``, ``cluster_client_count`` and the commands on one client
    look in the app's namespace, not in "/" (where the client is unknown)."""
    app = api_app()
    with anyio.fail_after(10):
        async with gosf.testing.serve(app) as served, served.client() as client:
            await client.request("echo", {"text": "hi"})  # joins "echoers"
            assert await app.cluster_rooms() == {"echoers": 1}
            assert await app.cluster_client_count() == 1
            assert await app.join_client(client.sid, "pulled") is True
            assert {c.sid for c in app.members("pulled")} == {client.sid}
            assert await app.leave_client(client.sid, "pulled") is True
            assert app.members("pulled") == []
            assert await app.disconnect_client(client.sid) is True
