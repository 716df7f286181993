"""Which event loop runs in this thread: asked of asyncio and trio themselves.

anyio has no public way to name the running backend, and sniffio (which anyio
used to bring along) may be absent from a plain install. For code that asks
once (at startup, at a signal), not per message: a server asks it once when
it starts, for its events and wake-ups (``_engineio/event.py``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Literal

__all__ = ("current_backend",)


def current_backend() -> Literal["asyncio", "trio"] | None:
    """``"asyncio"`` or ``"trio"`` when one runs in this thread, else ``None``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    trio = sys.modules.get("trio")  # a trio run has imported it; nothing to import here
    if trio is not None and trio.lowlevel.in_trio_run():
        return "trio"
    return None
