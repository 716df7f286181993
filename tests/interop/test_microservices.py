"""Microservices across processes: the example pair, and a service that dies and comes back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import socketio

import gosf
import gosf.testing
from tests.conftest import SERVERS, Served, free_port, serving, start_server, stop_server

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


@pytest.fixture(params=SERVERS)
def utils_service(request: pytest.FixtureRequest) -> Iterator[Served]:
    # the fault test kills it on purpose
    with serving(str(request.param), "tests.apps.utils_service:app", must_survive=False) as server:
        yield server


def make_gateway(port: int) -> tuple[gosf.App, gosf.Microservice]:
    gateway = gosf.App()
    utils = gateway.register_microservice("utils", "127.0.0.1", port, backoff=(0.05, 0.3))

    @gateway.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        try:
            answer = await utils.call("echo", request.message)
        except gosf.MicroserviceError:
            return gosf.Message.failure("UTILS_UNAVAILABLE")
        return gosf.Message.success(answer.text)

    @gateway.listen("local")
    async def local(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success("served by the gateway itself")

    return gateway, utils


async def test_service_dies_mid_traffic_and_comes_back(
    anyio_backend: str, utils_service: Served
) -> None:
    gateway, utils = make_gateway(utils_service.port)
    async with gosf.testing.serve(gateway) as server, server.client() as browser:
        await utils.wait_connected(15)
        assert await browser.request("echo", {"text": "one"}) == gosf.Message.success("one")

        failures: list[BaseException] = []

        async def in_flight() -> None:
            try:
                await utils.call("slow", gosf.Message(body={"seconds": 30}))
            except gosf.MicroserviceError as exc:
                failures.append(exc)

        with anyio.fail_after(5):  # the call must fail well within its 2 s limit + slack
            async with anyio.create_task_group() as tg:
                tg.start_soon(in_flight)
                await anyio.sleep(0.3)
                utils_service.process.kill()
        assert len(failures) == 1
        assert isinstance(failures[0], gosf.MicroserviceUnavailable | gosf.MicroserviceTimeout)
        await anyio.to_thread.run_sync(utils_service.process.wait)

        # the gateway keeps serving its own clients, and fails fast for the service
        assert await browser.request("local") == gosf.Message.success(
            "served by the gateway itself"
        )
        with anyio.fail_after(3):
            assert await browser.request("echo", {"text": "x"}) == gosf.Message.failure(
                "UTILS_UNAVAILABLE"
            )

        # the service comes back on the same port: the gateway reconnects by itself
        revived = start_server(
            utils_service.kind, "tests.apps.utils_service:app", port=utils_service.port
        )
        try:
            await utils.wait_connected(15)
            assert await browser.request("echo", {"text": "two"}) == gosf.Message.success("two")
        finally:
            stop_server(revived.process)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # python-socketio drives the gateway
async def test_example_gateway_forwards_to_the_service(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_port = free_port()
    monkeypatch.setenv("UTILS_PORT", str(service_port))
    service = start_server("hypercorn-trio", "examples.microservice.service:app", port=service_port)
    gateway = start_server("hypercorn-asyncio", "examples.microservice.gateway:app")
    try:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(gateway.url, transports=["websocket"], wait_timeout=5)
        try:
            with anyio.fail_after(20):
                reply: Any = {}
                while reply.get("text") != "Echo this...":  # until the gateway has connected
                    reply = await client.call("echo", {"text": "Echo this..."}, timeout=5)
                    if not reply.get("success"):
                        await anyio.sleep(0.1)
        finally:
            await client.disconnect()
        assert reply == {
            "success": True,
            "text": "Echo this...",
            "body": {"via": "utils", "traced": True},
        }
    finally:
        stop_server(gateway.process)
        stop_server(service.process)
