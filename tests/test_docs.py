"""The documentation's Python snippets run, and do what the page says.

Every ```python block of docs/*.md is executed in a fresh namespace with a
fresh default app. ``<!-- check: ENDPOINT | PAYLOAD | ACK -->`` comments under
a block are requests sent to the app the block built (its ``app``, else the
default app), with the acknowledgement expected (``null``: an empty ack);
``<!-- check auth AUTH: ... -->`` connects with an auth payload and
``<!-- refused auth AUTH: DATA -->`` expects the connection to be refused. A
block that defines ``async def demo()`` has it awaited. A ```py block is
shown but not executed: it is for code whose effect would outlast its test
(the process's logging setup).
"""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

import gosf
import gosf._application.default
from tests.harness import serve_app
from tests.sioclient import ConnectRefused, SioClient

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"```python\n(.*?)```\n((?:<!--.*?-->\n)*)", re.S)
CHECK = re.compile(r"<!-- check(?: auth (\{.*?\}))?: (\S+) \| (.*) \| (.*) -->")
REFUSED = re.compile(r"<!-- refused auth (\{.*?\}): (.*) -->")


@dataclass
class Snippet:
    doc: str
    line: int
    code: str
    checks: list[tuple[dict[str, Any] | None, str, Any, Any]] = field(default_factory=list)
    refusals: list[tuple[dict[str, Any], Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def snippets() -> list[Snippet]:
    found: list[Snippet] = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        for match in BLOCK.finditer(text):
            snippet = Snippet(path.name, text.count("\n", 0, match.start()) + 1, match.group(1))
            for auth, endpoint, payload, ack in CHECK.findall(match.group(2)):
                parsed_auth = orjson.loads(auth) if auth else None
                snippet.checks.append(
                    (parsed_auth, endpoint, orjson.loads(payload), orjson.loads(ack))
                )
            for auth, data in REFUSED.findall(match.group(2)):
                snippet.refusals.append((orjson.loads(auth), orjson.loads(data)))
            found.append(snippet)
    return found


SNIPPETS = snippets()


LINK = re.compile(r"\]\(([^)\s]+)\)|(?:href|src)=\"([^\"]+)\"")


def test_relative_links_name_files_that_exist() -> None:
    """mkdocs checks the links between pages, but only reports (mkdocs.yml:
    ``validation``) the links to what is not a page, such as performance.md's
    links to the benchmark scripts: those are checked here."""
    broken = []
    for path in sorted(DOCS.rglob("*.md")):
        for match in LINK.finditer(path.read_text()):
            target = (match.group(1) or match.group(2)).split("#")[0]
            if not target or re.match(r"[a-z]+:", target):  # an anchor, or a URL
                continue
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(DOCS)}: {target}")
    assert not broken


def test_the_guide_has_checked_snippets() -> None:
    assert len(SNIPPETS) >= 8
    assert sum(len(s.checks) for s in SNIPPETS) >= 10


@pytest.mark.anyio
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
async def test_snippet(
    snippet: Snippet, monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    default = gosf.App()
    monkeypatch.setattr(gosf._application.default, "app", default)
    monkeypatch.setattr(gosf, "app", default)
    module = types.ModuleType("gosf_docs_snippet")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    exec(compile(snippet.code, snippet.id, "exec"), namespace)
    demo = namespace.get("demo")
    if demo is not None:  # a snippet's own demonstration, run as written
        with anyio.fail_after(20):
            await demo()
    if not snippet.checks and not snippet.refusals:
        return
    app = namespace.get("app")
    if not isinstance(app, gosf.App):
        app = default
    async with serve_app(app) as host:
        for auth, endpoint, payload, expected in snippet.checks:
            async with SioClient.connect(host, auth=auth) as client:
                ack = await client.call(endpoint, payload)
            assert ack == ([] if expected is None else [expected]), (endpoint, payload)
        for auth, data in snippet.refusals:
            with pytest.raises(ConnectRefused) as refused:
                async with SioClient.connect(host, auth=auth):
                    pass
            assert refused.value.data == data
