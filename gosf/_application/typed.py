"""Typed endpoints: the body models a controller declares, read once at registration.

A controller declares the model of its request body by annotating its
request parameter, and the model of its response body by its return
annotation::

    async def order(client: gosf.Client, request: gosf.Request[OrderIn]) -> OrderOut | gosf.Message:
        request.body  # an OrderIn, validated

:func:`endpoint_types` reads those annotations when the endpoint is routed
(never per request) and keeps what it found in an :class:`EndpointTypes`,
with the validators built; the cycle (``cycle.py``) then:

* validates ``request.message.body`` into ``request.body`` before any hook
  runs; a body that does not fit is answered with ``BAD_REQUEST`` whose body
  lists each error with its path and message (:func:`invalid_body`), and
  neither the hooks nor the controller see it;
* turns what the controller returned into the response with
  :func:`typed_response`: a model instance (or a successful
  :class:`~gosf.Message` whose body fits) is sent as the body of a successful
  message; anything else is the controller's bug, :class:`ResponseError`,
  which the client gets as ``INTERNAL_ERROR`` and the log gets with its reason.

A controller without those annotations (or with ``gosf.Request`` alone)
declares nothing and is served as before; ``request.body`` is then the
message's body, a dict. The AsyncAPI document (``asyncapi.py``) is built from
the same :class:`EndpointTypes` and from the :class:`DeclaredBroadcast` list.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .._socketio.typed import BAD_REQUEST, ModelAdapter, annotation_of, error_list, is_model
from .client import Request
from .message import Message

__all__ = (
    "DeclaredBroadcast",
    "EndpointTypes",
    "ResponseError",
    "endpoint_types",
    "invalid_body",
    "typed_response",
)


@dataclass(frozen=True, slots=True)
class EndpointTypes:
    """What one endpoint's controller declares: its body models and its doc."""

    body: ModelAdapter | None
    """The request body's model (``request: gosf.Request[Model]``), or ``None``."""
    response: ModelAdapter | None
    """The successful response body's model (``-> Model | gosf.Message``), or ``None``."""
    doc: str
    """The controller's docstring (cleaned), for the AsyncAPI document."""


@dataclass(frozen=True, slots=True)
class DeclaredBroadcast:
    """What the app says it broadcasts on ``endpoint`` (:meth:`gosf.App.broadcasts`)."""

    endpoint: str
    model: ModelAdapter | None
    """The broadcast message's body model, or ``None`` for any object."""
    doc: str


class ResponseError(Exception):
    """A controller returned what its declared response model refuses."""


def endpoint_types(endpoint: str, controller: Callable[..., Any]) -> EndpointTypes:
    """The models ``controller`` declares for ``endpoint``, validators built.

    Raises:
        TypeError: the request is annotated ``Request[X]`` where ``X`` is not a
            pydantic model or a dataclass, or its annotation cannot be
            resolved; the return annotation names more than one model.
    """
    try:
        signature = inspect.signature(controller)
    except (TypeError, ValueError):  # nothing to read: an untyped endpoint
        return EndpointTypes(None, None, "")
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    body: ModelAdapter | None = None
    if len(positional) >= 2:
        body = _body_model(endpoint, controller, positional[1].annotation)
    response = _response_model(endpoint, controller, signature.return_annotation)
    return EndpointTypes(body, response, inspect.getdoc(controller) or "")


def _body_model(endpoint: str, controller: Callable[..., Any], raw: object) -> ModelAdapter | None:
    annotation = annotation_of(controller, raw)
    if annotation is None and isinstance(raw, str) and "Request[" in raw:
        raise TypeError(
            f"the controller of {endpoint!r} declares its request as {raw!r}, which cannot "
            "be resolved: annotations are looked up in the controller's module, so define "
            "the model there and import it (and gosf) at module level, not in a function "
            "or under TYPE_CHECKING"
        )
    if typing.get_origin(annotation) is not Request:
        return None
    (model,) = typing.get_args(annotation)
    if is_model(model):
        return ModelAdapter(model)
    if model is Any or typing.get_origin(model) is dict or model is dict:
        return None  # the default, a plain body
    raise TypeError(
        f"the controller of {endpoint!r} declares a request body of {model!r}: "
        "a pydantic model or a dataclass is required"
    )


def _response_model(
    endpoint: str, controller: Callable[..., Any], raw: object
) -> ModelAdapter | None:
    annotation = annotation_of(controller, raw)
    if annotation is None or annotation is inspect.Signature.empty:
        return None
    members: tuple[Any, ...] = (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
    models = [member for member in members if is_model(member) and member is not Message]
    if len(models) > 1:
        raise TypeError(
            f"the controller of {endpoint!r} returns one of several models "
            f"({', '.join(m.__name__ for m in models)}): declare one response model "
            "(failures are gosf.Message.failure)"
        )
    return ModelAdapter(models[0]) if models else None


def invalid_body(error: ValidationError) -> Message:
    """The ``BAD_REQUEST`` failure for a body that does not fit its model: each
    error's path (from the message: ``body.items.0.qty``), message and type,
    never the value sent."""
    return Message.failure(
        BAD_REQUEST,
        {
            "reason": "the body does not fit the endpoint's model",
            "errors": error_list(error, prefix=("body",)),
        },
    )


def typed_response(
    endpoint: str, declared: ModelAdapter, response: object, request: Message
) -> Message:
    """The message to send for ``response``, what a controller returned whose
    endpoint declares a response model, to ``request``.

    A model instance (or data the model accepts) becomes the body of a
    successful message; a successful :class:`Message` keeps its ids and text,
    its body checked against the model; a failure is sent as it is.

    Raises:
        ResponseError: the body does not fit the model, or is not an object.
    """
    if isinstance(response, Message):
        if not response.success:
            return response
        value: object = response.body
    else:
        value = response
    try:
        # An instance of the model itself is what pydantic would let through
        # unchanged (it does not validate instances again): skip the call.
        body = declared.dump(value if type(value) is declared.model else declared.validate(value))
    except ValidationError as exc:
        problems = "; ".join(f"{e['path']}: {e['message']}" for e in error_list(exc))
        raise ResponseError(
            f"the controller of {endpoint!r} returned a response that does not fit "
            f"{_model_name(declared)}: {problems}"
        ) from None
    if not isinstance(body, dict):
        raise ResponseError(
            f"the response model of {endpoint!r}, {_model_name(declared)}, is not a JSON object"
        )
    if isinstance(response, Message):
        return response.model_copy(update={"body": body})
    # Built without validating again: the body was just made by the model's
    # serializer, and the rest are defaults.
    return Message.trusted_success(body, request)


def _model_name(adapter: ModelAdapter) -> str:
    return str(getattr(adapter.model, "__name__", adapter.model))
