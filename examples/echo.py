"""GOSF's "Your First Server": an echo endpoint.

Run it with either of::

    hypercorn examples.echo:asgi --worker-class trio --bind 127.0.0.1:9999
    python -m examples.echo            # the same, on 127.0.0.1:9999

and talk to it from any Socket.IO client::

    socket.emit("echo", {text: "Hello world."}, (response) => console.log(response));

The reply ``{"success": true, "text": "Hello world."}`` arrives twice, as GOSF
does it: as the ack, and as an ``echo`` event.
"""

from __future__ import annotations

from typing import Any

import gosf

server = gosf.SocketIOServer()


@server.on("echo")
async def echo(socket: gosf.Socket, request: Any = None) -> dict[str, Any]:
    text = request.get("text") if isinstance(request, dict) else None
    response: dict[str, Any] = {"success": True}
    if text:
        response["text"] = text
    await socket.emit("echo", response)
    return response


asgi = server.asgi


def main() -> None:
    import argparse

    from hypercorn.config import Config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="trio")
    args = parser.parse_args()
    config = Config()
    config.bind = [f"{args.host}:{args.port}"]
    config.accesslog = None
    print(f"gosf echo server on http://{args.host}:{args.port}/socket.io/ ({args.backend})")
    if args.backend == "trio":
        import trio
        from hypercorn.trio import serve as trio_serve

        trio.run(trio_serve, asgi, config)  # type: ignore[arg-type]
    else:
        import asyncio

        from hypercorn.asyncio import serve as asyncio_serve

        asyncio.run(asyncio_serve(asgi, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
