"""A GOSF app started the GOSF way: ``python -m tests.apps.startup_app '<json config>'``.

Used by tests/interop/test_startup.py and test_shutdown.py. ``GOSF_TEST_MARKER``
names a file the plugin writes to when it is deactivated (to show shutdown
reached plugins). Served by an ASGI server's command line instead
(``hypercorn tests.apps.startup_app:app``), the app takes its configuration
from the JSON in ``GOSF_TEST_CONFIG``.
"""

from __future__ import annotations

import json
import os
import sys

import anyio

import gosf


async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message.success(request.message.text)


async def slow(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    print("SLOW", flush=True)  # the request is in flight: a test may now stop the server
    await anyio.sleep(float(request.message.body.get("seconds", 1)))
    return gosf.Message.success("finished")


class MarkerPlugin:
    name = "marker"

    def activate(self, app: gosf.App) -> None:
        print("READY", flush=True)

    def deactivate(self, app: gosf.App) -> None:
        marker = os.environ.get("GOSF_TEST_MARKER")
        if marker:
            with open(marker, "w") as file:
                file.write("deactivated")


gosf.listen("echo", echo)
gosf.listen("slow", slow)
gosf.register_plugin(MarkerPlugin())

app = gosf.app
if "GOSF_TEST_CONFIG" in os.environ:
    app.configure(json.loads(os.environ["GOSF_TEST_CONFIG"]))

if __name__ == "__main__":
    gosf.startup(json.loads(sys.argv[1]))
