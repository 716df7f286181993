"""Models declared by annotation: what a handler's parameters say their values are.

A handler that annotates a parameter with a pydantic model (or a dataclass)
gets a validated object instead of the decoded JSON. The annotations are read
once, when the handler is registered (:func:`typed_handler`); a handler that
declares no model is registered as it is and costs nothing per event.

An argument that does not fit never reaches the handler: the client's ack,
when it asked for one, is ``{"error": "BAD_REQUEST", "errors": [...]}``, each
error with its field path and pydantic's message (:func:`error_list`), never
the value that was sent, which could be a password.

The application layer uses the same pieces for GOSF's request and response
bodies (``gosf/_application/typed.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

__all__ = (
    "BAD_REQUEST",
    "ModelAdapter",
    "annotation_of",
    "error_list",
    "is_model",
    "typed_handler",
)

log = logging.getLogger("gosf")

BAD_REQUEST = "BAD_REQUEST"


def is_model(annotation: object) -> bool:
    """Whether ``annotation`` declares a model: a pydantic model or a dataclass.

    Plain types (``str``, ``dict``, ``Any``) declare nothing: handlers
    annotated with them before models existed keep getting what was sent.
    """
    return isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    )


def annotation_of(func: Callable[..., Any], annotation: object) -> object:
    """``annotation`` evaluated where ``func`` was defined (under ``from
    __future__ import annotations`` every annotation is a string).

    ``None`` when it cannot be evaluated: a name imported for the type checker
    alone (``client: Client`` under ``TYPE_CHECKING``) declares no model.
    """
    if not isinstance(annotation, str):
        return annotation
    target = inspect.unwrap(func)
    namespace = getattr(target, "__globals__", None)
    if namespace is None:  # an object with __call__: its method's module
        namespace = getattr(getattr(target, "__call__", None), "__globals__", {})  # noqa: B004
    try:
        return eval(annotation, dict(namespace))
    except Exception:
        return None


class ModelAdapter:
    """One declared model: its validator and serializer, built once.

    Building pydantic's validator is far dearer than running it, so a model's
    adapter is made when the handler or controller is registered.
    """

    __slots__ = ("_to_python", "adapter", "model", "validate")

    def __init__(self, model: Any) -> None:
        self.model = model
        """The model: a pydantic model class or a dataclass."""
        self.adapter: TypeAdapter[Any] = TypeAdapter(model)
        """pydantic's validator, serializer and JSON Schema of the model."""
        # pydantic-core's compiled validator and serializer, called directly:
        # TypeAdapter's methods add a layer of Python per call on the hot path.
        self.validate: Callable[[object], Any] = self.adapter.validator.validate_python
        """``validate(value)``: ``value`` as the model; raises
        ``pydantic.ValidationError`` when it does not fit."""
        self._to_python = self.adapter.serializer.to_python

    def dump(self, value: object) -> Any:
        """``value`` (the model) as JSON-ready data, in pydantic's compiled serializer."""
        return self._to_python(value, mode="json")


def error_list(
    error: ValidationError, *, prefix: tuple[str | int, ...] = ()
) -> list[dict[str, Any]]:
    """pydantic's errors as ``[{"path": "items.0.qty", "message": ..., "type": ...}]``.

    Without the input values (a wrong password is still a password) and
    without pydantic's documentation links.
    """
    return [
        {
            "path": ".".join(str(part) for part in (*prefix, *problem["loc"])),
            "message": problem["msg"],
            "type": problem["type"],
        }
        for problem in error.errors(include_url=False, include_input=False, include_context=False)
    ]


def typed_handler(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``handler``, validating the arguments whose parameters declare a model.

    ``async def handler(socket, order: Order)``: the client's first argument
    is validated as an ``Order``. A handler that declares no model is
    returned as it is.

    """
    try:
        parameters = list(inspect.signature(handler).parameters.values())[1:]  # after the socket
    except (TypeError, ValueError):
        return handler
    declared: list[tuple[int, str, ModelAdapter]] = []
    for index, parameter in enumerate(parameters):
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break
        model = annotation_of(handler, parameter.annotation)
        if is_model(model):
            declared.append((index, parameter.name, ModelAdapter(model)))
    if not declared:
        return handler

    @functools.wraps(handler)
    async def validated(socket: Any, *args: Any) -> Any:
        values = list(args)
        errors: list[dict[str, Any]] = []
        for index, name, adapter in declared:
            if index >= len(values):
                continue  # not sent: the handler's default, or Python's TypeError
            try:
                values[index] = adapter.validate(values[index])
            except ValidationError as exc:
                errors.extend(error_list(exc, prefix=(name,)))
        if errors:
            log.debug("%s: invalid arguments from %s: %s", _name(handler), socket.sid, errors)
            return {"error": BAD_REQUEST, "errors": errors}
        return await handler(socket, *values)

    return validated


def _name(func: Callable[..., Any]) -> str:
    return str(getattr(func, "__qualname__", type(func).__qualname__))
