"""A griffe extension: gosf's docstrings written for Sphinx, read as Markdown.

gosf's docstrings name other objects with Sphinx roles (``:class:`App```,
``:func:`~gosf.testing.connect```) and introduce literal blocks with ``::``;
in mkdocstrings' Markdown the roles would show as written and the ``::`` as a
stray line. This turns each role into inline code and drops the ``::`` (the
indented block after it is already a Markdown code block). mkdocs.yml loads it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj|const):`~?([^`]+)`")
# "text::" ends a paragraph that introduces a literal block: keep "text:";
# a "::" alone on its line goes.
LITERAL = re.compile(r"(?m)(?<=\S)::$|^\s*::\n")


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = ROLE.sub(r"`\1`", obj.docstring.value)
            obj.docstring.value = LITERAL.sub(lambda m: ":" if m.group(0) == "::" else "", text)
