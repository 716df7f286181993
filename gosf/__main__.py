"""``python -m gosf`` and the ``gosf`` command: see ``gosf/_application/cli.py``."""

from __future__ import annotations

import sys

from . import __version__
from ._application.cli import main as _main

__all__ = ("main",)


def main() -> None:
    """The ``gosf`` console script."""
    sys.exit(_main(version=__version__))


if __name__ == "__main__":
    main()
