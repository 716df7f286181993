"""The page that shows the app's AsyncAPI document, offline.

The page is ``asyncapi.html`` beside this module: a small script that renders
the document embedded in it (endpoints, their request and reply messages,
broadcasts, each body's fields with their types, constraints and
descriptions). Nothing is fetched, from the app or from a CDN, so it works
without a network and without npm; the document's JSON is linked for tools.
"""

from __future__ import annotations

import json
from functools import cache
from html import escape
from importlib.resources import files
from typing import Any

import orjson

__all__ = ("docs_page",)


@cache
def _template() -> str:
    return files(__package__ or "gosf._application").joinpath("asyncapi.html").read_text("utf-8")


def docs_page(document: dict[str, Any], json_href: str | None) -> str:
    """The page's HTML for ``document``; ``json_href`` links to its JSON (``None``:
    no link)."""
    # Inside <script>, "</" would end the element: JSON lets "<" be written as \u003c.
    embedded = orjson.dumps(document).decode().replace("<", "\\u003c")
    title = str(document.get("info", {}).get("title", "AsyncAPI"))
    return (
        _template()
        .replace("__TITLE__", escape(title))
        .replace("__JSON_HREF_JS__", json.dumps(json_href).replace("<", "\\u003c"))
        .replace("__JSON_HREF__", escape(json_href or ""))
        .replace("__DOCUMENT__", embedded)
    )
