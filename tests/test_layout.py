"""Architecture rules, checked: the protocol core does no I/O; the public surface is deliberate."""

from __future__ import annotations

import ast
from pathlib import Path

import gosf

PACKAGE = Path(gosf.__file__).parent
IO_MODULES = {"anyio", "trio", "asyncio", "socket", "sniffio", "hypercorn", "selectors", "ssl"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_protocol_core_is_sans_io() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(imported_roots(path) & IO_MODULES)
        for path in (PACKAGE / "protocol").rglob("*.py")
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}
    assert len(offenders) >= 4  # the check really looked at the modules


def test_public_names_are_exported_deliberately() -> None:
    assert isinstance(gosf.__all__, tuple)
    assert sorted(gosf.__all__) == sorted(set(gosf.__all__))
    for name in gosf.__all__:
        assert hasattr(gosf, name), name
    public = {n for n in dir(gosf) if not n.startswith("_")} - {
        "annotations",
        "brokers",  # public subpackages, imported as gosf.<name>
        "protocol",
        "testing",
        "types",
    }
    assert public <= set(gosf.__all__), public - set(gosf.__all__)


def test_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").exists()


def test_every_public_exception_lives_in_one_module() -> None:
    exceptions = {
        name: getattr(gosf, name)
        for name in gosf.__all__
        if isinstance(getattr(gosf, name), type) and issubclass(getattr(gosf, name), Exception)
    }
    assert len(exceptions) >= 9
    homes = {name: cls.__module__ for name, cls in exceptions.items()}
    # ServerNotRunning still lives with the engine until the engine's redesign.
    assert {name for name, home in homes.items() if home != "gosf._errors"} <= {"ServerNotRunning"}
