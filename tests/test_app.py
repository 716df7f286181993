"""The GOSF request/response cycle, hooks, rooms and broadcasts, end to end.

An App runs in memory (``gosf.testing.serve``) on the test's backend (asyncio
and trio), driven by gosf's own client through ``tests.harness.WireClient``,
which also keeps the packets it received: the tests assert on the argument
lists acks and events carried, as a client on the network sees them.
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import gosf
import gosf.testing
from gosf.testing import TestServer
from tests.harness import WireClient

pytestmark = pytest.mark.anyio


def serving(app: gosf.App) -> AbstractAsyncContextManager[TestServer]:
    return gosf.testing.serve(app)


def connect(
    server: TestServer, auth: dict[str, Any] | None = None
) -> AbstractAsyncContextManager[WireClient]:
    return WireClient(server).connect(auth=auth)


def echo_app(**config: Any) -> gosf.App:
    app = gosf.App(config)

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(request.message.text)

    return app


async def test_response_arrives_as_ack_and_as_event_with_ids_echoed(anyio_backend: str) -> None:
    async with serving(echo_app()) as server, connect(server) as client:
        request = {"id": 7, "guid": "g-1", "uuid": "u-1", "text": "Hello world."}
        ack = await client.call("echo", request)
        event = await client.next_event("echo")
    expected = {"id": 7, "guid": "g-1", "uuid": "u-1", "success": True, "text": "Hello world."}
    assert ack == [expected]
    assert event == [expected]


async def test_controller_ids_win_and_none_sends_no_event(anyio_backend: str) -> None:
    app = gosf.App()

    @app.listen("own-id")
    async def own_id(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message(id=99, success=True)

    @app.listen("quiet")
    async def quiet(client: gosf.Client, request: gosf.Request) -> None:
        return None

    async with serving(app) as server, connect(server) as client:
        assert await client.call("own-id", {"id": 1, "guid": "g"}) == [
            {"id": 99, "guid": "g", "success": True}
        ]
        assert await client.call("quiet", {"id": 2}) == []
        await client.emit("echo-less-request-without-ack", {})
        assert await client.call("own-id", {}) == [{"id": 99, "success": True}]
        assert client.events("quiet") == []


async def test_request_without_ack_gets_the_event(anyio_backend: str) -> None:
    async with serving(echo_app()) as server, connect(server) as client:
        await client.emit("echo", {"id": 3, "text": "no ack"})
        assert await client.next_event("echo") == [{"id": 3, "success": True, "text": "no ack"}]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("a string",), "expected a message object, got str"),
        ((["a", "list"],), "expected a message object, got list"),
        ((None,), "expected a message object, got null"),
        ((), "expected a message object, got null"),
        (({"id": "seven"},), "id: "),
        (({"id": 1.5},), "id: "),
        (({"id": True},), "id: "),
        (({"body": [1, 2]},), "body: "),
        (({"meta": 3},), "meta: "),
        (({"text": 5},), "text: "),
    ],
)
async def test_bad_requests_get_bad_request(
    anyio_backend: str, args: tuple[Any, ...], reason: str
) -> None:
    async with serving(echo_app()) as server:
        async with connect(server) as offender, connect(server) as bystander:
            (ack,) = await offender.call("echo", *args)
            assert ack["success"] is False
            assert ack["text"] == "BAD_REQUEST"
            assert ack["body"]["reason"].startswith(reason)
            assert await offender.next_event("echo") == [ack]
            # the offender and everyone else are still served
            assert (await offender.call("echo", {"text": "ok"}))[0]["success"] is True
            assert (await bystander.call("echo", {"text": "ok"}))[0]["success"] is True


async def test_unknown_endpoint_is_not_found(anyio_backend: str) -> None:
    async with serving(echo_app()) as server, connect(server) as client:
        assert await client.call("nope", {"id": 1}) == [{"success": False, "text": "NOT_FOUND"}]
        await client.emit("nope", {})
        assert (await client.call("echo", {"text": "still"}))[0]["text"] == "still"
        assert client.events("nope") == []


async def test_failing_controller_gets_internal_error_without_details(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = echo_app()

    @app.listen("boom")
    async def boom(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        raise RuntimeError("secret detail")

    @app.listen("wrong-type")
    async def wrong_type(client: gosf.Client, request: gosf.Request) -> Any:
        return {"success": True}

    caplog.set_level(logging.ERROR, logger="gosf")
    async with serving(app) as server, connect(server) as client:
        assert await client.call("boom", {"id": 4}) == [
            {"id": 4, "success": False, "text": "INTERNAL_ERROR"}
        ]
        assert (await client.call("wrong-type", {}))[0]["text"] == "INTERNAL_ERROR"
        assert (await client.call("echo", {"text": "alive"}))[0]["text"] == "alive"
        sid = client.sid
    assert "secret detail" in caplog.text
    assert "'boom'" in caplog.text and sid in caplog.text


async def test_sync_controller_runs_in_a_worker_thread(anyio_backend: str) -> None:
    app = gosf.App()
    threads: list[str] = []

    def blocking(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        threads.append(threading.current_thread().name)
        return gosf.Message.success("from a thread")

    app.listen("blocking", blocking)
    async with serving(app) as server, connect(server) as client:
        ack = await client.call("blocking", {})
    assert ack == [{"success": True, "text": "from a thread"}]
    assert threads and threads[0] != threading.main_thread().name


@pytest.mark.parametrize("expose", [False, True])
async def test_meta_reaches_clients_only_when_exposed(anyio_backend: str, expose: bool) -> None:
    app = gosf.App(expose_meta=expose)

    @app.listen("meta")
    async def meta(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        await app.broadcast("", "news", gosf.Message(success=True, meta={"secret": 1}))
        return gosf.Message(success=True, meta={"secret": 1}, body={"public": 2})

    async with serving(app) as server, connect(server) as client:
        (ack,) = await client.call("meta", {})
        (news,) = await client.next_event("news")
    assert ack["body"] == {"public": 2}
    assert ("meta" in ack) is expose
    assert ("meta" in news) is expose


async def test_all_ten_hooks_fire_in_order_with_gosf_arguments(anyio_backend: str) -> None:
    app = gosf.App()
    seen: list[tuple[Any, ...]] = []
    disconnected = anyio.Event()

    def record(name: str) -> Any:
        def hook(*args: Any) -> None:
            seen.append((name, *args))
            if name == "on_disconnect":
                disconnected.set()

        return hook

    for name in (
        "on_connect",
        "on_disconnect",
        "on_before_request",
        "on_after_request",
        "on_before_response",
        "on_after_response",
        "on_before_broadcast",
        "on_after_broadcast",
        "on_before_client_broadcast",
        "on_after_client_broadcast",
    ):
        getattr(app, name)(record(name))

    @app.listen("shout")
    async def shout(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        await client.broadcast("lobby", "heard", gosf.Message.success("to others"))
        await app.broadcast("", "news", gosf.Message.success("to all"))
        return gosf.Message.success("done")

    async with serving(app) as server:
        async with connect(server) as client:
            await client.call("shout", {"id": 1})
            sid = client.sid
            await client.drop()  # no goodbye: the app sees the transport close
        with anyio.fail_after(5):
            await disconnected.wait()

    names = [entry[0] for entry in seen]
    assert names == [
        "on_connect",
        "on_before_request",
        "on_before_client_broadcast",
        "on_after_client_broadcast",
        "on_before_broadcast",
        "on_after_broadcast",
        "on_after_request",
        "on_before_response",
        "on_after_response",
        "on_disconnect",
    ]
    by_name = {entry[0]: entry[1:] for entry in seen}
    client_obj = by_name["on_connect"][0]
    assert isinstance(client_obj, gosf.Client) and client_obj.sid == sid
    assert by_name["on_connect"][1].endpoint == "connect"
    request = by_name["on_before_request"][1]
    assert (by_name["on_before_request"][0], request.endpoint) == (client_obj, "shout")
    assert by_name["on_before_client_broadcast"][:3] == (client_obj, "heard", "lobby")
    assert by_name["on_before_broadcast"][:2] == ("news", "")  # (endpoint, room): not swapped
    response = by_name["on_after_request"][2]
    assert response.text == "done" and response.id == 1
    assert by_name["on_after_response"] == (client_obj, request, response)
    assert by_name["on_disconnect"][1].reason == "transport close"


async def test_async_hooks_run_in_sequence(anyio_backend: str) -> None:
    app = echo_app()
    order: list[str] = []

    async def slow(client: gosf.Client, request: gosf.Request) -> None:
        await anyio.sleep(0.05)
        order.append("slow")

    def fast(client: gosf.Client, request: gosf.Request) -> None:
        order.append("fast")

    app.on_before_request(slow)
    app.on_before_request(fast)
    async with serving(app) as server, connect(server) as client:
        await client.call("echo", {})
    assert order == ["slow", "fast"]


async def test_hooks_added_and_removed_while_serving_take_effect(anyio_backend: str) -> None:
    # The cycle skips a hook with no callbacks by looking at the live lists:
    # one added (or removed) between two requests counts at the next.
    app = echo_app()
    seen: list[str] = []

    def before(client: gosf.Client, request: gosf.Request) -> None:
        seen.append(f"before {request.message.text}")

    after_ran = anyio.Event()

    async def after(client: gosf.Client, request: gosf.Request, response: gosf.Message) -> None:
        seen.append(f"after {response.text}")
        after_ran.set()

    async with serving(app) as server, connect(server) as client:
        await client.call("echo", {"text": "one"})
        app.hooks.add("on_before_request", before)
        app.hooks.add("on_after_response", after)
        await client.call("echo", {"text": "two"})
        with anyio.fail_after(5):
            await after_ran.wait()  # on_after_response runs once the response is written
        app.hooks.remove("on_before_request", before)
        app.hooks.remove("on_after_response", after)
        await client.call("echo", {"text": "three"})
    assert seen == ["before two", "after two"]


async def test_plain_hook_returning_an_awaitable_is_awaited(anyio_backend: str) -> None:
    # A plain function may hand back a coroutine (a lambda, a partial of an
    # async function): it is awaited; only its None result skips the check.
    app = echo_app()
    order: list[str] = []

    async def note(text: str) -> None:
        await anyio.lowlevel.checkpoint()
        order.append(text)

    app.on_before_request(lambda client, request: note("awaited"))
    app.on_after_request(lambda client, request, response: None)
    async with serving(app) as server, connect(server) as client:
        ack = await client.call("echo", {"text": "hi"})
    assert ack == [{"success": True, "text": "hi"}]
    assert order == ["awaited"]


async def test_response_with_bytes_arrives_as_event_and_ack(anyio_backend: str) -> None:
    # The response is encoded once for both packets; bytes take the
    # attachments' way for each of them.
    app = gosf.App()

    @app.listen("blob")
    async def blob(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success("b", {"data": b"\x00\xff", "n": [1, b"x"]})

    async with serving(app) as server, connect(server) as client:
        ack = await client.call("blob", {"id": 3})
        event = await client.next_event("blob")
    expected = {
        "id": 3,
        "success": True,
        "text": "b",
        "body": {"data": b"\x00\xff", "n": [1, b"x"]},
    }
    assert ack == [expected]
    assert event == [expected]


async def test_rooms_persist_across_requests_and_leave_all(anyio_backend: str) -> None:
    app = gosf.App()

    @app.listen("join")
    async def join(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        client.join(request.message.text)
        return gosf.Message.success(body={"rooms": sorted(client.rooms)})

    @app.listen("leave-all")
    async def leave_all(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        client.leave_all()
        client.leave_all()  # safe on a client in no room
        return gosf.Message.success(body={"rooms": sorted(client.rooms)})

    async with serving(app) as server, connect(server) as client:
        assert (await client.call("join", {"text": "a"}))[0]["body"] == {"rooms": ["a"]}
        assert (await client.call("join", {"text": "b"}))[0]["body"] == {"rooms": ["a", "b"]}
        assert (await client.call("leave-all", {}))[0] == {"success": True, "body": {"rooms": []}}


async def test_client_broadcast_skips_sender_global_broadcast_does_not(anyio_backend: str) -> None:
    app = gosf.App()

    @app.listen("join")
    async def join(client: gosf.Client, request: gosf.Request) -> None:
        client.join("room")

    @app.listen("tell-room")
    async def tell_room(client: gosf.Client, request: gosf.Request) -> None:
        await client.broadcast("room", "said", gosf.Message.success(request.message.text))

    @app.listen("tell-all")
    async def tell_all(client: gosf.Client, request: gosf.Request) -> None:
        await gosf.App.broadcast(app, "", "announced", gosf.Message.success(request.message.text))

    async with serving(app) as server:
        async with (
            connect(server) as alice,
            connect(server) as bob,
            connect(server) as carol,  # not in the room
        ):
            await alice.call("join", {})
            await bob.call("join", {})
            await alice.call("tell-room", {"text": "hi room"})
            assert await bob.next_event("said") == [{"success": True, "text": "hi room"}]
            await alice.call("tell-all", {"text": "hi all"})
            for who in (alice, bob, carol):
                assert await who.next_event("announced") == [{"success": True, "text": "hi all"}]
            assert alice.events("said") == [] and carol.events("said") == []


async def test_on_connect_can_refuse(anyio_backend: str) -> None:
    app = echo_app()

    @app.on_connect
    def authenticate(client: gosf.Client, request: gosf.Request) -> None:
        if client.auth.get("token") != "letmein":
            raise gosf.ConnectionRefused("UNAUTHORIZED")
        client.state["user"] = "alice"

    async with serving(app) as server:
        refused = WireClient(server)
        with pytest.raises(gosf.ConnectionRefused):
            async with refused.connect(auth={"token": "wrong"}):
                pass
        assert refused.refusal == {"message": "UNAUTHORIZED"}
        async with connect(server, auth={"token": "letmein"}) as client:
            assert (await client.call("echo", {"text": "in"}))[0]["text"] == "in"
        assert not app.clients or all(c.state["user"] == "alice" for c in app.clients.values())


async def test_disconnect_cancels_in_flight_controllers_then_on_disconnect(
    anyio_backend: str,
) -> None:
    app = gosf.App()
    events: list[str] = []
    started = anyio.Event()

    @app.listen("forever")
    async def forever(client: gosf.Client, request: gosf.Request) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            events.append("controller cancelled")

    disconnected = anyio.Event()

    @app.on_disconnect
    def gone(client: gosf.Client, request: gosf.Request) -> None:
        events.append("on_disconnect")
        disconnected.set()

    async with serving(app) as server:
        async with connect(server) as client:
            await client.emit("forever", {})
            with anyio.fail_after(5):
                await started.wait()
        with anyio.fail_after(5):
            await disconnected.wait()
    assert events == ["controller cancelled", "on_disconnect"]
    assert app.clients == {}


async def test_client_disconnect_from_a_controller(anyio_backend: str) -> None:
    app = gosf.App()

    @app.listen("kick-me")
    async def kick(client: gosf.Client, request: gosf.Request) -> None:
        client.disconnect()

    async with serving(app) as server, connect(server) as client:
        await client.emit("kick-me", {})
        with anyio.fail_after(5):
            await client.sio.wait_disconnected()
        assert client.disconnect_reason == "io server disconnect"


def test_listen_refuses_duplicates_reserved_names_and_non_callables() -> None:
    app = echo_app()
    with pytest.raises(ValueError, match="already has a controller"):
        app.listen("echo", lambda client, request: None)
    with pytest.raises(ValueError, match="reserved"):
        app.listen("disconnect", lambda client, request: None)
    with pytest.raises(TypeError):
        app.listen("x", "not callable")  # type: ignore[call-overload]

    @app.listen("decorated")
    async def decorated(client: gosf.Client, request: gosf.Request) -> None:
        return None

    assert app.endpoints["decorated"] is decorated


async def test_plugins_activate_and_deactivate_around_the_app(anyio_backend: str) -> None:
    calls: list[str] = []

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name

        async def activate(self, app: gosf.App) -> None:
            calls.append(f"activate {self.name}")

        def deactivate(self, app: gosf.App) -> None:
            calls.append(f"deactivate {self.name}")

    app = gosf.App()
    app.register_plugin(Recorder("first"))
    app.register_plugin(Recorder("second"))
    with pytest.raises(ValueError):
        app.register_plugin(Recorder("first"))
    async with app.run():
        assert calls == ["activate first", "activate second"]
        assert app.plugins["second"].name == "second"  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError):
            app.register_plugin(Recorder("late"))
    assert calls[2:] == ["deactivate second", "deactivate first"]


async def test_members_and_rooms_seen_by_on_disconnect(anyio_backend: str) -> None:
    app = gosf.App()
    rooms_at_disconnect: list[frozenset[str]] = []
    both_left = anyio.Event()

    @app.listen("join")
    async def join(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        client.join(request.message.text)
        members = app.members(request.message.text)
        return gosf.Message.success(body={"members": len(members), "all": len(app.members())})

    @app.on_disconnect
    def remember(client: gosf.Client, request: gosf.Request) -> None:
        rooms_at_disconnect.append(client.rooms)
        if len(rooms_at_disconnect) == 2:
            both_left.set()

    async with serving(app) as server:
        async with connect(server) as first, connect(server) as second:
            assert (await first.call("join", {"text": "r"}))[0]["body"] == {"members": 1, "all": 2}
            assert (await second.call("join", {"text": "r"}))[0]["body"] == {"members": 2, "all": 2}
        with anyio.fail_after(5):
            await both_left.wait()
    assert rooms_at_disconnect == [frozenset({"r"}), frozenset({"r"})]
    assert app.members("r") == []


async def test_a_reused_response_message_is_not_changed(anyio_backend: str) -> None:
    app = gosf.App()
    shared = gosf.Message.success("same every time")

    @app.listen("constant")
    async def constant(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return shared

    async with serving(app) as server, connect(server) as client:
        assert await client.call("constant", {"id": 1}) == [
            {"id": 1, "success": True, "text": "same every time"}
        ]
        assert await client.call("constant", {}) == [{"success": True, "text": "same every time"}]
    assert shared.id is None


async def test_sync_controller_can_join_rooms_from_its_thread(anyio_backend: str) -> None:
    app = gosf.App()

    def join(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        client.join("threaded")  # carried out on the event loop's thread
        return gosf.Message.success(body={"rooms": sorted(client.rooms)})

    @app.listen("tell")
    async def tell(client: gosf.Client, request: gosf.Request) -> None:
        await app.broadcast("threaded", "told", gosf.Message.success("to the room"))

    app.listen("join", join)
    async with serving(app) as server, connect(server) as client:
        assert await client.call("join", {}) == [{"success": True, "body": {"rooms": ["threaded"]}}]
        await client.call("tell", {})
        assert await client.next_event("told") == [{"success": True, "text": "to the room"}]
