"""An emitter script, as a cron job would be: ``python -m tests.apps.emit_script URL ROOM``.

Used by tests/interop/test_cluster.py: with ``gosf.BlockingEmitter`` on the
Redis broker ``URL`` (no server, no event loop of its own), it emits ``news``
``{"text": "room"}`` to ``ROOM``, then ``news`` ``{"text": "all"}`` to everyone.
"""

from __future__ import annotations

import sys

import gosf


def main() -> None:
    url, room = sys.argv[1:3]
    with gosf.BlockingEmitter(url) as emitter:
        emitter.emit("news", {"text": "room"}, to=room)
        emitter.emit("news", {"text": "all"})


if __name__ == "__main__":
    main()
