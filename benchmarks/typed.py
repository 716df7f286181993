"""What typing costs: instructions per round trip of the GOSF cycle echoing a body,
without a body model and with one (``python -m benchmarks.typed``).

The servers (``benchmarks.servers``' :data:`TYPED_SERVERS`) get the same
request, a GOSF message whose body has five fields: ``gosf-app-body`` sends
``request.message.body`` back as it came; ``gosf-app-typed-in`` declares
``gosf.Request[EchoBody]`` (the body is validated) and sends the dict back the
same way; ``gosf-app-typed`` also declares ``-> EchoBody``, so the reply is
serialised from the model. The count is
``benchmarks.instructions``' (valgrind's callgrind, the server's user-space
instructions only), with this request in place of the throughput benchmark's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import gosf

__all__ = ("BODY", "EchoBody", "body_app", "main")


class EchoBody(BaseModel):
    """The body both servers echo."""

    user: str
    room: str
    text: str
    tags: list[str]
    priority: int


BODY = '{"user":"ada","room":"lobby","text":"hello","tags":["a","b"],"priority":2}'
PAYLOAD = '{"id":1,"text":"hello","body":' + BODY + "}"


def body_app(server: str) -> gosf.App:
    """The GOSF cycle echoing the request's body: as a dict (``gosf-app-body``),
    validated into :class:`EchoBody` and sent back as a dict
    (``gosf-app-typed-in``), or validated and sent back through the response
    model (``gosf-app-typed``). Built here, where ``gosf`` and the model are
    module names its annotations can find."""
    app = gosf.App()
    if server == "gosf-app-typed":

        @app.listen("echo")
        async def echo_typed(client: gosf.Client, request: gosf.Request[EchoBody]) -> EchoBody:
            return request.body

    elif server == "gosf-app-typed-in":

        @app.listen("echo")
        async def echo_in(client: gosf.Client, request: gosf.Request[EchoBody]) -> gosf.Message:
            return gosf.Message.success(body=request.message.body)

    else:

        @app.listen("echo")
        async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
            return gosf.Message.success(body=request.message.body)

    return app


def main(argv: list[str] | None = None) -> int:
    from . import loadgen
    from .instructions import measure
    from .procs import stop_on_sigterm
    from .servers import TYPED_SERVERS, WORKER_CLASSES

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", nargs="+", choices=WORKER_CLASSES, default=["asyncio"])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: install valgrind (Debian: apt-get install valgrind)")
            return 2
    stop_on_sigterm()
    # The load generator's request, for this run only: a body to validate.
    loadgen.PAYLOAD = PAYLOAD
    results: list[dict[str, Any]] = []
    for worker in args.workers:
        counts = {}
        for server in TYPED_SERVERS:
            result = measure(server, worker, args.clients, args.round_trips)
            counts[server] = result["per_round_trip"]
            print(f"[{worker}] {server}: {result['per_round_trip']:,} instructions per round trip")
            results.append(result)
        for server in TYPED_SERVERS[1:]:
            extra = counts[server] / counts["gosf-app-body"] - 1
            print(f"[{worker}] {server} against gosf-app-body: {extra:+.1%}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
