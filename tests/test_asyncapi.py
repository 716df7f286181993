"""The AsyncAPI document: generated from the registrations, accepted by the
official parser, served by the app and printed by the command.

The parser is npm ``@asyncapi/parser`` v3 (tests/js/asyncapi, installed by
``scripts/install-test-deps``); ``validate.cjs`` prints its errors per document.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import gosf
from gosf._application.cli import main
from tests.apps.typed_app import OrderIn
from tests.node import JS

VALIDATOR = JS / "asyncapi" / "validate.cjs"


def validate(documents: dict[str, dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    """What the official parser says of each document: ``{name: {"errors", "warnings"}}``."""
    node = shutil.which("node")
    if node is None or not (JS / "asyncapi" / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("node and tests/js/asyncapi/node_modules are required: run ./scripts/test")
    files = []
    for name, doc in documents.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc))
        files.append(str(path))
    result = subprocess.run(
        [node, str(VALIDATOR), *files], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode in (0, 1), result.stderr
    seen = {}
    for line in result.stdout.splitlines():
        report = json.loads(line)
        seen[Path(report["file"]).stem] = report
    return seen


def example_apps() -> dict[str, gosf.App]:
    import examples.chat.app as chat
    import examples.echo as echo
    import examples.sample_app as sample
    from tests.apps import typed_app

    return {"echo": echo.app, "chat": chat.app, "sample": sample.app, "typed": typed_app.app}


def test_the_official_parser_accepts_every_document(tmp_path: Path) -> None:
    documents = {name: app.asyncapi() for name, app in example_apps().items()}
    broken = json.loads(json.dumps(documents["echo"]))
    broken["operations"]["echo"]["channel"] = {"$ref": "#/channels/nowhere"}
    seen = validate({**documents, "broken": broken}, tmp_path)
    assert {name: seen[name]["errors"] for name in documents} == {name: [] for name in documents}
    assert {name: seen[name]["warnings"] for name in documents} == {name: [] for name in documents}
    # The check can fail: a reference to nowhere is an error.
    assert [e["code"] for e in seen["broken"]["errors"]][:1] == ["invalid-ref"]


def test_the_document_describes_endpoints_replies_broadcasts_and_the_server() -> None:
    from tests.apps.typed_app import app

    doc = app.asyncapi()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "typed test app"
    assert doc["servers"] == {
        "gosf": {
            "host": "127.0.0.1:9911",
            "protocol": "ws",
            "pathname": "/socket.io/",
            "description": doc["servers"]["gosf"]["description"],
        }
    }
    assert sorted(doc["channels"]) == [
        "address.check",
        "calls",
        "news",
        "order.place",
        "order.shipped",
    ]
    place = doc["operations"]["order.place"]
    assert place["action"] == "receive"
    assert place["summary"] == "Place an order."
    assert "as the acknowledgement" in place["description"]
    assert place["reply"]["messages"] == [
        {"$ref": "#/channels/order.place/messages/response"},
        {"$ref": "#/channels/order.place/messages/failure"},
    ]
    messages = doc["components"]["messages"]
    request = messages["order.place.request"]["payload"]["allOf"]
    assert request[0] == {"$ref": "#/components/schemas/gosf.Message"}
    assert request[1]["properties"]["body"] == {"$ref": "#/components/schemas/OrderIn"}
    response = messages["order.place.response"]["payload"]["allOf"][1]
    assert response["properties"]["body"] == {"$ref": "#/components/schemas/OrderOut"}
    assert response["properties"]["success"] == {"const": True}
    shipped = doc["operations"]["order.shipped.broadcast"]
    assert shipped["action"] == "send"
    assert shipped["summary"] == "An order left the warehouse."
    schemas = doc["components"]["schemas"]
    assert schemas["Size"]["enum"] == ["small", "large"]
    assert schemas["OrderIn"]["required"] == ["customerId", "lines"]  # the aliases, as sent
    assert schemas["Line"]["properties"]["qty"]["exclusiveMinimum"] == 0
    assert schemas["Category"]["properties"]["children"]["items"] == {
        "$ref": "#/components/schemas/Category"
    }


@asynccontextmanager
async def http(app: gosf.App) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.anyio
async def test_the_app_serves_the_document_and_its_page(anyio_backend: str) -> None:
    async def elsewhere(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the document and the page are answered before other_app")

    app = gosf.App({"path": "/api/"}, other_app=elsewhere)

    @app.listen("order")
    async def order(client: gosf.Client, request: gosf.Request[OrderIn]) -> None:
        return None

    async with http(app) as client:
        as_json = await client.get("/api/asyncapi.json")
        as_yaml = await client.get("/api/asyncapi.yaml")
        page = await client.get("/api/asyncapi")
    assert as_json.status_code == 200
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json() == app.asyncapi()
    assert as_yaml.headers["content-type"] == "application/yaml"
    assert yaml.safe_load(as_yaml.text) == app.asyncapi()
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<a href="/api/asyncapi.json">' in page.text or '"/api/asyncapi.json"' in page.text
    assert (
        "<script" in page.text
        and "http" not in page.text.split("<script", 1)[1].split("asyncapi-document", 1)[0]
    )  # nothing fetched from elsewhere before the document
    assert '"OrderIn"' in page.text


@pytest.mark.anyio
async def test_the_paths_are_configurable_and_can_be_turned_off(anyio_backend: str) -> None:
    app = gosf.App({"asyncapi_path": "/spec/v1.json", "docs_path": None})
    async with http(app) as client:
        moved = await client.get("/spec/v1.json")
        old = await client.get("/asyncapi.json")
        page = await client.get("/asyncapi")
        root = await client.get("/")
    assert moved.status_code == 200 and moved.json()["asyncapi"] == "3.0.0"
    assert old.status_code == page.status_code == 404
    assert "AsyncAPI" not in root.text  # no page to link to
    with pytest.raises(ValueError, match=r"Socket\.IO path"):
        gosf.App({"docs_path": "socket.io/docs"})


def test_the_command_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["asyncapi", "tests.apps.typed_app:app"]) == 0
    printed = json.loads(capsys.readouterr().out)
    from tests.apps.typed_app import app

    assert printed == app.asyncapi()
    assert main(["asyncapi", "tests.apps.typed_app:app", "--yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == printed
    assert main(["asyncapi", "examples.chat.app:static"]) == 1  # ASGI, not a gosf.App
    assert "is not a gosf.App" in capsys.readouterr().err


def test_the_page_embeds_the_document_without_letting_it_end_the_script() -> None:
    from gosf._application.docspage import docs_page

    app = gosf.App()
    hostile = "</script><script>alert(1)</script>"
    app.info.update(title=hostile, description=hostile)
    page = docs_page(app.asyncapi(), '"/x.json"</script>')
    assert hostile not in page
    assert page.count("</script>") == 2  # the embedded document's and the renderer's
    embedded = page.split('id="asyncapi-document">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded) == app.asyncapi()
    assert "<title>&lt;/script&gt;" in page
