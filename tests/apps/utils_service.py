"""A ``utils`` service for the microservice fault tests: echo, and a slow endpoint."""

from __future__ import annotations

import anyio

import gosf

app = gosf.App(expose_meta=True, shutdown_grace=0.5)


@app.listen("echo")
async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    return gosf.Message(success=True, text=request.message.text, meta=request.message.meta)


@app.listen("slow")
async def slow(client: gosf.Client, request: gosf.Request) -> gosf.Message:
    await anyio.sleep(float(request.message.body.get("seconds", 5)))
    return gosf.Message.success("late")
