"""The app's AsyncAPI 3.0 document, generated from what it listens on and broadcasts.

GOSF over Socket.IO, in AsyncAPI's words::

    channel    one per endpoint (its address is the event name), with its messages:
               request, response, failure (and broadcast, when declared)
    operation  receive  the client emits the request on the channel; the reply
                        (same channel) is the response or a failure, sent twice
                        by GOSF: as the ack when the client asked for one, and
                        as an event named like the endpoint
               send     a declared broadcast (``App.broadcasts``)
    payload    GOSF's envelope (``components/schemas/gosf.Message``) with the
               body's JSON Schema from pydantic (``typed.py``): validation
               schemas for what clients send, serialization ones for what
               they get
    server     from the configuration: host, port, ``ws``/``wss``, the
               Socket.IO path

Every model's schema lands in ``components/schemas`` under a name AsyncAPI
accepts; bodies refer to them with ``$ref``. :func:`document` builds the
document as a dict; :func:`to_json` and :func:`to_yaml` write it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from pydantic import TypeAdapter

from .._config import Config
from .._socketio.typed import BAD_REQUEST, ModelAdapter, is_model
from .cycle import INTERNAL_ERROR, RequestCycle
from .typed import DeclaredBroadcast, EndpointTypes

__all__ = ("ASYNCAPI_VERSION", "Documented", "document", "to_json", "to_yaml", "yaml_available")

ASYNCAPI_VERSION = "3.0.0"

_SCHEMAS = "#/components/schemas/"
_MESSAGE = "gosf.Message"
_FAILURE_BODY = "gosf.FailureBody"
_FAILURE = "gosf.failure"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

_ENVELOPE: dict[str, Any] = {
    "title": "GOSF message",
    "description": "The envelope of every GOSF request and response. A response copies "
    "the request's id, guid and uuid.",
    "type": "object",
    "properties": {
        "id": {"type": "integer", "description": "The client's number for the request."},
        "guid": {"type": "string", "description": "A globally unique id, echoed."},
        "uuid": {"type": "string", "description": "A unique id, echoed."},
        "success": {"type": "boolean", "description": "Whether the request succeeded."},
        "text": {"type": "string", "description": "A short text, or a failure's code."},
        "meta": {"type": "object", "description": "Data between services."},
        "body": {"type": "object", "description": "The payload."},
    },
}

_FAILURE_SCHEMA: dict[str, Any] = {
    "title": "GOSF failure body",
    "type": "object",
    "properties": {
        "reason": {"type": "string", "description": "What was wrong, in words."},
        "errors": {
            "type": "array",
            "description": "Each field of the body that does not fit the endpoint's model "
            "(BAD_REQUEST); the values sent are never repeated.",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "e.g. body.items.0.qty"},
                    "message": {"type": "string"},
                    "type": {"type": "string", "description": "pydantic's error type"},
                },
                "required": ["path", "message", "type"],
            },
        },
    },
}


def document(
    config: Config,
    endpoints: Mapping[str, EndpointTypes],
    broadcasts: Iterable[DeclaredBroadcast] = (),
    *,
    title: str = "gosf app",
    version: str = "0.0.0",
    description: str = "",
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of an app whose endpoints declare ``endpoints``
    and which broadcasts ``broadcasts``, served as ``config`` says."""
    broadcast_list = list(broadcasts)
    ids = _channel_ids([*endpoints, *(b.endpoint for b in broadcast_list)])
    schemas = _Schemas()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {_FAILURE: _failure_message()}

    for endpoint, types in sorted(endpoints.items()):
        cid = ids[endpoint]
        request_body = schemas.add(types.body, "validation")
        response_body = schemas.add(types.response, "serialization")
        messages[f"{cid}.request"] = _message(
            f"{endpoint} request", _envelope(request_body), "What the client emits."
        )
        messages[f"{cid}.response"] = _message(
            f"{endpoint} response", _envelope(response_body, success=True), "The answer."
        )
        channel = channels.setdefault(cid, _channel(endpoint))
        channel["messages"].update(
            request=_ref(f"#/components/messages/{cid}.request"),
            response=_ref(f"#/components/messages/{cid}.response"),
            failure=_ref(f"#/components/messages/{_FAILURE}"),
        )
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": _ref(f"#/channels/{cid}"),
            "summary": _summary(types.doc) or f"The client emits {endpoint!r}.",
            "description": _reply_text(endpoint, types.doc),
            "messages": [_ref(f"#/channels/{cid}/messages/request")],
            "reply": {
                "channel": _ref(f"#/channels/{cid}"),
                "messages": [
                    _ref(f"#/channels/{cid}/messages/response"),
                    _ref(f"#/channels/{cid}/messages/failure"),
                ],
            },
        }
        operations[cid] = operation

    for declared in broadcast_list:
        cid = ids[declared.endpoint]
        body = schemas.add(declared.model, "serialization")
        messages[f"{cid}.broadcast"] = _message(
            f"{declared.endpoint} broadcast",
            _envelope(body),
            declared.doc or "What the app broadcasts.",
        )
        channel = channels.setdefault(cid, _channel(declared.endpoint))
        channel["messages"]["broadcast"] = _ref(f"#/components/messages/{cid}.broadcast")
        operations[f"{cid}.broadcast"] = {
            "action": "send",
            "channel": _ref(f"#/channels/{cid}"),
            "summary": _summary(declared.doc) or f"The app broadcasts {declared.endpoint!r}.",
            "description": f"An event named {declared.endpoint!r}, to the clients of a room "
            "(or every client).",
            "messages": [_ref(f"#/channels/{cid}/messages/broadcast")],
        }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": description
            or "GOSF over Socket.IO: every request and response is a GOSF message.",
        },
        "defaultContentType": "application/json",
        "servers": _servers(config),
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas.finish(), "messages": messages},
    }


def to_json(doc: Mapping[str, Any]) -> bytes:
    """``doc`` as indented JSON."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def yaml_available() -> bool:
    """Whether PyYAML is installed (``gosf[yaml]``): YAML is offered only then."""
    try:
        import yaml  # noqa: F401
    except ImportError:
        return False
    return True


def to_yaml(doc: Mapping[str, Any]) -> str:
    """``doc`` as YAML, in the order it was built.

    Raises:
        ImportError: PyYAML is not installed (``pip install gosf[yaml]``).
    """
    import yaml

    return str(yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True))


# -- the parts ---------------------------------------------------------------------------


class _Schemas:
    """The models' JSON Schemas, generated together so that a model used by two
    endpoints (or nested in another) has one entry in ``components/schemas``."""

    def __init__(self) -> None:
        self._wanted: list[tuple[int, str, TypeAdapter[Any]]] = []
        self._refs: dict[int, dict[str, Any]] = {}

    def add(self, adapter: ModelAdapter | None, mode: str) -> dict[str, Any]:
        """A placeholder for ``adapter``'s body schema, filled by :meth:`finish`
        (a plain object when there is no model)."""
        placeholder: dict[str, Any] = {"type": "object"}
        if adapter is not None:
            key = len(self._wanted)
            self._wanted.append((key, mode, adapter.adapter))
            self._refs[key] = placeholder
        return placeholder

    def finish(self) -> dict[str, Any]:
        """Fill the placeholders; the schemas for ``components/schemas``."""
        found: dict[str, Any] = {_MESSAGE: _ENVELOPE, _FAILURE_BODY: _FAILURE_SCHEMA}
        if not self._wanted:
            return found
        tops, definitions = TypeAdapter.json_schemas(
            self._wanted,  # type: ignore[arg-type]
            ref_template=_SCHEMAS + "{model}",
        )
        names = {name: _UNSAFE.sub("_", name) for name in definitions.get("$defs", {})}
        for name, schema in definitions.get("$defs", {}).items():
            found[names[name]] = _renamed(schema, names)
        for (key, _mode), schema in tops.items():
            placeholder = self._refs[key]
            placeholder.clear()
            placeholder.update(_renamed(schema, names))
        return found


def _renamed(schema: Any, names: Mapping[str, str]) -> Any:
    """``schema`` with its ``$ref``s pointing at the names AsyncAPI accepts."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_SCHEMAS):
                name = value.removeprefix(_SCHEMAS)
                out[key] = _SCHEMAS + names.get(name, name)
            else:
                out[key] = _renamed(value, names)
        return out
    if isinstance(schema, list):
        return [_renamed(item, names) for item in schema]
    return schema


def _channel_ids(endpoints: Iterable[str]) -> dict[str, str]:
    """A key for each endpoint that AsyncAPI and JSON pointers accept, unique."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for endpoint in sorted(set(endpoints)):
        base = _UNSAFE.sub("_", endpoint) or "_"
        cid, n = base, 1
        while cid in taken:
            n += 1
            cid = f"{base}_{n}"
        ids[endpoint] = cid
        taken.add(cid)
    return ids


def _ref(target: str) -> dict[str, str]:
    return {"$ref": target}


def _channel(endpoint: str) -> dict[str, Any]:
    return {
        "address": endpoint,
        "title": endpoint,
        "description": f"Socket.IO events named {endpoint!r} in the namespace '/'.",
        "messages": {},
    }


def _envelope(body: dict[str, Any], *, success: bool | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "object", "properties": {"body": body}}
    if success is not None:
        part["properties"]["success"] = {"const": success}
        part["required"] = ["success"]
    return {"allOf": [_ref(_SCHEMAS + _MESSAGE), part]}


def _message(title: str, payload: dict[str, Any], summary: str) -> dict[str, Any]:
    return {
        "name": _UNSAFE.sub("_", title),
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
    }


def _failure_message() -> dict[str, Any]:
    payload = {
        "allOf": [
            _ref(_SCHEMAS + _MESSAGE),
            {
                "type": "object",
                "properties": {
                    "success": {"const": False},
                    "text": {"enum": [BAD_REQUEST, INTERNAL_ERROR]},
                    "body": _ref(_SCHEMAS + _FAILURE_BODY),
                },
                "required": ["success", "text"],
            },
        ]
    }
    return _message(
        "GOSF failure",
        payload,
        "BAD_REQUEST: the request or its body does not fit (the errors say where); "
        "INTERNAL_ERROR: the server failed (its log says why).",
    )


def _summary(doc: str) -> str:
    return doc.strip().split("\n\n")[0].replace("\n", " ") if doc else ""


def _reply_text(endpoint: str, doc: str) -> str:
    rest = doc.strip().partition("\n\n")[2]
    reply = (
        "The server replies twice with the same message: as the acknowledgement when "
        f"the client asked for one, and as an event named {endpoint!r}. A controller "
        "that answers nothing sends an empty acknowledgement and no event."
    )
    return f"{rest}\n\n{reply}" if rest else reply


def _servers(config: Config) -> dict[str, Any]:
    host = config.host if config.host not in ("", "0.0.0.0", "::") else "localhost"
    shown = f"[{host}]" if ":" in host else host
    return {
        "gosf": {
            "host": f"{shown}:{config.port}",
            "protocol": "wss" if config.secure else "ws",
            "pathname": config.server_options().path + "/",
            "description": "Socket.IO (protocol 5, Engine.IO 4) over a websocket, "
            "or HTTP long-polling first.",
        }
    }


# -- what an app declares and serves ----------------------------------------------------


class Documented:
    """The part of :class:`gosf.App` that describes it: declared broadcasts and
    the AsyncAPI document.

    It works on the app's configuration, its routed endpoints' declarations
    and the attributes :class:`gosf.App` sets; they are declared here so that
    each method's use of them is checked.
    """

    config: Config
    _cycle: RequestCycle
    declared_broadcasts: dict[str, DeclaredBroadcast]
    info: dict[str, str]

    def broadcasts(self, endpoint: str, model: Any = None, *, doc: str = "") -> None:
        """Declare that the app broadcasts ``endpoint`` events whose body is a
        ``model`` (a pydantic model or a dataclass; ``None``: any object), for
        the AsyncAPI document. ``doc`` describes them.

        Raises:
            ValueError: ``endpoint`` is declared already.
            TypeError: ``model`` is not a pydantic model or a dataclass.
        """
        if endpoint in self.declared_broadcasts:
            raise ValueError(f"broadcasts on {endpoint!r} are declared already")
        if model is not None and not is_model(model):
            raise TypeError(f"{model!r} is not a pydantic model or a dataclass")
        adapter = ModelAdapter(model) if model is not None else None
        self.declared_broadcasts[endpoint] = DeclaredBroadcast(endpoint, adapter, doc)

    def asyncapi(self) -> dict[str, Any]:
        """The app's AsyncAPI 3.0 document: its endpoints, their body models, the
        declared broadcasts, the server its configuration describes; titled
        after :attr:`info` (``title``, ``version``, ``description``)."""
        return document(
            self.config,
            self._cycle.types,
            self.declared_broadcasts.values(),
            **self.info,
        )
