"""Errors that say what failed, in one line: ``gosf run`` and ``gosf.startup``.

Each failure a user can fix (a port in use, TLS files that cannot be read or
are not PEM, trio missing, ``gosf.startup()`` inside an event loop, a target
that does not import or is not an app) is asserted by its exact text. The
command prints ``gosf: error: ...`` and exits 1; ``gosf.startup`` exits with
``gosf: ...`` as GOSF's ``log.Fatal`` did; a config is refused when it is
built.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
import trustme

import gosf
from tests.conftest import ROOT

TIMEOUT = 30


def run(*args: str, cwd: Path = ROOT, preamble: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m gosf ARGS`` (after ``preamble``, Python run first in the same process)."""
    code = (
        f"{preamble}\nimport sys\nfrom gosf.__main__ import main\n"
        f"sys.argv[1:] = {list(args)!r}\nmain()"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def startup(config: dict[str, object], preamble: str = "") -> subprocess.CompletedProcess[str]:
    """``gosf.startup(config)`` of the app in tests/apps/startup_app.py, in a child process."""
    code = (
        f"{preamble}\nimport json, gosf\nimport tests.apps.startup_app\n"
        f"gosf.startup(json.loads({json.dumps(config)!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str], line: str) -> None:
    """The command failed with exactly ``line`` on standard error, before serving."""
    assert (result.returncode, result.stderr) == (1, line + "\n"), result.stderr
    assert "gosf: serving" not in result.stdout and "READY" not in result.stdout


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    cert = trustme.CA().issue_cert("localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    return cert_file, key_file


# -- the address --------------------------------------------------------------------------


def test_a_port_in_use_is_named(busy_port: int) -> None:
    refused(
        run("run", "tests.apps.startup_app:app", "--port", str(busy_port)),
        f"gosf: error: cannot listen on 127.0.0.1:{busy_port}: address already in use",
    )


def test_startup_on_a_port_in_use_exits_with_one_line(busy_port: int) -> None:
    # Refused before the app starts: the plugin would print READY.
    refused(
        startup({"host": "127.0.0.1", "port": busy_port}),
        f"gosf: cannot listen on 127.0.0.1:{busy_port}: address already in use",
    )


# -- TLS files, read when the config is built ------------------------------------------------


def config_error(**files: str) -> str:
    with pytest.raises(pydantic.ValidationError) as info:
        gosf.Config.from_mapping(
            {"secure": True, **{k.replace("_", "-"): v for k, v in files.items()}}
        )
    [problem] = info.value.errors()
    return str(problem["msg"]).removeprefix("Value error, ")


def test_a_missing_certificate_is_named(tls: tuple[Path, Path], tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    assert config_error(ssl_cert=str(missing), ssl_key=str(tls[1])) == (
        f"ssl-cert: cannot read certificate {missing}: No such file or directory"
    )


def test_an_unreadable_key_is_named(tls: tuple[Path, Path], tmp_path: Path) -> None:
    # A folder: unreadable even for root, who may read any file.
    assert config_error(ssl_cert=str(tls[0]), ssl_key=str(tmp_path)) == (
        f"ssl-key: cannot read private key {tmp_path}: Is a directory"
    )


def test_a_key_that_is_not_pem_is_named(tls: tuple[Path, Path], tmp_path: Path) -> None:
    der = tmp_path / "key.der"
    der.write_bytes(b"\x30\x82\x04\xa4\x02\x01\x00")
    assert config_error(ssl_cert=str(tls[0]), ssl_key=str(der)) == (
        f"ssl-key: {der} is not a PEM private key (no '-----BEGIN ...PRIVATE KEY-----' line)"
    )
    # A certificate given as the key is PEM, but not a key.
    assert config_error(ssl_cert=str(tls[0]), ssl_key=str(tls[0])) == (
        f"ssl-key: {tls[0]} is not a PEM private key (no '-----BEGIN ...PRIVATE KEY-----' line)"
    )


def test_a_reconfigured_app_checks_its_files_again(tmp_path: Path) -> None:
    config = gosf.Config()
    with pytest.raises(pydantic.ValidationError, match="ssl-cert: cannot read certificate"):
        gosf.Config.from_mapping(
            config, secure=True, ssl_cert=str(tmp_path / "c"), ssl_key=str(tmp_path / "k")
        )


def test_the_command_names_a_missing_file_in_one_line(
    tls: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, _ = tls
    missing = tmp_path / "nokey.pem"
    refused(
        run(
            "run",
            "tests.apps.startup_app:app",
            "--ssl-certfile",
            str(cert),
            "--ssl-keyfile",
            str(missing),
        ),
        f"gosf: error: invalid configuration: ssl-key: cannot read private key {missing}: "
        "No such file or directory",
    )


def test_a_key_of_another_certificate_is_named(tls: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _ = tls
    other = tmp_path / "other.pem"
    trustme.CA().issue_cert("localhost").private_key_pem.write_to_path(other)
    args = ("run", "tests.apps.startup_app:app", "--port", "0")
    refused(
        run(*args, "--ssl-certfile", str(cert), "--ssl-keyfile", str(other)),
        f"gosf: error: cannot use ssl-cert {cert} with ssl-key {other}: KEY_VALUES_MISMATCH",
    )


# -- the backend and the event loop -------------------------------------------------------------

NO_TRIO = "import sys; sys.modules['trio'] = None  # as if trio were not installed"


def test_trio_missing_names_the_extra() -> None:
    refused(
        run("run", "tests.apps.startup_app:app", "--backend", "trio", preamble=NO_TRIO),
        "gosf: error: backend 'trio' needs trio, which is not installed: pip install 'gosf[trio]'",
    )
    refused(
        startup({"host": "127.0.0.1", "port": 0, "backend": "trio"}, preamble=NO_TRIO),
        "gosf: backend 'trio' needs trio, which is not installed: pip install 'gosf[trio]'",
    )


def test_reload_without_watchfiles_names_the_extra() -> None:
    refused(
        run(
            "run",
            "tests.apps.startup_app:app",
            "--reload",
            preamble="import sys; sys.modules['watchfiles'] = None",
        ),
        "gosf: error: --reload needs watchfiles, which is not installed: "
        "pip install 'gosf[reload]'",
    )


def test_the_trio_extra_is_real() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras["optional-dependencies"]["trio"] == ["trio>=0.27"]
    assert extras["optional-dependencies"]["reload"] == ["watchfiles>=0.21"]


@pytest.mark.anyio
async def test_startup_inside_an_event_loop_says_what_to_do(anyio_backend: str) -> None:
    loop = "an asyncio event loop" if anyio_backend == "asyncio" else "a trio run"
    app = gosf.App({"host": "127.0.0.1", "port": 0})
    with pytest.raises(RuntimeError) as info:
        app.startup()
    assert str(info.value) == (
        f"gosf.startup() runs its own event loop, but {loop} is already running in this "
        "thread: call it outside async code (or serve from async code with hypercorn's "
        "serve(app, config), or from a shell with 'gosf run module:app')"
    )
    assert not app.running


# -- the target -----------------------------------------------------------------------------------


def test_a_module_that_is_not_there() -> None:
    refused(
        run("run", "no_such_module:app"),
        "gosf: error: cannot import 'no_such_module': no module named 'no_such_module' "
        "(run gosf from the folder that holds it, or set PYTHONPATH)",
    )


def test_a_module_whose_own_import_is_missing_keeps_its_traceback(tmp_path: Path) -> None:
    # The missing module's name begins the app module's: still the app's own import.
    (tmp_path / "demo_app.py").write_text("import demo\n")
    result = run("run", "demo_app:app", cwd=tmp_path)
    assert result.returncode == 1 and 'demo_app.py", line 1' in result.stderr
    assert result.stderr.endswith(
        "gosf: error: importing 'demo_app' failed: No module named 'demo'\n"
    )


def test_a_missing_attribute_names_the_apps_there() -> None:
    refused(
        run("run", "tests.apps.startup_app:application"),
        "gosf: error: module 'tests.apps.startup_app' has no attribute 'application' (it has app)",
    )


def test_an_attribute_that_is_not_an_asgi_app() -> None:
    refused(
        run("run", "tests.apps.startup_app:echo"),
        "gosf: error: tests.apps.startup_app:echo is not an ASGI app but a function "
        "(expected a gosf.App or an async callable taking scope, receive, send)",
    )


def test_a_module_that_fails_keeps_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import gosf\napp = gosf.App()\n1 / 0\n")
    result = run("run", "broken:app", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and 'broken.py", line 3' in result.stderr
    assert result.stderr.endswith(
        "gosf: error: importing 'broken' failed: ZeroDivisionError: division by zero\n"
    )


def test_the_module_default_attribute_is_app(busy_port: int) -> None:
    # "module" alone names module:app (checked up to the bind)
    refused(
        run("run", "tests.apps.startup_app", "--port", str(busy_port)),
        f"gosf: error: cannot listen on 127.0.0.1:{busy_port}: address already in use",
    )


def test_workers_must_be_positive() -> None:
    refused(
        run("run", "tests.apps.startup_app:app", "--workers", "0"),
        "gosf: error: --workers must be at least 1, got 0",
    )


def test_one_tls_flag_without_the_other() -> None:
    refused(
        run("run", "tests.apps.startup_app:app", "--ssl-certfile", "cert.pem"),
        "gosf: error: invalid configuration: secure: true needs both 'ssl-key' and 'ssl-cert'",
    )
