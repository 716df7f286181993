"""The ``gosf`` command: ``gosf run module:app`` (also ``python -m gosf run``), and
``gosf asyncapi module:app``, which prints the app's AsyncAPI document.

``run`` imports the app, lays the command's flags over the app's own
configuration (a flag wins; then what the app's config sets; then the
command's defaults, ``127.0.0.1`` for the host as uvicorn and ``fastapi dev``
do), and serves it with hypercorn or uvicorn (``--server``) in this process
(``_application/startup.py``), under hypercorn's supervisor (``--workers N``,
hypercorn only), or under a reloader that restarts it when a ``.py`` file
changes (``--reload``, ``_application/reload.py``).

Everything a user can fix is one line on standard error and exit status 1
(2 for a wrong command line, argparse's): a target that does not import or
is not an ASGI app, a bad configuration, a port in use, trio or uvicorn
missing, ``--workers`` with uvicorn. An
exception raised by the user's module while it is imported keeps its
traceback (it is their code), followed by gosf's line.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from .._config import Config
from .app import App
from .asyncapi import to_json, to_yaml
from .startup import (
    StartupError,
    bind,
    check_backend,
    check_server,
    hypercorn_config,
    ready_line,
    run,
)

__all__ = ("CliError", "Target", "load", "main")

DEFAULT_HOST = "127.0.0.1"


class CliError(Exception):
    """What the command prints (one line) before it exits with status 1."""


# -- the target ---------------------------------------------------------------------------


@dataclass
class Target:
    """The app ``module:attribute`` names, and the configuration to serve it with."""

    spec: str
    app: Any
    config: Config

    @property
    def socketio_path(self) -> str | None:
        """Where Socket.IO answers, for a gosf app (another ASGI app: unknown)."""
        return self.config.server_options().path + "/" if isinstance(self.app, App) else None

    @property
    def has_broker(self) -> bool:
        return isinstance(self.app, App) and (
            self.app.config.broker is not None or self.app._broker is not None
        )


def load(spec: str) -> Any:
    """The object ``spec`` (``module:attribute``; the attribute defaults to ``app``) names.

    Raises:
        CliError: the module is not found or fails to import (the module's own
            traceback is printed first), the attribute is missing, or it is
            not an ASGI app.
    """
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    if not module_name:
        raise CliError(f"expected module:attribute (e.g. myservice:app), got {spec!r}")
    if os.getcwd() not in sys.path:  # as `python -m` does: the module beside you is found
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise CliError(
                f"cannot import {module_name!r}: no module named {missing!r} "
                f"(run gosf from the folder that holds it, or set PYTHONPATH)"
            ) from None
        traceback.print_exc()
        raise CliError(f"importing {module_name!r} failed: {error}") from None
    except Exception as error:
        traceback.print_exc()
        raise CliError(
            f"importing {module_name!r} failed: {type(error).__name__}: {error}"
        ) from None
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise CliError(f"module {module_name!r} has no attribute {attribute!r}{_hint(module)}")
        found = getattr(found, part)
    if not _is_asgi(found):
        raise CliError(
            f"{module_name}:{attribute} is not an ASGI app but a {type(found).__name__} "
            f"(expected a gosf.App or an async callable taking scope, receive, send)"
        )
    return found


def _hint(module: Any) -> str:
    apps = [name for name, value in vars(module).items() if isinstance(value, App)]
    return f" (it has {', '.join(sorted(apps))})" if apps else ""


def _is_asgi(value: Any) -> bool:
    if isinstance(value, App):
        return True
    if inspect.isclass(value) or not callable(value):
        return False
    call = value if inspect.isroutine(value) else type(value).__call__
    if not inspect.iscoroutinefunction(call):
        return False
    try:  # ASGI 3: app(scope, receive, send)
        inspect.signature(value).bind(None, None, None)
    except (TypeError, ValueError):
        return False
    return True


def _configured(args: argparse.Namespace, app: Any) -> Config:
    """The app's configuration with the command's flags over it.

    Raises:
        CliError: the result does not validate (one line per problem, joined).
    """
    base = app.config if isinstance(app, App) else Config()
    options: dict[str, Any] = {}
    if args.host is not None or "host" not in base.model_fields_set:
        options["host"] = DEFAULT_HOST if args.host is None else args.host
    if args.port is not None:
        options["port"] = args.port
    if args.backend is not None:
        options["backend"] = args.backend
    if args.server is not None:
        options["server"] = args.server
    if args.ssl_keyfile is not None or args.ssl_certfile is not None:
        options["secure"] = True  # a file the flags leave out may come from the config
        if args.ssl_keyfile is not None:
            options["ssl_key"] = args.ssl_keyfile
        if args.ssl_certfile is not None:
            options["ssl_cert"] = args.ssl_certfile
    try:
        config = Config.from_mapping(base, **options)
        if isinstance(app, App):
            app.configure(config)
    except pydantic.ValidationError as error:
        raise CliError(f"invalid configuration: {_one_line(error)}") from None
    return config


def _one_line(error: pydantic.ValidationError) -> str:
    problems = []
    for problem in error.errors():
        message = str(problem["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in problem["loc"])
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


# -- the command line -----------------------------------------------------------------------


def parser(version: str) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="gosf", description="Serve gosf apps.")
    top.add_argument("--version", action="version", version=f"gosf {version}")
    commands = top.add_subparsers(dest="command", required=True, metavar="command")
    run_command = commands.add_parser(
        "run",
        help="serve an app: gosf run module:app",
        description=(
            "Serve an ASGI app (a gosf.App) with hypercorn or uvicorn until Ctrl-C or SIGTERM."
        ),
    )
    run_command.add_argument("target", metavar="module:app", help="the app, e.g. myservice:app")
    run_command.add_argument(
        "--host", help=f"interface to bind (default {DEFAULT_HOST}; 0.0.0.0 for every one)"
    )
    run_command.add_argument("--port", type=int, help="TCP port (default: the app's, 9999)")
    run_command.add_argument(
        "--backend", choices=("asyncio", "trio"), help="event loop (default: the app's, asyncio)"
    )
    run_command.add_argument(
        "--server",
        choices=("hypercorn", "uvicorn"),
        help="ASGI server (default: the app's, hypercorn; uvicorn: asyncio only, gosf[uvicorn])",
    )
    run_command.add_argument(
        "--reload",
        action="store_true",
        help="restart when a .py file changes (development; needs gosf[reload])",
    )
    run_command.add_argument(
        "--reload-dir",
        action="append",
        metavar="DIR",
        help="a folder to watch with --reload (default: the current one); repeatable",
    )
    run_command.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes under hypercorn's supervisor (more than one needs a broker)",
    )
    run_command.add_argument("--ssl-keyfile", metavar="FILE", help="TLS private key (PEM)")
    run_command.add_argument("--ssl-certfile", metavar="FILE", help="TLS certificate (PEM)")
    run_command.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # from the reloader
    asyncapi_command = commands.add_parser(
        "asyncapi",
        help="print an app's AsyncAPI document: gosf asyncapi module:app",
        description="Print the AsyncAPI 3.0 document of a gosf.App (JSON, or YAML).",
    )
    asyncapi_command.add_argument(
        "target", metavar="module:app", help="the app, e.g. myservice:app"
    )
    asyncapi_command.add_argument(
        "--yaml", action="store_true", help="YAML instead of JSON (needs gosf[yaml])"
    )
    return top


def main(argv: Sequence[str] | None = None, *, version: str = "") -> int:
    """Run the ``gosf`` command; returns its exit status."""
    args = parser(version).parse_args(argv)
    if args.command == "asyncapi":
        return _asyncapi(args.target, as_yaml=args.yaml)
    try:
        if args.workers < 1:
            raise CliError(f"--workers must be at least 1, got {args.workers}")
        if args.reload and args.workers > 1:
            raise CliError("--reload runs one server: leave out --workers")
        app = load(args.target)
        target = Target(args.target, app, _configured(args, app))
        check_backend(target.config.backend)
        check_server(target.config.server)
        if args.reload:
            from .reload import reload

            return reload(target.config, _child_arguments(args), args.reload_dir or [os.getcwd()])
        if args.workers > 1:
            if target.config.server == "uvicorn":
                raise CliError(WORKERS_WITH_UVICORN.format(workers=args.workers, spec=args.target))
            return _workers(target, args.workers)
        if args.fd is not None:
            from .reload import stop_when_orphaned

            stop_when_orphaned()
        run(target.app, target.config, socketio_path=target.socketio_path, fd=args.fd)
    except (CliError, StartupError) as error:
        print(f"gosf: error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


def _asyncapi(spec: str, *, as_yaml: bool) -> int:
    """Print the AsyncAPI document of the app ``spec`` names."""
    try:
        app = load(spec)
        if not isinstance(app, App):
            raise CliError(f"{spec} is not a gosf.App: only a gosf app has an AsyncAPI document")
        if as_yaml:
            try:
                sys.stdout.write(to_yaml(app.asyncapi()))
            except ImportError:
                raise CliError("--yaml needs PyYAML: pip install 'gosf[yaml]'") from None
        else:
            sys.stdout.buffer.write(to_json(app.asyncapi()))
        sys.stdout.flush()
    except CliError as error:
        print(f"gosf: error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


def _child_arguments(args: argparse.Namespace) -> list[str]:
    """The flags of ``gosf run`` for the server the reloader starts."""
    arguments = ["run", args.target]
    for flag in ("host", "port", "backend", "server", "ssl_keyfile", "ssl_certfile"):
        value = getattr(args, flag)
        if value is not None:
            arguments += [f"--{flag.replace('_', '-')}", str(value)]
    return arguments


WORKERS_WITH_UVICORN = (
    "--workers runs hypercorn's supervisor, not uvicorn: leave out --server uvicorn, "
    "or run uvicorn's own: uvicorn --workers {workers} {spec} (docs/deployment.md)"
)

BROKER_REMINDER = (
    "gosf: warning: {} workers and no broker: each worker keeps its own sessions, "
    "so polling clients are refused by the workers that did not start their session "
    'and broadcasts reach one worker\'s clients only; set "broker": "redis://..." '
    "(docs/deployment.md)"
)


def _workers(target: Target, workers: int) -> int:
    """Serve with hypercorn's supervisor: ``workers`` processes on one socket."""
    from hypercorn.run import run as supervise

    if not target.has_broker:
        print(BROKER_REMINDER.format(workers), file=sys.stderr, flush=True)
    hypercorn = hypercorn_config(target.config, workers=workers)
    hypercorn.application_path = target.spec
    hypercorn.worker_class = target.config.backend
    address = bind(hypercorn, target.config)
    # The socket listens already: a client that connects now waits in its
    # backlog until a worker takes it.
    print(
        ready_line(target.config, address, socketio_path=target.socketio_path, workers=workers),
        flush=True,
    )
    status = int(supervise(hypercorn))
    print("gosf: stopped", flush=True)
    return status
