"""The base of cluster queries (gosf.brokers._queries): a query, its answer,
and the checks every ``from_json`` makes of the JSON it reads."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar

__all__ = (
    "A",
    "A_co",
    "Query",
    "QueryAnswer",
    "SocketCount",
    "UnknownQuery",
    "count_field",
    "mapping_field",
    "names_field",
    "string_field",
)


class UnknownQuery(ValueError):
    """A well-formed query of a kind this process does not know (a newer gosf's, most likely)."""


class QueryAnswer(ABC):
    """What one process answers to a :class:`Query`."""

    __slots__ = ()

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """This answer as a JSON object."""

    @classmethod
    @abstractmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        """The answer a JSON object stands for.

        Raises:
            ValueError: ``obj`` is not such an answer.
        """


A = TypeVar("A", bound=QueryAnswer)
A_co = TypeVar("A_co", bound=QueryAnswer, covariant=True)


class Query(ABC, Generic[A_co]):
    """A question (or command) for every process of a cluster, answered by an ``A`` each."""

    __slots__ = ()

    ops: ClassVar[tuple[str, ...]]
    """The values of ``"op"`` that stand for this kind of query on the wire."""

    @property
    @abstractmethod
    def answer_type(self) -> type[A_co]:
        """The type of the answers to this query."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """This query as a JSON object."""

    @classmethod
    @abstractmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        """The query a JSON object stands for (its ``"op"`` is one of ``ops``).

        Raises:
            ValueError: ``obj`` is not such a query.
        """


def count_field(value: object, what: str) -> int:
    """``value`` if it is a count (a non-negative integer, not a boolean).

    Raises:
        ValueError: it is not.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, not {value!r}")
    return value


def string_field(obj: Mapping[str, Any], key: str) -> str:
    """``obj[key]``, which must be a string.

    Raises:
        ValueError: it is missing or not a string.
    """
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, not {value!r}")
    return value


def names_field(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """``obj[key]``, a list of strings (missing: none).

    Raises:
        ValueError: it is not a list of strings.
    """
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key!r} must be a list of strings, not {value!r}")
    return tuple(value)


def mapping_field(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]``, a JSON object (missing: empty).

    Raises:
        ValueError: it is not an object.
    """
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be an object, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SocketCount(QueryAnswer):
    """How many sockets one process has connected to a namespace."""

    count: int

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        return cls(count_field(obj.get("count"), "'count'"))
