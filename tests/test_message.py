"""GOSF's message protocol: wire form, parsing, helpers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pydantic
import pytest

import gosf
from gosf import Message


def test_wire_form_matches_gosf_json() -> None:
    assert Message().to_wire() == {"success": False}
    full = Message(id=1, guid="g", uuid="u", success=True, text="t", meta={"m": 1}, body={"b": 2})
    assert full.to_wire() == {
        "id": 1,
        "guid": "g",
        "uuid": "u",
        "success": True,
        "text": "t",
        "meta": {"m": 1},
        "body": {"b": 2},
    }
    assert full.to_wire(meta=False) == {
        "id": 1,
        "guid": "g",
        "uuid": "u",
        "success": True,
        "text": "t",
        "body": {"b": 2},
    }
    assert Message(id=0).to_wire() == {"id": 0, "success": False}  # 0 is an id, not "empty"


def test_success_and_failure_helpers() -> None:
    ok = Message.success("done", {"n": 1})
    assert (ok.success, ok.text, ok.body) == (True, "done", {"n": 1})
    assert Message.success().to_wire() == {"success": True}
    bad = Message.failure("NOPE")
    assert (bad.success, bad.text) == (False, "NOPE")
    assert gosf.new_success_message("x") == Message.success("x")
    assert gosf.new_failure_message(body={"e": 1}) == Message.failure(None, {"e": 1})
    ok.success = False  # the field is still a plain boolean on instances
    assert ok.success is False


def test_success_and_failure_build_the_class_they_are_asked_on() -> None:
    # Message's builder is made once and kept: a subclass's builds the
    # subclass, Message's still builds a Message.
    class Tagged(Message):
        tag: str = "t"

    assert Message.success("a") == Message(success=True, text="a")
    built = Tagged.success("b", {"n": 1})
    assert type(built) is Tagged and built.success and built.tag == "t"
    assert type(Tagged.failure("c")) is Tagged and not Tagged.failure("c").success
    assert type(Message.success("d")) is Message and type(Message.failure()) is Message
    assert Message.success("e").success is True and Message.failure("e").success is False


def test_success_of_a_subclass_with_its_own_init_runs_it() -> None:
    built: list[str] = []

    class Counted(Message):
        def __init__(self, **fields: Any) -> None:
            built.append(fields.get("text", ""))
            super().__init__(**fields)

    made = Counted.success("x", {"n": 1})
    assert type(made) is Counted and made.body == {"n": 1}
    assert built == ["x"]
    with pytest.raises(pydantic.ValidationError):
        Message.success(7)  # type: ignore[arg-type]  # validated as before: text is a str


def test_without_meta_is_a_copy() -> None:
    message = Message(success=True, meta={"secret": 1}, body={"x": 1})
    stripped = message.without_meta()
    assert stripped.meta == {} and stripped.body == {"x": 1}
    assert message.meta == {"secret": 1}


def test_parse_accepts_gosf_requests_and_ignores_unknown_fields() -> None:
    message = Message.parse({"id": 1, "text": "hi", "body": {"age": 32}, "data": {"v": 1}})
    assert (message.id, message.text, message.body) == (1, "hi", {"age": 32})


def test_parse_reads_null_fields_as_empty_as_gosf_does() -> None:
    """Go's encoding/json leaves a field at its zero value for null (and a
    msgpack client sends a JavaScript undefined as null)."""
    payload = {"id": 3, "guid": None, "uuid": None, "success": None}
    message = Message.parse({**payload, "text": None, "meta": None, "body": None})
    assert (message.id, message.guid, message.uuid, message.success) == (3, "", "", False)
    assert (message.text, message.meta, message.body) == ("", {}, {})


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "text",
        3,
        [1],
        {"id": "1"},
        {"id": 1.0},
        {"id": False},
        {"body": "x"},
        {"meta": []},
        {"guid": 1},
        {"success": "yes"},
    ],
)
def test_parse_refuses_what_is_not_a_message(payload: object) -> None:
    with pytest.raises(gosf.MessageError) as info:
        Message.parse(payload)
    assert info.value.reason


def test_assignment_is_validated() -> None:
    message = Message()
    with pytest.raises(pydantic.ValidationError):
        message.id = "x"  # type: ignore[assignment]


@dataclasses.dataclass
class Person:
    name: str
    age: int


class PersonModel(pydantic.BaseModel):
    name: str
    age: int


def test_struct_to_map_and_back() -> None:
    assert gosf.struct_to_map(Person("Ada", 36)) == {"name": "Ada", "age": 36}
    assert gosf.struct_to_map(PersonModel(name="Ada", age=36)) == {"name": "Ada", "age": 36}
    assert gosf.struct_to_map(Message.success("x")) == {"success": True, "text": "x"}
    assert gosf.map_to_struct({"name": "Ada", "age": 36, "extra": 1}, Person) == Person("Ada", 36)
    assert gosf.map_to_struct({"name": "Ada", "age": "36"}, PersonModel) == PersonModel(
        name="Ada", age=36
    )
    assert gosf.map_to_struct({"id": 3, "success": True}, Message) == Message(id=3, success=True)
    with pytest.raises(pydantic.ValidationError):
        gosf.map_to_struct({"name": "Ada"}, PersonModel)
    with pytest.raises(TypeError):
        gosf.struct_to_map(object())
    with pytest.raises(TypeError):
        gosf.map_to_struct({}, dict)


@dataclasses.dataclass
class Team:
    name: str
    lead: Person
    members: list[Person] = dataclasses.field(default_factory=list)


def test_map_to_struct_validates_dataclasses() -> None:
    """A dataclass is validated as a pydantic model is: the same coercions,
    a ValidationError naming the field, nested dataclasses built too, and
    fields it does not know still ignored."""
    assert gosf.map_to_struct({"name": "Ada", "age": "36"}, Person) == Person("Ada", 36)
    with pytest.raises(pydantic.ValidationError, match="age"):
        gosf.map_to_struct({"name": "Ada", "age": "thirty-six"}, Person)
    with pytest.raises(pydantic.ValidationError, match="age"):
        gosf.map_to_struct({"name": "Ada"}, Person)
    with pytest.raises(pydantic.ValidationError, match="name"):
        gosf.map_to_struct({"name": ["not", "a", "str"], "age": 36}, Person)
    team = {
        "name": "core",
        "lead": {"name": "Ada", "age": 36},
        "members": [{"name": "Bob", "age": 7}],
    }
    assert gosf.map_to_struct(team, Team) == Team("core", Person("Ada", 36), [Person("Bob", 7)])
    with pytest.raises(pydantic.ValidationError, match="lead"):
        gosf.map_to_struct({"name": "core", "lead": {"name": "Ada"}}, Team)
