"""GOSF's sample app (``ambelovsky/gosf-sample-app``), ported.

Serve it with::

    python -m examples.sample_app            # gosf.startup with the config below
    hypercorn examples.sample_app:app        # or any ASGI server

Configuration: ``SERVER`` (the Go app's ``server.json``) unless the
environment variable ``GOSF_ENV`` is set to anything but ``dev``, then
``SERVER_SECURE`` (``server-secure.json``: TLS with ``ssl.crt``/``ssl.key``
from the working directory, as the Go app reads them).

Endpoints:

* ``auth.register``: broadcasts ``success("new client registered")`` on
  ``admin.register`` to room ``admin``, joins the caller to ``testRoom``,
  replies ``success("client registered")``.
* ``util.echo``: replies with the request's text passed through the sample
  plugin's ``echo``, plus ``" - " + body.description`` when given, and a fixed
  body.
* ``util.groupEcho``: sends that same reply (without the request's ids) to
  the other members of ``testRoom`` on ``util.groupEcho``; the caller gets a
  bare ``success()``.

It loads the sample plugin (logging every hook) and the message counter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import gosf
from examples.plugins import MessageCounter, SamplePlugin

__all__ = ("SERVER", "SERVER_SECURE", "app", "load_config", "make_app")

SERVER: Final[Mapping[str, Any]] = {"port": 9990, "path": "/"}
"""The Go app's ``server.json``."""

SERVER_SECURE: Final[Mapping[str, Any]] = {
    "port": 9999,
    "path": "/",
    "secure": True,
    "ssl-cert": "ssl.crt",
    "ssl-key": "ssl.key",
}
"""The Go app's ``server-secure.json``."""

ADMIN_ROOM: Final = "admin"
TEST_ROOM: Final = "testRoom"


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``SERVER_SECURE`` when ``GOSF_ENV`` is set to anything but ``dev``, else ``SERVER``."""
    env = (os.environ if environ is None else environ).get("GOSF_ENV")
    return dict(SERVER_SECURE if env is not None and env != "dev" else SERVER)


def echo_body() -> dict[str, Any]:
    """The fixed body of every echo reply (a fresh copy each time)."""
    return {"oneThing": "this is one thing", "anotherThing": {"moreDetail": "and another thing..."}}


def make_app(config: Mapping[str, Any] | None = None) -> gosf.App:
    """The sample app with ``config`` (default: :func:`load_config`)."""
    app = gosf.App(load_config() if config is None else config)
    app.register_plugin(SamplePlugin())
    app.register_plugin(MessageCounter())

    def sample_plugin() -> SamplePlugin:
        plugin = app.plugins[SamplePlugin.name]
        if not isinstance(plugin, SamplePlugin):
            raise TypeError(f"plugin {SamplePlugin.name!r} is not the sample plugin")
        return plugin

    def echo_message(request: gosf.Request) -> gosf.Message:
        """The echo reply, without the request's ids (the framework adds them to responses)."""
        text = sample_plugin().echo(request.message.text)
        description = request.message.body.get("description")
        if description is not None:
            if not isinstance(description, str):
                # GOSF's Go sample panicked here (a type assertion to string).
                return gosf.Message.failure(
                    "BAD_REQUEST", {"reason": "body.description: expected a string"}
                )
            text += " - " + description
        return gosf.Message.success(text, echo_body())

    @app.listen("auth.register")
    async def register(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        await app.broadcast(
            ADMIN_ROOM, "admin.register", gosf.Message.success("new client registered")
        )
        client.join(TEST_ROOM)
        return gosf.Message.success("client registered")

    @app.listen("util.echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return echo_message(request)

    @app.listen("util.groupEcho")
    async def group_echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        message = echo_message(request)
        if not message.success:
            return message
        await client.broadcast(TEST_ROOM, "util.groupEcho", message)
        return gosf.Message.success()

    return app


app = make_app()
"""The sample app (an ASGI app: ``hypercorn examples.sample_app:app``)."""
