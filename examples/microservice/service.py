"""The ``utils`` microservice from GOSF's docs: a standard GOSF app with ``echo``.

Run it with ``python -m examples.microservice.service`` (port 5001, or
``UTILS_PORT``), or ``hypercorn examples.microservice.service:app``.
"""

from __future__ import annotations

import os

import gosf

# Its clients are other services, so meta travels back to them (a browser-facing
# app keeps the default, expose_meta=False).
app = gosf.App({"port": int(os.environ.get("UTILS_PORT", "5001")), "expose_meta": True})


@app.listen("echo")
async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    """Answer with the request's text; meta travels back to the calling service."""
    return gosf.Message(
        success=True,
        text=request.message.text,
        meta=request.message.meta,
        body=request.message.body,
    )


if __name__ == "__main__":
    app.configure({**app.config.model_dump(by_alias=True), "host": "127.0.0.1"})
    print(f"utils microservice on 127.0.0.1:{app.config.port}", flush=True)
    app.startup()
