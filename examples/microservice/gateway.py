"""A gateway app that forwards a browser's request to the ``utils`` microservice.

As GOSF's docs: register the service, then call it from a controller. The
gateway keeps serving when the service is down (the client gets
``UTILS_UNAVAILABLE``), and reconnects by itself when it is back.

Run the service first (``python -m examples.microservice.service``), then
``python -m examples.microservice.gateway`` (port 9999, or ``GATEWAY_PORT``).
"""

from __future__ import annotations

import os

import gosf

app = gosf.App({"port": int(os.environ.get("GATEWAY_PORT", "9999"))})
utils = app.register_microservice(
    "utils", os.environ.get("UTILS_HOST", "127.0.0.1"), int(os.environ.get("UTILS_PORT", "5001"))
)


@app.listen("echo")
async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    """Forward to utils.echo with a trace id in meta (which browsers never see)."""
    forwarded = request.message.model_copy(update={"meta": {"gateway": client.sid}})
    try:
        answer = await utils.call("echo", forwarded)
    except gosf.MicroserviceTimeout:
        return gosf.Message.failure("UTILS_TIMEOUT")
    except gosf.MicroserviceError:
        return gosf.Message.failure("UTILS_UNAVAILABLE")
    return gosf.Message.success(
        answer.text, {"via": "utils", "traced": answer.meta == forwarded.meta}
    )


if __name__ == "__main__":
    app.configure({**app.config.model_dump(by_alias=True), "host": "127.0.0.1"})
    print(f"gateway on 127.0.0.1:{app.config.port}, utils at {utils.url}", flush=True)
    app.startup()
