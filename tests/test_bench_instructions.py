"""The instruction-count benchmark's parsing of callgrind dumps (the run itself needs valgrind)."""

from __future__ import annotations

import pytest

from benchmarks.instructions import parse_totals


def test_totals_line_wins() -> None:
    dump = "version: 1\nevents: Ir\nsummary: 10\n\nfn=main\n1 5\ntotals: 271183216\n"
    assert parse_totals(dump) == 271183216


def test_summary_when_there_are_no_totals() -> None:
    assert parse_totals("events: Ir\nsummary: 42\n") == 42


def test_a_dump_without_counts_is_an_error() -> None:
    with pytest.raises(ValueError, match="no totals"):
        parse_totals("events: Ir\nfn=main\n")
