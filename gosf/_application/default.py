"""The default app behind GOSF's module-level API (``gosf.listen``, ``gosf.startup``, ...).

GOSF registers everything on one package-level app; so does gosf, but the app
is an ordinary :class:`App` (``gosf.app``), and apps that want more than one
create their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from .._config import Config
from .app import App, Plugin
from .cycle import Controller
from .message import Message
from .microservice import Microservice

__all__ = (
    "app",
    "broadcast",
    "deregister_microservice",
    "get_microservice",
    "listen",
    "on_after_broadcast",
    "on_after_client_broadcast",
    "on_after_request",
    "on_after_response",
    "on_before_broadcast",
    "on_before_client_broadcast",
    "on_before_request",
    "on_before_response",
    "on_connect",
    "on_disconnect",
    "register_microservice",
    "register_plugin",
    "startup",
)

C = TypeVar("C", bound=Controller)

app = App()
"""The default application; it is also an ASGI app (``hypercorn mymodule:app``)."""


@overload
def listen(endpoint: str) -> Callable[[C], C]: ...
@overload
def listen(endpoint: str, controller: C) -> C: ...


def listen(endpoint: str, controller: Controller | None = None) -> Any:
    """GOSF's ``Listen``: route ``endpoint`` to ``controller`` on the default app.

    Also a decorator: ``@gosf.listen("echo")``.
    """
    if controller is None:
        return app.listen(endpoint)
    return app.listen(endpoint, controller)


async def broadcast(room: str, endpoint: str, message: Message) -> None:
    """GOSF's ``Broadcast``: ``message`` to everyone in ``room`` (``""``: every client)."""
    await app.broadcast(room, endpoint, message)


def register_plugin(plugin: Plugin) -> Plugin:
    """GOSF's ``RegisterPlugin`` on the default app."""
    return app.register_plugin(plugin)


def register_microservice(
    name: str, host: str, port: int, secure: bool = False, **options: Any
) -> Microservice:
    """GOSF's ``RegisterMicroservice`` on the default app."""
    return app.register_microservice(name, host, port, secure, **options)


def deregister_microservice(name: str) -> None:
    """GOSF's ``DeregisterMicroservice``: an unknown name is ignored."""
    app.deregister_microservice(name)


def get_microservice(name: str) -> Microservice | None:
    """GOSF's ``GetMicroservice``: the registered microservice, or ``None``."""
    return app.get_microservice(name)


def startup(config: Mapping[str, Any] | Config | None = None, **options: Any) -> None:
    """GOSF's ``Startup``: configure the default app and serve it until stopped.

    ``gosf.startup({"port": 9999})`` blocks, serving with ``config["server"]``
    (hypercorn by default, or uvicorn) under ``config["backend"]`` (asyncio by
    default, or trio with hypercorn), until Ctrl-C or SIGTERM, then shuts down
    gracefully.

    Raises:
        pydantic.ValidationError: the configuration is invalid.
    """
    app.configure(config, **options)
    app.startup()


H = TypeVar("H", bound=Callable[..., Any])


def _default_hook(name: str) -> Callable[[H], H]:
    def register(callback: H) -> H:
        getattr(app, name)(callback)
        return callback

    register.__name__ = name
    register.__doc__ = f"GOSF's ``{name}`` on the default app (also a decorator)."
    return register


on_connect = _default_hook("on_connect")
on_disconnect = _default_hook("on_disconnect")
on_before_request = _default_hook("on_before_request")
on_after_request = _default_hook("on_after_request")
on_before_response = _default_hook("on_before_response")
on_after_response = _default_hook("on_after_response")
on_before_broadcast = _default_hook("on_before_broadcast")
on_after_broadcast = _default_hook("on_after_broadcast")
on_before_client_broadcast = _default_hook("on_before_client_broadcast")
on_after_client_broadcast = _default_hook("on_after_client_broadcast")
