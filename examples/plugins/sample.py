"""GOSF's sample plugin (``ambelovsky/gosf-sample-plugin``), ported.

It registers all ten hooks, each logging one line (a basic console log of the
request/response cycle), and offers apps one method, :meth:`SamplePlugin.echo`.
One ``util.echo`` request logs, in order::

    Request received for util.echo endpoint.
    Request for util.echo endpoint was processed by the controller.
    Response for util.echo endpoint is being prepared.
    Response for util.echo endpoint was sent.

The lines go to the ``gosf.sample_plugin`` logger at ``INFO``; configure
logging (``logging.basicConfig(level=logging.INFO)``) to see them. Unlike the
Go original, whose ``Activate`` did nothing because hooks were global, the
hooks are registered on ``activate`` and removed on ``deactivate``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import gosf

__all__ = ("SamplePlugin",)

log = logging.getLogger("gosf.sample_plugin")


def _room(room: str) -> str:
    """How the log names a room: ``""`` (every client) is ``all``."""
    return room or "all"


class SamplePlugin:
    """Logs every hook; exposes :meth:`echo` to apps."""

    name: ClassVar[str] = "sample"

    # -- what the plugin offers apps ------------------------------------------------

    def echo(self, message: str) -> str:
        """Return ``message`` unchanged (the Go plugin's ``Echo``)."""
        return message

    # -- plugin life cycle ------------------------------------------------------------

    def _hooks(self) -> dict[str, Callable[..., Any]]:
        return {
            "on_connect": self.on_connect,
            "on_disconnect": self.on_disconnect,
            "on_before_request": self.on_before_request,
            "on_after_request": self.on_after_request,
            "on_before_response": self.on_before_response,
            "on_after_response": self.on_after_response,
            "on_before_broadcast": self.on_before_broadcast,
            "on_after_broadcast": self.on_after_broadcast,
            "on_before_client_broadcast": self.on_before_client_broadcast,
            "on_after_client_broadcast": self.on_after_client_broadcast,
        }

    def activate(self, app: gosf.App) -> None:
        """Register the ten hooks on ``app``."""
        for hook, callback in self._hooks().items():
            app.hooks.add(hook, callback)

    def deactivate(self, app: gosf.App) -> None:
        """Remove the hooks again (removing absent ones does nothing)."""
        for hook, callback in self._hooks().items():
            app.hooks.remove(hook, callback)

    # -- the hooks ----------------------------------------------------------------------

    def on_connect(self, client: gosf.Client, request: gosf.Request) -> None:
        log.info("Client connected.")

    def on_disconnect(self, client: gosf.Client, request: gosf.Request) -> None:
        log.info("Client disconnected.")

    def on_before_request(self, client: gosf.Client, request: gosf.Request) -> None:
        log.info("Request received for %s endpoint.", request.endpoint)

    def on_after_request(
        self, client: gosf.Client, request: gosf.Request, response: gosf.Message | None
    ) -> None:
        log.info("Request for %s endpoint was processed by the controller.", request.endpoint)

    def on_before_response(
        self, client: gosf.Client, request: gosf.Request, response: gosf.Message | None
    ) -> None:
        log.info("Response for %s endpoint is being prepared.", request.endpoint)

    def on_after_response(
        self, client: gosf.Client, request: gosf.Request, response: gosf.Message | None
    ) -> None:
        log.info("Response for %s endpoint was sent.", request.endpoint)

    def on_before_broadcast(self, endpoint: str, room: str, message: gosf.Message) -> None:
        log.info("Broadcast for %s endpoint is preparing to send to %s.", endpoint, _room(room))

    def on_after_broadcast(self, endpoint: str, room: str, message: gosf.Message) -> None:
        log.info("Broadcast for %s endpoint was sent to %s.", endpoint, _room(room))

    def on_before_client_broadcast(
        self, client: gosf.Client, endpoint: str, room: str, message: gosf.Message
    ) -> None:
        log.info("Broadcast for %s endpoint is preparing to send to %s.", endpoint, _room(room))

    def on_after_client_broadcast(
        self, client: gosf.Client, endpoint: str, room: str, message: gosf.Message
    ) -> None:
        log.info("Broadcast for %s endpoint was sent to %s.", endpoint, _room(room))
