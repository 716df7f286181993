"""GOSF's message protocol: the one shape every request and response has.

``Message`` serialises exactly as GOSF's Go struct does (``success`` always
present, empty ``id``/``guid``/``uuid``/``text``/``meta``/``body`` omitted), and
parses requests strictly: a non-integer ``id`` or a non-object ``body`` is an
error the server answers with ``BAD_REQUEST``, never a crash. A field that is
``null`` reads as empty, as in GOSF.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    field_validator,
)
from pydantic import ValidationError as _ValidationError
from pydantic_core import PydanticUseDefault

from .._errors import MessageError

__all__ = (
    "Message",
    "map_to_struct",
    "new_failure_message",
    "new_success_message",
    "struct_to_map",
)

T = TypeVar("T")


class _Factory:
    """``Message.success(...)`` on the class, the ``success`` field on an instance."""

    def __init__(self, success: bool) -> None:
        self._success = success
        # Message's own builder, made once rather than at every
        # ``Message.success`` (a function object each time); a subclass's
        # is made at each look-up, so that no class is kept alive here.
        self._make_message = self._maker(Message)

    def __get__(self, obj: Message | None, owner: type[Message]) -> Any:
        if obj is not None:
            return obj.__dict__["success"]
        if owner is Message:
            return self._make_message
        return self._maker(owner)

    def _maker(self, owner: type[Message]) -> _Make:
        success = self._success

        if owner is not Message:  # a subclass: built by its own class, whatever it adds

            def make(text: str | None = None, body: Mapping[str, Any] | None = None) -> Message:
                return owner(success=success, text=text or "", body=dict(body or {}))

        else:

            def make(text: str | None = None, body: Mapping[str, Any] | None = None) -> Message:
                # What Message(...) runs, without BaseModel.__init__'s frame
                # and keyword arguments around it.
                fields = {"success": success, "text": text or "", "body": dict(body or {})}
                return Message.__pydantic_validator__.validate_python(fields)  # type: ignore[no-any-return]

        make.__doc__ = f"A Message with success={success}, the given text and body."
        return make


class _Make(Protocol):
    def __call__(
        self, text: str | None = None, body: Mapping[str, Any] | None = None
    ) -> Message: ...


if TYPE_CHECKING:

    class _SuccessField:
        @overload
        def __get__(self, obj: None, owner: type[Message]) -> _Make: ...
        @overload
        def __get__(self, obj: Message, owner: type[Message]) -> bool: ...
        def __get__(self, obj: Message | None, owner: type[Message]) -> Any: ...
        def __set__(self, obj: Message, value: bool) -> None: ...


class Message(BaseModel):
    """A GOSF message: ``id``, ``guid``, ``uuid``, ``success``, ``text``, ``meta``, ``body``.

    >>> Message.success("done", {"n": 1}).to_wire()
    {'success': True, 'text': 'done', 'body': {'n': 1}}

    ``Message.success(text=None, body=None)`` and ``Message.failure(...)`` build
    one; on an instance ``message.success`` is the boolean field.
    """

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    id: StrictInt | None = None
    """The client's number for the request, copied into the response."""
    guid: StrictStr = ""
    """A globally unique id the client may send, copied into the response."""
    uuid: StrictStr = ""
    """A unique id the client may send, copied into the response."""
    if TYPE_CHECKING:
        success: _SuccessField = Field(default=False)  # type: ignore[assignment]
        """Whether the request succeeded; always sent, even when ``False``. On the
        class, ``Message.success(text=None, body=None)`` builds a successful message."""
        failure: ClassVar[_Make]
        """``Message.failure(text=None, body=None)``: a failed message."""
    else:
        success: StrictBool = False
        """Whether the request succeeded; always sent, even when ``False``."""
    text: StrictStr = ""
    """A short text: the answer, or a failure's code such as ``"NOT_FOUND"``."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Data between services; stripped from what clients get unless
    ``expose_meta`` is set."""
    body: dict[str, Any] = Field(default_factory=dict)
    """The payload: a JSON object."""

    @field_validator("guid", "uuid", "success", "text", "meta", "body", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        # GOSF (Go's encoding/json) reads null as the field's zero value; a
        # msgpack client sends a JavaScript undefined as null.
        if value is None:
            raise PydanticUseDefault
        return value

    @classmethod
    def parse(cls, payload: Any) -> Message:
        """Read a request payload.

        Raises:
            MessageError: the payload is not a JSON object of GOSF's shape.
        """
        if isinstance(payload, Message):
            return payload
        if not isinstance(payload, dict):
            kind = "null" if payload is None else type(payload).__name__
            raise MessageError(f"expected a message object, got {kind}")
        try:
            # The model's validator itself: model_validate adds only the
            # handling of options this call does not pass.
            return cls.__pydantic_validator__.validate_python(payload)  # type: ignore[no-any-return]
        except _ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "message"
            raise MessageError(f"{where}: {first['msg']}") from None

    def to_wire(self, *, meta: bool = True) -> dict[str, Any]:
        """The JSON object GOSF sends: ``success`` always, empty fields left out."""
        data = self.__dict__
        wire: dict[str, Any] = {}
        if data["id"] is not None:
            wire["id"] = data["id"]
        if data["guid"]:
            wire["guid"] = data["guid"]
        if data["uuid"]:
            wire["uuid"] = data["uuid"]
        wire["success"] = data["success"]
        if data["text"]:
            wire["text"] = data["text"]
        if meta and data["meta"]:
            wire["meta"] = data["meta"]
        if data["body"]:
            wire["body"] = data["body"]
        return wire

    @classmethod
    def trusted_success(cls, body: dict[str, Any], ids: Message | None = None) -> Message:
        """A successful message carrying ``body`` (and the id, guid and uuid of
        ``ids``, the request), built without validating it.

        For a body that a model's serializer has just produced (a typed
        response): validating it again would cost more than the rest of the
        response, and ``model_construct`` is slower still.
        """
        message = object.__new__(cls)
        fields: dict[str, Any] = {"id": None, "guid": "", "uuid": "", "success": True}
        if ids is not None:
            fields.update(id=ids.id, guid=ids.guid, uuid=ids.uuid)
        fields.update(text="", meta={}, body=body)
        object.__setattr__(message, "__dict__", fields)
        object.__setattr__(message, "__pydantic_fields_set__", {"success", "body"})
        object.__setattr__(message, "__pydantic_extra__", None)
        object.__setattr__(message, "__pydantic_private__", None)
        return message

    def without_meta(self) -> Message:
        """A copy without ``meta`` (what a browser client may see)."""
        return self.model_copy(update={"meta": {}})


type.__setattr__(Message, "success", _Factory(True))
type.__setattr__(Message, "failure", _Factory(False))


def new_success_message(text: str | None = None, body: Mapping[str, Any] | None = None) -> Message:
    """GOSF's ``NewSuccessMessage``: ``Message.success(text, body)``."""
    return Message(success=True, text=text or "", body=dict(body or {}))


def new_failure_message(text: str | None = None, body: Mapping[str, Any] | None = None) -> Message:
    """GOSF's ``NewFailureMessage``: ``Message.failure(text, body)``."""
    return Message(success=False, text=text or "", body=dict(body or {}))


def struct_to_map(value: Any) -> dict[str, Any]:
    """GOSF's ``StructToMap``: a pydantic model or dataclass as a JSON-ready dict.

    A :class:`Message` gives its wire form. Mappings are copied.

    Raises:
        TypeError: ``value`` is none of those.
    """
    if isinstance(value, Message):
        return value.to_wire()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot turn {type(value).__name__} into a map")


def map_to_struct(data: Mapping[str, Any], output: type[T]) -> T:
    """GOSF's ``MapToStruct``: build and validate ``output`` from a dict.

    ``output`` is a pydantic model class or a dataclass. Both are validated by
    pydantic the same way: its usual coercions (``"36"`` for an ``int``),
    nested models and dataclasses built from nested dicts, keys that name no
    field ignored (unless a pydantic model forbids them).

    Raises:
        pydantic.ValidationError: the data does not fit ``output`` (a missing
            field, a value of the wrong type); it names the fields.
        TypeError: ``output`` is neither a pydantic model nor a dataclass.
    """
    if isinstance(output, type) and issubclass(output, BaseModel):
        return output.model_validate(dict(data))
    if dataclasses.is_dataclass(output) and isinstance(output, type):
        adapter: TypeAdapter[T] = _dataclass_adapter(output)
        return adapter.validate_python(dict(data))
    raise TypeError(f"{output!r} is not a pydantic model or dataclass")


@functools.lru_cache(maxsize=256)
def _dataclass_adapter(output: type[T]) -> TypeAdapter[T]:
    # Building a validator is far dearer than running it: once per class.
    return TypeAdapter(output)
