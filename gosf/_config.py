"""The GOSF application's configuration: :class:`Config` (what ``gosf.startup``
and ``gosf.App`` take) and its parts, validated once, when the app is
configured: a wrong type or an unknown key is a
:class:`pydantic.ValidationError` at start, never a crash later. The
protocol server's own options are ``_options.py``'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._options import Recovery, ServerOptions

__all__ = ("AdminConfig", "Config", "check_pem_file")

# What each TLS file must hold: a PEM block of this kind (the label of a
# private key varies with its algorithm: "PRIVATE KEY", "RSA PRIVATE KEY", ...).
_PEM_BLOCKS = {
    "ssl-key": ("private key", re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")),
    "ssl-cert": ("certificate", re.compile(rb"-----BEGIN (TRUSTED )?CERTIFICATE-----")),
}


def check_pem_file(key: str, path: str) -> None:
    """Check that the TLS file ``path`` (given as config key ``key``:
    ``ssl-key`` or ``ssl-cert``) can be read and holds what the key needs.

    Raises:
        ValueError: one line naming the key and the file: it cannot be read
            (missing, a directory, no permission), or it is not PEM.
    """
    what, block = _PEM_BLOCKS[key]
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as error:
        raise ValueError(f"{key}: cannot read {what} {path}: {error.strerror}") from None
    if block.search(content) is None:
        raise ValueError(
            f"{key}: {path} is not a PEM {what} (no '-----BEGIN ...{what.upper()}-----' line)"
        )


class AdminConfig(BaseModel):
    """The official Socket.IO Admin UI for a :class:`gosf.App` (docs/admin.md):
    its server on ``namespace`` and its page at ``ui_path``.

    Give ``username`` and ``password_hash`` (a bcrypt hash:
    ``gosf.admin.hash_password``; needs ``gosf[admin]``), or ``auth: false``
    spelled out to let anyone in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str | None = None
    """Who logs in."""

    password_hash: str | None = Field(default=None, repr=False)
    """The bcrypt hash of the password (a password in plain text is refused)."""

    auth: Literal[False] | None = None
    """``false``: no login at all. It must be said: there is no default."""

    read_only: bool = False
    """Show everything, allow no action (emit, join, leave, disconnect)."""

    mode: Literal["development", "production"] = "development"
    """``production``: only the aggregated ``server_stats``, no per-socket events."""

    namespace: str = Field(default="/admin", pattern=r"^/")
    """The namespace the UI connects to."""

    ui_path: str | None = "admin-ui"
    """Where, under the app's ``path``, the UI's page is served; ``None``: not served."""

    @model_validator(mode="after")
    def _auth_said(self) -> AdminConfig:
        with_password = self.username is not None and self.password_hash is not None
        if with_password == (self.auth is False):
            raise ValueError(
                "admin: give username and password_hash, or auth: false to let anyone in"
            )
        return self


class Config(BaseModel):
    """The configuration of a gosf app and of :func:`gosf.startup`.

    It accepts GOSF's keys exactly as the Go original documents them —
    ``host``, ``port``, ``path``, ``secure``, ``ssl-key``, ``ssl-cert``,
    ``rejectInvalidHostnames``, ``enableCORS`` — plus gosf's own. Build it
    from a dict with :meth:`from_mapping` (or ``Config(**{...})``); an unknown
    key or a wrong type raises :class:`pydantic.ValidationError`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # -- GOSF's keys ----------------------------------------------------------
    host: str = ""
    """Interface to bind; ``""`` means every interface (GOSF's default)."""

    port: int = Field(default=9999, ge=0, le=65535)
    """TCP port; 0 picks a free one."""

    path: str = "/"
    """Where the app is mounted; Socket.IO answers on ``<path>socket.io/``."""

    secure: bool = False
    """Serve TLS (wss/https); needs ``ssl-key`` and ``ssl-cert``."""

    ssl_key: str | None = Field(default=None, alias="ssl-key")
    """The private key's PEM file (with ``secure``: read when the config is built)."""

    ssl_cert: str | None = Field(default=None, alias="ssl-cert")
    """The certificate's PEM file, its chain after it (with ``secure``: read
    when the config is built)."""

    reject_invalid_hostnames: bool = Field(default=False, alias="rejectInvalidHostnames")
    """Answer ``421`` to requests whose ``Host`` is not a name of the certificate
    (or of ``valid_hostnames``): the app's own check, on every path, however
    it is served (``gosf.startup``, ``hypercorn myapp:app``, uvicorn)."""

    enable_cors: str | list[str] | None = Field(default=None, alias="enableCORS")
    """Origins allowed from browsers on other origins: ``"*"``, one origin,
    a comma-separated list or a list (GOSF left this key unused; gosf gives it
    this meaning). The app's own origin always passes."""

    # -- gosf's own -----------------------------------------------------------
    backend: Literal["asyncio", "trio"] = "asyncio"
    """Event loop :func:`gosf.startup` serves with."""

    server: Literal["hypercorn", "uvicorn"] = "hypercorn"
    """ASGI server :func:`gosf.startup` and ``gosf run`` serve with: hypercorn
    (asyncio or trio) or uvicorn (asyncio only, the fastest; needs
    ``gosf[uvicorn]``). See "Which ASGI server" in docs/deployment.md."""

    valid_hostnames: list[str] | None = None
    """Host names accepted when ``rejectInvalidHostnames`` is on (default: the certificate's)."""

    ping_interval: float = Field(default=25.0, gt=0)
    """Seconds between heartbeats."""
    ping_timeout: float = Field(default=20.0, gt=0)
    """Seconds a client has to answer a heartbeat before its session is closed."""
    max_payload: int = Field(default=1_000_000, ge=1024)
    """Largest HTTP body or websocket message accepted, in bytes."""
    allow_eio3: bool = True
    """Accept Engine.IO 3 / Socket.IO 4 clients (socket.io JS 2.x)."""
    max_outbound_buffer: int = Field(default=1024, ge=1)
    """Packets queued for one client before it counts as a slow consumer
    (docs/backpressure.md)."""
    write_timeout: float | None = Field(default=None, gt=0)
    """Seconds a client's outbound queue may stay stuck before it is
    disconnected as a slow client (default: ``ping_interval + ping_timeout``)."""

    max_concurrent_requests: int = Field(default=64, ge=1)
    """Requests one client may have in flight before its reader waits."""

    expose_meta: bool = False
    """Send ``Message.meta`` to clients (by default it stays between services)."""

    root_page: bool = True
    """Answer ``path`` with a small page saying gosf is running and where
    Socket.IO answers. With ``other_app``, ``path`` is the other app's."""

    health_endpoint: str | None = "healthz"
    """Where, under ``path``, load balancers ask whether the app serves:
    ``{"status": "ok"}`` with 200 while it does, 503 while it drains or is not
    running. Answered even with ``other_app``; ``None`` turns it off."""

    asyncapi_path: str | None = "asyncapi.json"
    """Where, under ``path``, the app's AsyncAPI document is served (and YAML at
    the same name ending in ``.yaml`` when PyYAML is installed); ``None`` turns it off."""

    docs_path: str | None = "asyncapi"
    """Where, under ``path``, a page shows that document; ``None`` turns it off."""

    metrics_endpoint: str | None = None
    """Where, under ``path``, Prometheus scrapes the app's metrics (``"metrics"``;
    needs ``gosf[metrics]``; docs/metrics.md). Answered even with
    ``other_app``; ``None`` (the default) counts nothing."""

    shutdown_grace: float = Field(default=10.0, ge=0)
    """Seconds in-flight requests get to finish when the server stops."""

    drain_on_signal: bool = True
    """Take SIGINT/SIGTERM while the app runs in the main thread, drain, then
    hand the signal to the server (see docs/deployment.md). Off: the process's
    signals are left alone (a program that handles them itself calls
    :meth:`gosf.App.drain`)."""

    connect_timeout: float = Field(default=45.0, gt=0)
    """Seconds a new connection has to complete its Socket.IO connect."""

    upgrade_handover: float = Field(default=0.3, ge=0, le=5)
    """Seconds a new long-polling client of a cluster waits for its websocket
    upgrade before it connects, so that its session can move to whichever
    process the websocket reaches (``0``: off; see "No sticky sessions" in
    docs/deployment.md)."""

    parser: Literal["json", "msgpack"] = "json"
    """The Socket.IO codec of every client: JSON text packets, or ``msgpack``
    (npm ``socket.io-msgpack-parser``; needs ``gosf[msgpack]``)."""

    broker: str | None = None
    """Where broadcasts meet the other processes of a cluster: ``None`` (this
    process only) or ``redis://host:port/db``."""

    recovery: Recovery | None = None
    """Connection state recovery (``{"max_disconnection_duration": 120}``);
    ``None`` (the default): off. See :class:`gosf.Recovery`."""

    admin: AdminConfig | None = None
    """The official Socket.IO Admin UI (:class:`AdminConfig`); ``None`` (the
    default): off."""

    namespace: str = Field(default="/", pattern=r"^/")
    """The Socket.IO namespace the app listens in (GOSF's is ``"/"``); clients
    connect to it (``io("http://host:9999/api")``)."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | Config | None = None, **more: Any) -> Config:
        """Build a config from GOSF-style keys (``{"port": 9999, "ssl-key": ...}``).

        Raises:
            pydantic.ValidationError: unknown keys, wrong types, ``secure``
                without ``ssl-key``/``ssl-cert``, or TLS files that cannot be
                read or are not PEM.
        """
        if isinstance(values, Config):
            if not more:
                return values
            # Validated again (a model_copy is not): the new values may be wrong.
            return cls.model_validate({**values.model_dump(exclude_unset=True), **more})
        return cls.model_validate({**(values or {}), **more})

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with '/'")
        return value if value.endswith("/") else value + "/"

    @field_validator("health_endpoint")
    @classmethod
    def _health_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip("/")  # "/healthz" means what "healthz" means: under ``path``
        if not value:
            raise ValueError("health_endpoint needs a name (None turns it off)")
        if value == "socket.io" or value.startswith("socket.io/"):
            raise ValueError("health_endpoint cannot be on the Socket.IO path")
        return value

    @field_validator("asyncapi_path", "docs_path")
    @classmethod
    def _page_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip("/")  # under ``path``, as health_endpoint
        if not value or value == "socket.io" or value.startswith("socket.io/"):
            raise ValueError("needs a name off the Socket.IO path (None turns it off)")
        return value

    @model_validator(mode="after")
    def _server(self) -> Config:
        if self.server == "uvicorn" and self.backend == "trio":
            raise ValueError(
                "server 'uvicorn' runs on asyncio only: use backend 'asyncio', "
                "or server 'hypercorn' for trio"
            )
        return self

    @model_validator(mode="after")
    def _tls(self) -> Config:
        if self.secure and not (self.ssl_key and self.ssl_cert):
            raise ValueError("secure: true needs both 'ssl-key' and 'ssl-cert'")
        if self.secure and self.ssl_cert and self.ssl_key:
            # Read now, so that a wrong path is an error here and not a
            # traceback from the TLS library once the server starts.
            check_pem_file("ssl-cert", self.ssl_cert)
            check_pem_file("ssl-key", self.ssl_key)
        if self.reject_invalid_hostnames and not self.secure and not self.valid_hostnames:
            raise ValueError(
                "rejectInvalidHostnames needs secure: true (the certificate names the "
                "valid hosts) or an explicit valid_hostnames list"
            )
        return self

    def cors_origins(self) -> list[str] | Literal["*"] | None:
        """``enableCORS`` as the server takes it: ``"*"``, a list of origins, or ``None``."""
        value = self.enable_cors
        if value is None:
            return None
        if value == "*":
            return "*"
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return list(value)

    def server_options(self) -> ServerOptions:
        """The protocol server's options derived from this config."""
        # rejectInvalidHostnames: the names given, else the certificate's
        # (the validator made sure there is one or the other).
        hostnames = certificate = None
        if self.reject_invalid_hostnames:
            if self.valid_hostnames:
                hostnames = self.valid_hostnames
            else:
                certificate = self.ssl_cert
        return ServerOptions(
            path=self.path + "socket.io",
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_payload=self.max_payload,
            allow_eio3=self.allow_eio3,
            cors_allowed_origins=self.cors_origins(),
            valid_hostnames=hostnames,
            hostnames_certificate=certificate,
            max_outbound_buffer=self.max_outbound_buffer,
            write_timeout=self.write_timeout,
            max_concurrent_handlers=self.max_concurrent_requests,
            connect_timeout=self.connect_timeout,
            upgrade_handover=self.upgrade_handover,
            recovery=self.recovery,
            parser=self.parser,
        )
