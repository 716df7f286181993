"""Plugins: objects that register hooks and offer methods to apps.

A plugin has a ``name`` (defaults to its class name), ``activate(app)`` and
``deactivate(app)``; both may be coroutines. Plugins are activated in
registration order when the app starts (inside the app's task group, so they
may start background tasks with ``app.start_soon``) and deactivated in the
reverse order when it stops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._app import App

__all__ = ("Plugin", "plugin_name")


@runtime_checkable
class Plugin(Protocol):
    """What :meth:`gosf.App.register_plugin` accepts."""

    def activate(self, app: App) -> Any: ...

    def deactivate(self, app: App) -> Any: ...


def plugin_name(plugin: Plugin) -> str:
    name = getattr(plugin, "name", None)
    return name if isinstance(name, str) and name else type(plugin).__name__
