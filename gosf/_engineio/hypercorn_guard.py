"""A guard for hypercorn issue 225 under its trio worker.

hypercorn 0.17/0.18 answer a websocket upgrade request that carries trailing
bytes (data right after the request head, before the handshake is accepted)
with a 400, then fail inside h11 (``Can't send data when our state is
ERROR``). Under the trio worker that exception escapes the connection's task
into ``serve_listeners`` and the *whole server process* exits: one bad request
takes every client down. (The asyncio worker only logs it.)

gosf cannot fix hypercorn, but it can keep one connection's failure to that
connection: when the app's lifespan starts under hypercorn's trio worker,
:func:`install` wraps ``hypercorn.trio.tcp_server.TCPServer.run`` so an error
escaping one connection is logged and that connection dropped. Nothing is
patched when hypercorn's trio worker is not the one running the app.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ("install",)

log = logging.getLogger("gosf.hypercorn")

_MARK = "__gosf_guarded__"


def install() -> bool:
    """Guard hypercorn's trio connection handler; ``True`` when the guard is in place."""
    module = sys.modules.get("hypercorn.trio.tcp_server")
    if module is None:
        return False
    server_class: Any = getattr(module, "TCPServer", None)
    original: Callable[[Any], Awaitable[None]] | None = getattr(server_class, "run", None)
    if original is None:
        return False
    if getattr(original, _MARK, False):
        return True

    @functools.wraps(original)
    async def run(self: Any) -> None:
        try:
            await original(self)
        except Exception as exc:
            # A client's malformed request does this: one line, the trace at DEBUG.
            cause: BaseException = exc
            while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
                cause = cause.exceptions[0]
            log.warning(
                "a connection failed inside hypercorn (see hypercorn issue 225): %r; "
                "dropped that connection, the server keeps serving",
                cause,
            )
            log.debug("the failure inside hypercorn", exc_info=True)

    setattr(run, _MARK, True)
    server_class.run = run
    return True
