"""The official Socket.IO Admin UI for a gosf server: its server protocol on
namespace ``/admin`` and the UI itself, served offline. See docs/admin.md.

    import gosf, gosf.admin

    app = gosf.App()
    gosf.admin.instrument(
        app.server,
        auth=gosf.admin.BasicAuth("admin", gosf.admin.hash_password("secret")),
    )
"""

from __future__ import annotations

from typing import Literal

from .._config import AdminConfig
from .._socketio.server import SocketIOServer
from ._auth import BasicAuth, Sessions, hash_password
from ._server import Admin, Mode
from ._ui import UI_DIR, AdminUI

__all__ = (
    "UI_DIR",
    "Admin",
    "AdminUI",
    "BasicAuth",
    "Mode",
    "Sessions",
    "hash_password",
    "instrument",
    "instrument_from_config",
)


def instrument(
    server: SocketIOServer,
    *,
    auth: BasicAuth | Literal[False],
    read_only: bool = False,
    mode: Mode = "development",
    namespace: str = "/admin",
    server_id: str | None = None,
) -> Admin:
    """Serve the Admin UI's protocol on ``server`` (namespace ``/admin``): an
    installed :class:`Admin`.

    ``auth`` has no default: a :class:`BasicAuth`, or ``False`` to let anyone
    in. Call it before the server runs (its task starts with the server).

    Raises:
        TypeError: ``auth`` is neither a :class:`BasicAuth` nor ``False``.
        ValueError: a bad option, or the namespace has the UI's handlers already.
    """
    admin = Admin(
        server, auth=auth, read_only=read_only, mode=mode, namespace=namespace, server_id=server_id
    )
    return admin.install()


def instrument_from_config(server: SocketIOServer, config: AdminConfig) -> Admin:
    """:func:`instrument` as the ``admin`` key of a :class:`gosf.App`'s config says.

    Raises:
        ValueError: ``password_hash`` is not a bcrypt hash, or the namespace
            has the UI's handlers already.
    """
    auth: BasicAuth | Literal[False] = False
    if config.username is not None and config.password_hash is not None:
        auth = BasicAuth(config.username, config.password_hash)
    return instrument(
        server, auth=auth, read_only=config.read_only, mode=config.mode, namespace=config.namespace
    )
