"""A typed app for the AsyncAPI and interop tests: nested models, enums, a
dataclass, aliases, optional and literal fields, a recursive model, a declared
broadcast, async and sync controllers, and one untyped endpoint.

Served over the network by ``tests/serve.py`` (``tests.apps.typed_app:app``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

import gosf

__all__ = ("app", "calls")


class Size(enum.Enum):
    SMALL = "small"
    LARGE = "large"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Address:
    street: str
    city: str


class Line(BaseModel):
    """One line of an order."""

    sku: str = Field(pattern=r"^[A-Z]{3}-\d+$", description="The article's code")
    qty: int = Field(gt=0, le=100)
    size: Size = Size.SMALL


class Category(BaseModel):
    """A category, and the ones under it."""

    name: str
    children: list[Category] = []


class OrderIn(BaseModel):
    """An order to place."""

    model_config = ConfigDict(validate_by_name=True)

    customer_id: int = Field(alias="customerId")
    lines: list[Line] = Field(min_length=1)
    ship_to: Address | None = Field(None, alias="shipTo")
    priority: Priority = Priority.LOW
    channel: Literal["web", "shop"] = "web"
    tags: dict[str, str] = {}
    category: Category | None = None


class OrderOut(BaseModel):
    """The order placed."""

    order_id: str
    items: int
    sizes: list[Size]


class Shipped(BaseModel):
    order_id: str
    carrier: str


app = gosf.App({"host": "127.0.0.1", "port": 9911})
app.info.update(title="typed test app", version="2.0.0")
app.broadcasts("order.shipped", Shipped, doc="An order left the warehouse.")
app.broadcasts("news", doc="Anything the shop announces.")

calls: list[str] = []
"""The endpoints whose controller ran, in order (the tests read it in process)."""


@app.listen("order.place")
async def place(client: gosf.Client, request: gosf.Request[OrderIn]) -> OrderOut | gosf.Message:
    """Place an order.

    Every line must name a known article.
    """
    calls.append("order.place")
    order = request.body
    if order.customer_id == 0:
        return gosf.Message.failure("NO_SUCH_CUSTOMER")
    return OrderOut(
        order_id=f"o-{order.customer_id}",
        items=sum(line.qty for line in order.lines),
        sizes=[line.size for line in order.lines],
    )


@app.listen("address.check")
def check(client: gosf.Client, request: gosf.Request[Address]) -> gosf.Message:
    """Check an address (a sync controller, a dataclass body)."""
    calls.append("address.check")
    return gosf.Message.success(f"{request.body.street}, {request.body.city}")


@app.listen("calls")
async def calls_so_far(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    """The endpoints whose controller ran (untyped)."""
    return gosf.Message.success(body={"calls": list(calls)})
