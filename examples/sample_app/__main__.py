"""``python -m examples.sample_app [--host H] [--port P]``: serve the sample app.

Without options it uses its configuration (``SERVER``, or ``SERVER_SECURE``
when ``GOSF_ENV`` is set to anything but ``dev``), as the Go app did. The
plugins' log lines (every hook, the message rate) go to stderr, as the Go app
printed them.
"""

from __future__ import annotations

import argparse
import logging

from .app import app, load_config


def main() -> None:
    parser = argparse.ArgumentParser(description="GOSF's sample app")
    parser.add_argument("--host", help="interface to bind (default: the config's, all)")
    parser.add_argument("--port", type=int, help="port (default: the config's)")
    args = parser.parse_args()
    overrides = {key: value for key, value in vars(args).items() if value is not None}
    if overrides:
        app.configure({**load_config(), **overrides})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = app.config
    print(f"gosf sample app on {config.host or '*'}:{config.port} (secure: {config.secure})")
    app.startup()


if __name__ == "__main__":
    main()
