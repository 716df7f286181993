"""Typed endpoints: body models declared by annotation, validated at the edge.

An app runs in memory on the test's backend (asyncio and trio), driven by
gosf's own client through ``tests.harness.WireClient``, which keeps each
ack's and event's arguments as the wire carried them.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel, Field

import gosf
import gosf.testing
from gosf._application.typed import endpoint_types
from tests.harness import WireClient

pytestmark = pytest.mark.anyio


class Size(enum.Enum):
    SMALL = "small"
    LARGE = "large"


class Line(BaseModel):
    sku: str
    qty: int = Field(gt=0)
    size: Size = Size.SMALL


class OrderIn(BaseModel):
    customer: str
    password: str
    lines: list[Line] = Field(min_length=1)


class OrderOut(BaseModel):
    customer: str
    items: int


@dataclass
class Point:
    x: int
    y: int


GOOD = {"customer": "ann", "password": "hunter2", "lines": [{"sku": "a", "qty": 2}]}
BAD = {"customer": "ann", "password": "hunter2", "lines": [{"sku": "a", "qty": -1, "size": "x"}]}


def order_app(calls: list[Any]) -> gosf.App:
    app = gosf.App()

    @app.listen("order")
    async def order(client: gosf.Client, request: gosf.Request[OrderIn]) -> OrderOut | gosf.Message:
        calls.append(request.body)
        return OrderOut(customer=request.body.customer, items=len(request.body.lines))

    @app.listen("order.sync")
    def order_sync(client: gosf.Client, request: gosf.Request[OrderIn]) -> OrderOut:
        calls.append(request.body)
        return OrderOut(customer=request.body.customer, items=len(request.body.lines))

    @app.on_before_request
    async def before(client: gosf.Client, request: gosf.Request) -> None:
        calls.append(("hook", request.endpoint))

    return app


@pytest.mark.parametrize("endpoint", ["order", "order.sync"])
async def test_a_valid_body_reaches_the_controller_as_its_model(
    anyio_backend: str, endpoint: str
) -> None:
    calls: list[Any] = []
    async with gosf.testing.serve(order_app(calls)) as server:
        async with WireClient(server).connect() as client:
            ack = await client.call(endpoint, {"id": 3, "body": GOOD})
            event = await client.next_event(endpoint)
    expected = {"id": 3, "success": True, "body": {"customer": "ann", "items": 1}}
    assert ack == [expected]
    assert event == [expected]
    assert calls[0] == ("hook", endpoint)
    assert calls[1] == OrderIn.model_validate(GOOD)
    assert isinstance(calls[1].lines[0].size, Size)


@pytest.mark.parametrize("endpoint", ["order", "order.sync"])
async def test_an_invalid_body_is_bad_request_with_paths_and_never_reaches_the_controller(
    anyio_backend: str, endpoint: str
) -> None:
    calls: list[Any] = []
    async with gosf.testing.serve(order_app(calls)) as server:
        async with WireClient(server).connect() as client:
            request = {"id": 4, "guid": "g-4", "uuid": "u-4", "body": BAD}
            ack = await client.call(endpoint, request)
            event = await client.next_event(endpoint)
            missing = await client.call(endpoint, {"id": 5})
    assert calls == []  # neither the hooks nor the controller ran
    assert ack == event
    (failure,) = ack
    assert {k: failure[k] for k in ("id", "guid", "uuid", "success", "text")} == {
        "id": 4,
        "guid": "g-4",
        "uuid": "u-4",
        "success": False,
        "text": "BAD_REQUEST",
    }
    errors = failure["body"]["errors"]
    assert [(e["path"], e["type"]) for e in errors] == [
        ("body.lines.0.qty", "greater_than"),
        ("body.lines.0.size", "enum"),
    ]
    assert all(e["message"] for e in errors)
    assert "hunter2" not in str(failure)  # the values sent are never echoed
    assert [e["path"] for e in missing[0]["body"]["errors"]] == [
        "body.customer",
        "body.password",
        "body.lines",
    ]


async def test_a_response_that_does_not_fit_its_model_is_internal_error_with_a_reason(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = gosf.App()

    @app.listen("wrong")
    async def wrong(client: gosf.Client, request: gosf.Request) -> OrderOut | gosf.Message:
        return gosf.Message.success("ok", {"customer": "ann"})  # no items

    @app.listen("dict")
    async def as_dict(client: gosf.Client, request: gosf.Request) -> OrderOut:
        return {"customer": "ann", "items": "2"}  # type: ignore[return-value]  # coerced, fits

    @app.listen("refused")
    async def refused(client: gosf.Client, request: gosf.Request) -> OrderOut | gosf.Message:
        return gosf.Message.failure("NO_STOCK", {"sku": "a"})  # failures pass as they are

    @app.listen("echoed")
    async def echoed(client: gosf.Client, request: gosf.Request) -> OrderOut | gosf.Message:
        return gosf.Message.success("kept", {"customer": "ann", "items": 1, "extra": 1})

    caplog.set_level(logging.ERROR, logger="gosf")
    async with gosf.testing.serve(app) as server, WireClient(server).connect() as client:
        assert await client.call("wrong", {"id": 1}) == [
            {"id": 1, "success": False, "text": "INTERNAL_ERROR"}
        ]
        assert await client.next_event("wrong") == [
            {"id": 1, "success": False, "text": "INTERNAL_ERROR"}
        ]
        assert await client.call("dict", {}) == [
            {"success": True, "body": {"customer": "ann", "items": 2}}
        ]
        assert await client.call("refused", {}) == [
            {"success": False, "text": "NO_STOCK", "body": {"sku": "a"}}
        ]
        assert await client.call("echoed", {"guid": "g"}) == [
            {"guid": "g", "success": True, "text": "kept", "body": {"customer": "ann", "items": 1}}
        ]
    assert "the controller of 'wrong' returned a response that does not fit OrderOut" in caplog.text
    assert "items: Field required" in caplog.text


def test_registration_reads_the_annotations_once() -> None:
    app = gosf.App()

    async def order(client: gosf.Client, request: gosf.Request[OrderIn]) -> OrderOut:
        raise AssertionError("not called")

    app.listen("order", order)
    declared = app._cycle.types["order"]
    assert declared.body is not None and declared.body.model is OrderIn
    assert declared.response is not None and declared.response.model is OrderOut
    order.__annotations__.clear()  # what the cycle uses was taken at registration
    assert app._cycle.types["order"] is declared


def test_what_declares_no_model_is_served_as_before() -> None:
    async def plain(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success()

    async def point(client: gosf.Client, request: gosf.Request[Point]) -> None:
        return None

    untyped = endpoint_types("plain", plain)
    assert (untyped.body, untyped.response) == (None, None)
    assert endpoint_types("point", point).body is not None  # a dataclass is a model too


def test_a_body_that_is_not_a_model_is_refused_at_registration() -> None:
    app = gosf.App()

    async def numbers(client: gosf.Client, request: gosf.Request[int]) -> None:
        return None

    with pytest.raises(TypeError, match="a pydantic model or a dataclass is required"):
        app.listen("numbers", numbers)

    async def lost(client: gosf.Client, request: gosf.Request[Missing]) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    with pytest.raises(TypeError, match="cannot be resolved"):
        app.listen("lost", lost)

    async def two(client: gosf.Client, request: gosf.Request) -> OrderIn | OrderOut:
        raise AssertionError("not called")

    with pytest.raises(TypeError, match="one response model"):
        app.listen("two", two)
    assert app.endpoints == {}


async def test_socketio_handlers_declare_argument_models(anyio_backend: str) -> None:
    app = gosf.App()
    seen: list[Any] = []

    @app.server.on("move")
    async def move(socket: gosf.Socket, point: Point, note: str) -> dict[str, int]:
        seen.append((point, note))
        return {"sum": point.x + point.y}

    async with gosf.testing.serve(app) as server, WireClient(server).connect() as client:
        assert await client.call("move", {"x": 1, "y": "2"}, "hi") == [{"sum": 3}]
        refused = await client.call("move", {"x": "one"}, "hi")
    assert seen == [(Point(1, 2), "hi")]
    (answer,) = refused
    assert answer["error"] == "BAD_REQUEST"
    assert [(e["path"], e["type"]) for e in answer["errors"]] == [
        ("point.x", "int_parsing"),
        ("point.y", "missing"),
    ]
