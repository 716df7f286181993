"""GOSF's "Your First Server": an echo endpoint.

Run it with either of::

    python -m examples.echo                     # gosf.startup on 127.0.0.1:9999 (trio)
    hypercorn examples.echo:app --worker-class trio --bind 127.0.0.1:9999

and talk to it from any Socket.IO client::

    socket.emit("echo", {text: "Hello world."}, (response) => console.log(response));

The reply ``{"success": true, "text": "Hello world."}`` arrives twice, as GOSF
does it: as the ack, and as an ``echo`` event.
"""

from __future__ import annotations

import gosf


async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message.success(request.message.text)


gosf.listen("echo", echo)

app = gosf.app
asgi = app  # the name the first releases used


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="GOSF's first server: an echo endpoint")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="trio")
    args = parser.parse_args()
    print(f"gosf echo server on http://{args.host}:{args.port}/socket.io/ ({args.backend})")
    gosf.startup({"host": args.host, "port": args.port, "backend": args.backend})
