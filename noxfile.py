"""The whole check matrix: ``nox`` (or ``./scripts/test``, which installs nox first).

Sessions share one installer; each is one cell of the matrix:

* ``tests``     unit, protocol and interop tests; every async test runs under
                asyncio and trio, interop tests under hypercorn (asyncio and
                trio workers) and uvicorn.
* ``lint``      ruff check + ruff format --check.
* ``typecheck`` mypy --strict over gosf, tests, examples and benchmarks.
* ``docs``      the API reference (mkdocs.yml): ``mkdocs build --strict`` into a
                temporary folder, so a broken docstring or link fails the run.
* ``plain_install`` a plain ``pip install`` of gosf (no extras, not editable)
                into a fresh virtualenv imports and serves one request in memory.
* ``bench``     the benchmark (run only when asked: ``nox -s bench``).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "docs", "plain_install", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"


def install(session: nox.Session, *groups: str) -> None:
    """Install gosf (editable) with the given dependency groups into the session's venv."""
    session.install("pip>=25.1")  # dependency groups (PEP 735)
    session.install("-e", ".", *(arg for group in groups for arg in ("--group", group)))


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    install(session, "test")
    # npm packages from the committed lock files, and Debian's chromium (as root).
    session.run("./scripts/install-test-deps", external=True)
    # pytest exits 5 when it collects nothing: that is a broken suite, not a
    # pass, so only 0 counts as success here.
    session.run("pytest", *session.posargs, success_codes=[0])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    install(session, "lint", "bench")
    session.run("mypy")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the docs with every warning an error; the site goes to a temporary folder.

    ``nox -s docs -- --site-dir site`` keeps it (``site/`` is ignored by git).
    """
    install(session, "docs")
    site = session.posargs or ["--site-dir", session.create_tmp() + "/site"]
    session.run("mkdocs", "build", "--strict", "--clean", *site)


@nox.session(python=PYTHON, reuse_venv=False)
def plain_install(session: nox.Session) -> None:
    """What a new user gets from ``pip install gosf``: nothing but the declared dependencies."""
    session.install(".")
    session.run("python", "scripts/smoke_plain_install.py")


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """The benchmark (not part of the default run): ``nox -s bench -- --quick``."""
    install(session, "bench")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
