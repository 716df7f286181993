"""Mistakes caught at registration: a controller or hook gosf cannot call the
way it will call it is refused by ``listen()`` or the hook's registrar, with a
message naming the signature expected, not at the first request.

How gosf calls them (``_application/cycle.py``, ``_application/hooks.py``,
``_application/broadcasting.py``), by position: a controller ``(client, request)``; ``on_connect``,
``on_disconnect``, ``on_before_request`` ``(client, request)``; the response
hooks ``(client, request, response)``; the broadcast hooks ``(endpoint, room,
message)``; the client broadcast hooks ``(client, endpoint, room, message)``.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

import pytest

import gosf
import gosf._application.default
import gosf.testing
from gosf._application.hooks import HOOK_ARGUMENTS, HOOK_NAMES
from tests.harness import WireClient

CONTROLLER = (
    "the controller of 'echo' must take (client, request), as in "
    "`async def controller(client, request) -> gosf.Message | None`; "
)


def hook_expected(name: str) -> str:
    arguments = ", ".join(HOOK_ARGUMENTS[name])
    return (
        f"an {name} hook must take ({arguments}), as in `async def {name}({arguments}) -> None`; "
    )


async def one_argument(request: gosf.Request) -> gosf.Message:
    return gosf.Message.success()


def three_arguments(client: gosf.Client, request: gosf.Request, extra: Any) -> gosf.Message:
    return gosf.Message.success()


async def keyword_only(client: gosf.Client, request: gosf.Request, *, user: str) -> None:
    return None


class Handlers:
    async def unbound(self, client: gosf.Client, request: gosf.Request) -> None:
        return None


# -- controllers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("controller", "found"),
    [
        (one_argument, "one_argument(request) does not: too many positional arguments"),
        (
            three_arguments,
            "three_arguments(client, request, extra) does not: "
            "missing a required argument: 'extra'",
        ),
        (
            keyword_only,
            "keyword_only(client, request, *, user) does not: missing a required argument: 'user'",
        ),
        (lambda: None, "<lambda>() does not: too many positional arguments"),
        (
            functools.partial(three_arguments, 1, 2),  # type: ignore[arg-type]
            "partial(three_arguments)(extra) does not: too many positional arguments",
        ),
        (
            Handlers.unbound,  # the class's function, not a bound method
            "Handlers.unbound(self, client, request) does not: "
            "missing a required argument: 'request'",
        ),
    ],
    ids=["one", "three", "keyword-only", "none", "partial-too-full", "unbound-method"],
)
def test_listen_refuses_a_controller_gosf_cannot_call(controller: Any, found: str) -> None:
    # mypy refuses most of these as well; gosf checks at run time for the
    # code no type checker looks at.
    app = gosf.App()
    with pytest.raises(TypeError) as refused:
        app.listen("echo", controller)
    assert str(refused.value) == CONTROLLER + found
    assert "echo" not in app.endpoints


def test_listen_as_a_decorator_and_the_default_app_refuse_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = gosf.App()
    with pytest.raises(TypeError, match=re.escape(CONTROLLER)):
        app.listen("echo")(one_argument)  # type: ignore[type-var]
    monkeypatch.setattr(gosf._application.default, "app", gosf.App())
    with pytest.raises(TypeError, match=re.escape(CONTROLLER)):
        gosf.listen("echo", one_argument)  # type: ignore[type-var]
    assert gosf._application.default.app.endpoints == {}


class CallableController:
    async def __call__(self, client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success("object")


class Controllers:
    def method(self, client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success("method")


async def with_options(
    prefix: str, client: gosf.Client, request: gosf.Request, suffix: str = "!"
) -> gosf.Message:
    return gosf.Message.success(prefix + suffix)


async def with_args(*args: Any) -> gosf.Message:
    return gosf.Message.success(f"{len(args)} args")


def sync_controller(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message.success("sync")


async def with_keywords(
    client: gosf.Client, request: gosf.Request, *, limit: int = 3, **more: Any
) -> gosf.Message:
    return gosf.Message.success(f"limit {limit}")


VALID_CONTROLLERS: dict[str, tuple[Any, str]] = {
    "sync": (sync_controller, "sync"),
    "async": (with_keywords, "limit 3"),
    "partial": (functools.partial(with_options, "partial"), "partial!"),
    "object": (CallableController(), "object"),
    "method": (Controllers().method, "method"),
    "lambda": (lambda client, request: gosf.Message.success("lambda"), "lambda"),
    "args": (with_args, "2 args"),
    "builtin": (print, ""),  # no signature Python can tell: accepted unchecked
}


@pytest.mark.anyio
async def test_every_callable_form_gosf_can_call_is_accepted_and_served(
    anyio_backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = gosf.App()
    for endpoint, (controller, _) in VALID_CONTROLLERS.items():
        assert app.listen(endpoint, controller) is controller
    async with gosf.testing.serve(app) as server, WireClient(server).connect() as client:
        for endpoint, (_, text) in VALID_CONTROLLERS.items():
            if endpoint == "builtin":
                assert await client.call(endpoint, {}) == []  # print returned None
            else:
                assert await client.call(endpoint, {}) == [{"success": True, "text": text}]


# -- what a controller returns -------------------------------------------------------------


@pytest.mark.anyio
async def test_a_controller_returning_a_dict_gets_internal_error_and_a_line_saying_why(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = gosf.App()

    @app.listen("dict")
    async def as_dict(client: gosf.Client, request: gosf.Request) -> Any:
        return {"success": True, "text": "not a message"}

    caplog.set_level(logging.ERROR, logger="gosf")
    async with gosf.testing.serve(app) as server, WireClient(server).connect() as client:
        assert await client.call("dict", {"id": 5}) == [
            {"id": 5, "success": False, "text": "INTERNAL_ERROR"}
        ]
        assert await client.next_event("dict") == [
            {"id": 5, "success": False, "text": "INTERNAL_ERROR"}
        ]
        sid = client.sid
    (record,) = [r for r in caplog.records if r.name == "gosf"]
    assert record.getMessage() == (
        "the controller of 'dict' returned a dict: a gosf.Message is required "
        "(gosf.Message.success(text, body), gosf.Message.failure(text, body)), "
        f"or None for no response (client {sid}); the client got INTERNAL_ERROR"
    )
    assert record.exc_info is None  # the mistake is the app's: no traceback into gosf


# -- hooks ----------------------------------------------------------------------------------


def too_few(name: str) -> Any:
    """A hook taking one argument less than ``name`` is called with."""
    arguments = HOOK_ARGUMENTS[name][:-1]
    namespace: dict[str, Any] = {}
    exec(f"def hook({', '.join(arguments)}): pass", namespace)
    return namespace["hook"]


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_each_hook_refuses_a_callback_with_too_few_arguments(name: str) -> None:
    app = gosf.App()
    hook = too_few(name)
    found = ", ".join(HOOK_ARGUMENTS[name][:-1])
    with pytest.raises(TypeError) as refused:
        getattr(app, name)(hook)
    assert str(refused.value) == (
        hook_expected(name) + f"hook({found}) does not: too many positional arguments"
    )
    assert not app.hooks.has(name)


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_each_hook_refuses_a_callback_with_too_many_arguments(name: str) -> None:
    app = gosf.App()

    def hook(a: Any, b: Any, c: Any, d: Any, e: Any) -> None:
        return None

    with pytest.raises(TypeError, match=re.escape(hook_expected(name))):
        app.hooks.add(name, hook)  # what plugins call, as the registrars do
    assert not app.hooks.has(name)


def test_on_connect_with_a_one_argument_lambda_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = gosf.App()
    expected = (
        hook_expected("on_connect") + "<lambda>(client) does not: too many positional arguments"
    )
    with pytest.raises(TypeError) as refused:
        app.on_connect(lambda client: None)  # type: ignore[type-var]
    assert str(refused.value) == expected
    monkeypatch.setattr(gosf._application.default, "app", app)
    with pytest.raises(TypeError) as refused:
        gosf.on_connect(lambda client: None)
    assert str(refused.value) == expected


def test_hooks_of_every_form_gosf_can_call_are_accepted() -> None:
    app = gosf.App()

    class Audit:
        def __call__(self, client: Any, request: Any, response: Any = None) -> None:
            return None

        async def method(self, client: Any, request: Any) -> None:
            return None

    def with_extra(tag: str, *args: Any) -> None:
        return None

    forms: list[tuple[str, Any]] = [
        ("on_connect", lambda client, request: None),
        ("on_connect", Audit().method),
        ("on_after_request", Audit()),
        ("on_before_request", Audit()),  # a defaulted third parameter
        ("on_before_broadcast", functools.partial(with_extra, "tag")),
        ("on_after_client_broadcast", lambda *args: None),
        ("on_disconnect", print),  # no signature Python can tell: accepted unchecked
    ]
    for name, hook in forms:
        assert getattr(app, name)(hook) is hook
    assert all(app.hooks.has(name) for name, _ in forms)


class BadPlugin:
    name = "bad"

    def activate(self, app: gosf.App) -> None:
        app.on_after_response(lambda client, request: None)  # type: ignore[type-var]

    def deactivate(self, app: gosf.App) -> None:
        return None


@pytest.mark.anyio
async def test_a_plugin_registering_a_hook_gosf_cannot_call_fails_the_start(
    anyio_backend: str,
) -> None:
    app = gosf.App()
    app.register_plugin(BadPlugin())
    with pytest.RaisesGroup(
        pytest.RaisesExc(TypeError, match=re.escape(hook_expected("on_after_response"))),
        flatten_subgroups=True,
        allow_unwrapped=True,
    ):
        async with app.run():
            pass
    assert not app.hooks.has("on_after_response")
