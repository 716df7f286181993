"""The ported GOSF plugins (examples/plugins): the sample plugin and the message counter.

In memory, under asyncio and trio: hooks are run through ``app.hooks.run``
inside ``async with app.run()``, and one real ``util.echo`` request is served
(``gosf.testing.serve``) to bare websocket frames over the in-memory connector.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import orjson
import pytest

import gosf
import gosf.testing
from examples.plugins import MessageCounter, SamplePlugin
from tests.harness import Watch

pytestmark = pytest.mark.anyio

SAMPLE_LOGGER = "gosf.sample_plugin"
COUNTER_LOGGER = "gosf.message_counter"
ECHO_CYCLE = [
    "Request received for util.echo endpoint.",
    "Request for util.echo endpoint was processed by the controller.",
    "Response for util.echo endpoint is being prepared.",
    "Response for util.echo endpoint was sent.",
]


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == logger]


class _Notify(logging.Handler):
    def __init__(self, watch: Watch) -> None:
        super().__init__(logging.INFO)
        self._watch = watch

    def emit(self, record: logging.LogRecord) -> None:
        self._watch.notify()


@contextmanager
def logged(logger: str) -> Iterator[Watch]:
    """A :class:`Watch` told of every ``INFO`` record (or above) ``logger`` makes,
    meanwhile (the plugins report through their loggers)."""
    watch = Watch()
    handler = _Notify(watch)
    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.INFO)
    target.addHandler(handler)
    try:
        yield watch
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


def sample_app() -> gosf.App:
    app = gosf.App()
    app.register_plugin(SamplePlugin())

    @app.listen("util.echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        plugin = app.plugins["sample"]
        assert isinstance(plugin, SamplePlugin)
        return gosf.Message.success(plugin.echo(request.message.text))

    return app


# -- the sample plugin -----------------------------------------------------------------------


async def test_sample_plugin_logs_one_request_cycle_in_order(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SAMPLE_LOGGER)
    app = sample_app()
    with logged(SAMPLE_LOGGER) as logs:
        await served_echo(app, caplog, logs)
    assert lines(caplog, SAMPLE_LOGGER) == [
        "Client connected.",
        *ECHO_CYCLE,
        "Client disconnected.",
    ]
    assert not any(app.hooks.has(name) for name in ("on_connect", "on_after_response"))


async def served_echo(app: gosf.App, caplog: pytest.LogCaptureFixture, logs: Watch) -> None:
    """One ``util.echo`` request over a websocket, from connect to disconnect."""
    async with gosf.testing.serve(app) as server:  # app.run(): the plugins activate
        url = "http://testserver/socket.io/?EIO=4&transport=websocket"
        async with server.connector(url, []) as ws:  # bare frames, in memory
            with anyio.fail_after(10):
                opened = await ws.receive()
                assert isinstance(opened, str) and opened.startswith("0{")
                await ws.send("40")
                connected = await ws.receive()
                assert isinstance(connected, str) and connected.startswith("40{")
                await ws.send('421["util.echo",{"id":3,"text":"hi"}]')
                event = await ws.receive()
                ack = await ws.receive()
            reply = {"id": 3, "success": True, "text": "hi"}
            assert event == "42" + orjson.dumps(["util.echo", reply]).decode()
            assert ack == "431" + orjson.dumps([reply]).decode()
            # on_after_response runs once the ack was written: maybe after we read it.
            await logs.until(lambda: len(lines(caplog, SAMPLE_LOGGER)) >= 5)
        await logs.until(lambda: "Client disconnected." in lines(caplog, SAMPLE_LOGGER))


async def test_sample_plugin_hooks_registered_while_active(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=SAMPLE_LOGGER)
    app = gosf.App()
    app.register_plugin(SamplePlugin())
    client: Any = None  # the sample plugin's hooks never look at the client
    message = gosf.Message.success("x")
    request = gosf.Request("util.echo", gosf.Message(), client)

    async def run_all_hooks() -> None:
        await app.hooks.run("on_connect", client, request)
        await app.hooks.run("on_before_request", client, request)
        await app.hooks.run("on_after_request", client, request, None)
        await app.hooks.run("on_before_response", client, request, message)
        await app.hooks.run("on_after_response", client, request, message)
        await app.hooks.run("on_before_broadcast", "admin.register", "admin", message)
        await app.hooks.run("on_after_broadcast", "admin.register", "", message)
        await app.hooks.run("on_before_client_broadcast", client, "util.groupEcho", "", message)
        await app.hooks.run(
            "on_after_client_broadcast", client, "util.groupEcho", "testRoom", message
        )
        await app.hooks.run("on_disconnect", client, request)

    await run_all_hooks()  # not active yet: nothing registered
    async with app.run():
        await run_all_hooks()
    await run_all_hooks()  # deactivated: the hooks are gone
    assert lines(caplog, SAMPLE_LOGGER) == [
        "Client connected.",
        *ECHO_CYCLE,
        "Broadcast for admin.register endpoint is preparing to send to admin.",
        "Broadcast for admin.register endpoint was sent to all.",
        "Broadcast for util.groupEcho endpoint is preparing to send to all.",
        "Broadcast for util.groupEcho endpoint was sent to testRoom.",
        "Client disconnected.",
    ]


def test_sample_plugin_echo_returns_its_argument() -> None:
    plugin = SamplePlugin()
    assert plugin.echo("hi") == "hi"
    assert plugin.echo("") == ""
    assert plugin.echo("é ✓ 🎉") == "é ✓ 🎉"


# -- the message counter ------------------------------------------------------------------------


async def respond(app: gosf.App, count: int) -> None:
    """Run the after-response hook as ``count`` responded requests would."""
    client: Any = None
    request = gosf.Request("util.echo", gosf.Message(), client)
    for _ in range(count):
        await app.hooks.run("on_after_response", client, request, gosf.Message.success())


async def test_counter_counts_responses_and_reports_the_rate(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=COUNTER_LOGGER)
    interval = 0.05
    counter = MessageCounter(interval=interval)
    app = gosf.App()
    app.register_plugin(counter)
    with logged(COUNTER_LOGGER) as reported:
        async with app.run():
            await respond(app, 3)  # no checkpoint in between: all in the first window
            assert counter.total == 3
            await reported.until(lambda: counter.reports >= 1)
            first = counter.messages_per_second
            await reported.until(lambda: counter.reports >= 2)
            second = counter.messages_per_second  # nothing responded in that window
            await respond(app, 2)
    assert counter.total == 5
    # At least `interval` passed (give the clocks' resolution some slack), so
    # at most 3 / interval; positive since 3 responses were counted.
    assert 0 < first <= 3 / interval * 1.05
    assert second == 0.0
    reports = lines(caplog, COUNTER_LOGGER)
    assert reports[:2] == [f"Messages Per Second: {first:.2f}", "Messages Per Second: 0.00"]
    assert len(reports) == counter.reports


async def test_counter_task_stops_on_deactivate(anyio_backend: str) -> None:
    counter = MessageCounter(interval=0.05)
    app = gosf.App()
    app.register_plugin(counter)
    with logged(COUNTER_LOGGER) as reported:
        async with app.run():
            await reported.until(lambda: counter.reports >= 1)  # the loop runs
            assert counter.reporting
            await counter.deactivate(app)  # returns once the reporting loop has ended
            assert not counter.reporting
            reports = counter.reports
            await respond(app, 2)  # the hook is gone too
            await anyio.sleep(0.2)  # not a poll: four intervals pass, and no report may come
            assert counter.reports == reports
            assert counter.total == 0
    # app.run() deactivated it again (a no-op) and its task group, which owns
    # the loop, has exited.
    assert not counter.reporting
    assert not app.running


async def test_counter_stops_when_the_app_stops_and_reactivates(anyio_backend: str) -> None:
    counter = MessageCounter(interval=0.05)
    app = gosf.App()
    app.register_plugin(counter)
    with anyio.fail_after(10), logged(COUNTER_LOGGER) as reported:
        async with app.run():
            await reported.until(lambda: counter.reports >= 1)  # the loop runs
            assert counter.reporting
        assert not counter.reporting
        assert not app.hooks.has("on_after_response")
        before = counter.reports
        async with app.run():  # the same app started again activates it again
            await reported.until(lambda: counter.reports > before)
            assert counter.reporting
            await respond(app, 1)
        assert counter.total == 1
        assert not counter.reporting


async def test_counter_is_active_on_one_app_at_a_time(anyio_backend: str) -> None:
    counter = MessageCounter(interval=10)
    first, second = gosf.App(), gosf.App()
    first.register_plugin(counter)
    async with first.run():
        with pytest.raises(RuntimeError):
            counter.activate(second)


@pytest.mark.parametrize("interval", [0, -1.0])
def test_counter_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError):
        MessageCounter(interval=interval)


# -- registering plugins -------------------------------------------------------------------------


async def test_plugin_registration_errors(anyio_backend: str) -> None:
    app = gosf.App()
    sample = SamplePlugin()
    assert app.register_plugin(sample) is sample
    app.register_plugin(MessageCounter())
    assert set(app.plugins) == {"sample", "message-counter"}
    with pytest.raises(ValueError):
        app.register_plugin(SamplePlugin())  # a plugin named "sample" exists
    with pytest.raises(TypeError):
        app.register_plugin(object())  # type: ignore[arg-type]

    class Late:
        name = "late"

        def activate(self, app: gosf.App) -> None: ...

        def deactivate(self, app: gosf.App) -> None: ...

    async with app.run():
        with pytest.raises(RuntimeError):
            app.register_plugin(Late())
    assert "late" not in app.plugins
