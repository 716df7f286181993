"""Microservices in process: gateway → service over gosf's client, under asyncio and trio."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import gosf
import gosf.testing
from gosf._application.microservice import RETRY_SHARE, next_pause

pytestmark = pytest.mark.anyio


def make_service() -> gosf.App:
    service = gosf.App(expose_meta=True, shutdown_grace=0.2)  # clients are services: meta travels

    @service.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        message = request.message
        return gosf.Message(success=True, text=message.text, meta=message.meta, body=message.body)

    @service.listen("slow")
    async def slow(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        await anyio.sleep(request.message.body.get("seconds", 10))
        return gosf.Message.success("late")

    @service.listen("nothing")
    async def nothing(client: gosf.Client, request: gosf.Request) -> None:
        return None

    @service.listen("hang-up")
    async def hang_up(client: gosf.Client, request: gosf.Request) -> None:
        client.disconnect()

    @service.listen("shout")
    async def shout(client: gosf.Client, request: gosf.Request) -> None:
        await service.broadcast("", "news", gosf.Message.success(request.message.text))

    @service.listen("record")
    async def record(client: gosf.Client, request: gosf.Request) -> None:
        RECORDED.append(request.message.text)

    return service


RECORDED: list[str] = []


@asynccontextmanager
async def connected(service_app: gosf.App, **options: Any) -> AsyncIterator[gosf.Microservice]:
    async with service_app.run():
        connector = gosf.testing.asgi_connector(service_app)
        async with gosf.Microservice(
            "utils", "testserver", 80, connector=connector, **options
        ) as ms:
            await ms.wait_connected(5)
            yield ms


async def test_call_keeps_meta_both_ways_and_binary(anyio_backend: str) -> None:
    async with connected(make_service()) as utils:
        request = gosf.Message(text="hi", meta={"trace": "t-1"}, body={"blob": b"\x00\x01"})
        answer = await utils.call("echo", request)
    assert answer.text == "hi"
    assert answer.meta == {"trace": "t-1"}
    assert answer.body == {"blob": b"\x00\x01"}


async def test_call_times_out_after_two_seconds_by_default(anyio_backend: str) -> None:
    async with connected(make_service()) as utils:
        started = anyio.current_time()
        with anyio.fail_after(10), pytest.raises(gosf.MicroserviceTimeout):
            await utils.call("slow", gosf.Message(body={"seconds": 10}))
        waited = anyio.current_time() - started
        assert 1.9 <= waited < 6  # GOSF's 2 s, give or take scheduling
        with pytest.raises(TimeoutError):  # a MicroserviceTimeout is a TimeoutError too
            await utils.call("slow", gosf.Message(body={"seconds": 10}), timeout=0.1)
        assert (await utils.call("echo", gosf.Message(text="after"))).text == "after"


async def test_no_answer_is_a_clear_error(anyio_backend: str) -> None:
    async with connected(make_service()) as utils:
        with pytest.raises(gosf.MicroserviceError, match="no message"):
            await utils.call("nothing", gosf.Message())
        failure = await utils.call("missing-endpoint", gosf.Message())
        assert failure == gosf.Message.failure("NOT_FOUND")


async def test_lob_and_listen(anyio_backend: str) -> None:
    service_app = make_service()
    heard: list[gosf.Message] = []
    got = anyio.Event()

    async def on_news(message: gosf.Message) -> None:
        heard.append(message)
        got.set()

    async with connected(service_app) as utils:
        utils.listen("news", on_news)
        await utils.lob("record", gosf.Message(text="fire and forget"))
        await utils.lob("shout", gosf.Message(text="extra"))
        with anyio.fail_after(5):
            await got.wait()
    assert heard == [gosf.Message.success("extra")]
    assert "fire and forget" in RECORDED


async def test_calls_fail_at_once_when_not_connected(anyio_backend: str) -> None:
    utils = gosf.Microservice("utils", "127.0.0.1", 1)
    assert not utils.connected
    with anyio.fail_after(1):
        with pytest.raises(gosf.MicroserviceUnavailable):
            await utils.call("echo", gosf.Message())
        with pytest.raises(gosf.MicroserviceUnavailable):
            await utils.lob("echo", gosf.Message())
    with pytest.raises(RuntimeError):
        utils.connect()


async def test_registry_on_an_app(anyio_backend: str) -> None:
    service_app = make_service()
    gateway = gosf.App()
    connector = gosf.testing.asgi_connector(service_app)
    utils = gateway.register_microservice("utils", "testserver", 80, connector=connector)
    assert gateway.get_microservice("utils") is utils
    assert gateway.get_microservice("nope") is None
    gateway.deregister_microservice("nope")  # unknown: a no-op
    with pytest.raises(ValueError):
        gateway.register_microservice("utils", "testserver", 81)

    @gateway.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        answer = await utils.call("echo", request.message.model_copy(update={"meta": {"m": 1}}))
        return gosf.Message.success(answer.text, {"meta_back": answer.meta})

    async with service_app.run(), gosf.testing.serve(gateway) as server:
        await utils.wait_connected(5)
        async with server.client() as browser:
            reply = await browser.request("echo", {"text": "via gateway"})
            assert reply == gosf.Message.success("via gateway", {"meta_back": {"m": 1}})
        gateway.deregister_microservice("utils")
        assert gateway.get_microservice("utils") is None
        await utils.wait_disconnected(5)
        assert not utils.connected
        with pytest.raises(gosf.MicroserviceUnavailable):
            await utils.call("echo", gosf.Message())


async def test_disconnect_stops_reconnecting_and_connect_resumes(anyio_backend: str) -> None:
    async with connected(make_service(), backoff=(0.01, 0.05)) as utils:
        with pytest.raises(TimeoutError):
            await utils.wait_disconnected(0.05)  # connected: it waits, bounded
        utils.disconnect()
        await utils.wait_disconnected(5)
        assert not utils.connected
        await utils.wait_disconnected(0)  # not connected: at once
        # Time passes on purpose: no reconnection within several backoff periods.
        await anyio.sleep(0.2)
        assert not utils.connected
        utils.connect()
        await utils.wait_connected(5)
        assert (await utils.call("echo", gosf.Message(text="back"))).text == "back"


async def test_wait_disconnected_sees_the_service_hang_up(anyio_backend: str) -> None:
    # A long first pause: the service stays down while the test looks.
    async with connected(make_service(), backoff=(5.0, 10.0)) as utils:
        await utils.lob("hang-up", gosf.Message())
        await utils.wait_disconnected(5)
        assert not utils.connected
        with pytest.raises(gosf.MicroserviceUnavailable):
            await utils.call("echo", gosf.Message())


# -- reconnecting ---------------------------------------------------------------------------


def test_the_retry_schedule_finds_a_service_soon_after_a_short_outage() -> None:
    """Simulated on the schedule alone: a service back after ``outage`` seconds is
    tried again within a quarter of the outage (``first`` at least) of its return,
    whatever the jitter; one dead for an hour is tried at most once per half of the
    longest pause once the pauses are capped."""
    first, longest = 0.2, 10.0

    def attempts(until: float, jitter: Callable[[], float]) -> list[float]:
        times, now = [], 0.0
        while now < until:
            times.append(now)
            now += next_pause(first, longest, now, jitter())
        times.append(now)
        return times

    rng = random.Random(12)
    for jitter in (lambda: 0.0, lambda: 1.0, rng.random):
        for outage in (0.5, 2.0, 5.0, 8.0, 30.0, 600.0):
            found = attempts(outage, jitter)[-1]
            assert found - outage <= max(first, outage * RETRY_SHARE), (outage, found)
        assert attempts(5.0, jitter)[-1] - 5.0 <= 1.25  # the outage of the report: 16.5 s then
        hour = attempts(3600.0, jitter)
        last_ten_minutes = [t for t in hour if t >= 3000.0]
        assert len(last_ten_minutes) <= 600 / (longest / 2) + 1
        assert all(b - a <= longest for a, b in itertools.pairwise(hour))


class Flaky:
    """A connector that refuses while ``down``, counting the attempts."""

    def __init__(self, service_app: gosf.App) -> None:
        self.connector = gosf.testing.asgi_connector(service_app)
        self.down = True
        self.attempts = 0
        self._tried = anyio.Event()

    def __call__(self, url: str, headers: Iterable[tuple[str, str]]) -> Any:
        self.attempts += 1
        self._tried.set()
        self._tried = anyio.Event()
        if self.down:
            raise ConnectionRefusedError(111, "refused by the test")
        return self.connector(url, headers)

    async def wait_attempts(self, count: int) -> None:
        while self.attempts < count:
            await self._tried.wait()


async def test_an_outage_is_logged_once_with_the_plan_and_once_when_it_is_over(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "gosf.microservice")
    service_app = make_service()
    flaky = Flaky(service_app)
    async with service_app.run():
        async with gosf.Microservice(
            "utils", "testserver", 80, connector=flaky, backoff=(0.01, 0.05)
        ) as utils:
            with anyio.fail_after(5):
                await flaky.wait_attempts(6)
            assert not utils.connected
            failed = flaky.attempts
            flaky.down = False
            await utils.wait_connected(5)
            assert (await utils.call("echo", gosf.Message(text="back"))).text == "back"

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    unreachable = [m for m in warnings if "unreachable" in m]
    assert len(unreachable) == 1, warnings
    assert "retrying in" in unreachable[0] and "at most 0.05s" in unreachable[0]
    back = [m for m in warnings if m.startswith("microservice utils is back")]
    assert len(back) == 1, warnings
    assert back[0].endswith(f"and {failed} failed attempt(s)"), back
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "still" in r.getMessage()]
    assert len(debug) >= 4
    assert utils.failed_attempts == 0  # (counted per outage)
