"""Serve the chat: ``python -m examples.chat [--host 127.0.0.1] [--port 8000] [--backend trio]``."""

from __future__ import annotations

import argparse
import sys

from examples.chat.app import CLIENT_JS, app


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, configure the chat app and serve it until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.chat", description="a browser chat on gosf"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (8000)")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="trio")
    args = parser.parse_args(argv)
    if not CLIENT_JS.is_file():
        print(
            f"warning: {CLIENT_JS} is missing, the page cannot connect;\n"
            "         run: npm ci --prefix examples/chat",
            file=sys.stderr,
        )
    app.configure({"host": args.host, "port": args.port, "backend": args.backend})
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"gosf chat on http://{host}:{args.port}/ ({args.backend}); Ctrl-C stops it", flush=True)
    app.startup()


if __name__ == "__main__":
    main()
