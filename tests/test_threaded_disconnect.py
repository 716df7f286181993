"""A client leaves while a plain ``def`` controller still runs in its worker thread.

A thread cannot be cancelled. The client must be forgotten all the same once
``DISCONNECT_GRACE`` is over: out of the tables, its ``on_disconnect`` run;
the thread's late result goes nowhere.
"""

from __future__ import annotations

import threading

import anyio
import pytest

import gosf
import gosf._socketio.socket
from gosf._socketio.workers import Workers
from tests.harness import serve_app, watch_attribute
from tests.sioclient import SioClient

pytestmark = pytest.mark.anyio

THREAD_BOUND = 10.0
"""Seconds the blocked controller waits for the test at most (it never should)."""


async def test_namespace_disconnect_during_a_blocked_thread_still_cleans_up(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gosf._socketio.socket, "DISCONNECT_GRACE", 0.2)
    workers = watch_attribute(monkeypatch, Workers, "running")
    app = gosf.App()
    started, release = threading.Event(), threading.Event()
    sockets: list[gosf.Socket] = []
    disconnected = anyio.Event()

    @app.listen("slow")
    def slow(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        sockets.append(client.socket)
        started.set()
        release.wait(THREAD_BOUND)
        return gosf.Message.success("late")

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(request.message.text)

    @app.on_disconnect
    async def gone(client: gosf.Client, request: gosf.Request) -> None:
        disconnected.set()

    namespace = app.server.namespace("/")
    try:
        async with serve_app(app) as host, SioClient.connect(host) as client:
            await client.ws.send('42100["slow",{}]')
            # A thread's event, waited for in another thread: bounded, not polled.
            assert await anyio.to_thread.run_sync(started.wait, THREAD_BOUND)
            await client.ws.send("41")  # leave the namespace; the session stays
            with anyio.fail_after(5):
                await disconnected.wait()
            assert app.clients == {}
            assert namespace.sockets == {}
            assert not release.is_set()  # all that while the thread was still blocked

            release.set()
            await workers.until(lambda: sockets[0].workers.running == 0)
            await client.ws.send("40")  # back in: answered before the next packet is read
            reply = await client.call("echo", {"text": "back"})
            assert reply == [{"success": True, "text": "back"}]
            assert client.events("slow") == []  # the late result was dropped
            assert client._acks == {}
    finally:
        release.set()
