"""Architecture rules, checked: the protocol core does no I/O; the public surface is
deliberate; gosf's modules import each other without cycles, each layer only the layers
below it."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

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
        "admin",  # public subpackages, imported as gosf.<name>
        "annotations",
        "brokers",
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
    assert {name for name, home in homes.items() if home != "gosf._errors"} == set()


# -- the import graph -------------------------------------------------------------------
#
# Every import of a gosf module counts: at module level, inside functions, and
# under ``if TYPE_CHECKING:`` (a cycle that only the type checker sees still
# ties the two modules together). Importing ``gosf.a.b`` counts as importing
# that module, not its parent packages: a package's ``__init__`` importing its
# own modules is how packages work, not a cycle.


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def gosf_imports(name: str) -> set[str]:
    """The gosf modules that module ``name`` imports (relative imports resolved)."""
    path = MODULES[name]
    return imports_in(path.read_text(), name, is_package=path.name == "__init__.py")


def imports_in(source: str, name: str, *, is_package: bool) -> set[str]:
    """The gosf modules that ``source``, the text of module ``name``, imports."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                # ``from . import brokers`` imports a module; ``from .x import y`` a name of x.
                submodule = f"{origin}.{alias.name}"
                found.add(submodule if submodule in MODULES else origin)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: gosf_imports(name) for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for imported in sorted(graph[module]):
            if imported in on_path:
                return [*path[path.index(imported) :], imported]
            if imported not in done:
                cycle = visit(imported)
                if cycle is not None:
                    return cycle
        path.pop()
        on_path.remove(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle is not None:
                return cycle
    return None


def test_the_graph_sees_every_kind_of_import() -> None:
    top_level = """
from typing import TYPE_CHECKING
import anyio
import gosf.types
from . import brokers
from ._socketio.socket import Socket
from gosf.protocol import errors
if TYPE_CHECKING:
    from ._application.app import App
def later() -> None:
    from .brokers._memory import MemoryBus
"""
    assert imports_in(top_level, "gosf._demo", is_package=False) == {
        "gosf.types",
        "gosf.brokers",
        "gosf._socketio.socket",
        "gosf.protocol.errors",
        "gosf._application.app",
        "gosf.brokers._memory",
    }
    nested = """
from . import server
from .http import header
from .. import _errors
from ..protocol.engineio import message
"""
    assert imports_in(nested, "gosf._engineio._demo", is_package=False) == {
        "gosf._engineio.server",
        "gosf._engineio.http",
        "gosf._errors",
        "gosf.protocol.engineio",
    }
    assert imports_in(nested, "gosf._engineio", is_package=True) == imports_in(
        nested, "gosf._engineio._demo", is_package=False
    )
    assert len(MODULES) >= 40
    # gosf.brokers imports its Redis broker only under TYPE_CHECKING and inside functions.
    assert "gosf.brokers._redis" in GRAPH["gosf.brokers"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    two_cycles = {"a": {"b", "c"}, "b": {"a"}, "c": {"a"}}
    assert find_cycles(two_cycles) == [["a", "b", "a"], ["a", "c", "a"]]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles of ``graph``: each one found is cut at its last import
    before the next is looked for, so one run shows more than the first."""
    remaining = {module: set(imports) for module, imports in graph.items()}
    cycles = []
    while (cycle := find_cycle(remaining)) is not None:
        cycles.append(cycle)
        remaining[cycle[-2]].discard(cycle[-1])
    return cycles


def test_no_import_cycles() -> None:
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


# -- the layers ----------------------------------------------------------------------------
#
# docs/architecture.md draws these layers; keep the two in step. A module may
# import the modules of its own layer and of the layers its layer's
# ``may_import`` names, nothing else of gosf. Layers side by side (the brokers
# and Engine.IO; the Socket.IO server and client) do not import each other.


class Layer(NamedTuple):
    modules: tuple[str, ...]
    """Its modules; a package stands for all of its modules, but ``gosf`` for its
    ``__init__`` alone."""
    may_import: tuple[str, ...] = ()
    """The layers it may import besides itself."""


LAYERS = {
    "foundation": Layer(
        (
            "gosf.types",
            "gosf._errors",
            "gosf._options",
            "gosf._config",
            "gosf._backend",
            "gosf._logs",
        )
    ),
    "protocol": Layer(("gosf.protocol",)),
    "brokers": Layer(("gosf.brokers",), ("foundation",)),
    "engine.io": Layer(("gosf._engineio",), ("foundation", "protocol")),
    "cluster": Layer(("gosf._cluster",), ("protocol", "engine.io")),
    "socket.io server": Layer(
        ("gosf._socketio",),
        ("foundation", "protocol", "brokers", "engine.io", "cluster"),
    ),
    "socket.io client": Layer(("gosf._client",), ("foundation", "protocol")),
    "admin": Layer(("gosf.admin",), ("foundation", "protocol", "brokers", "socket.io server")),
    "application": Layer(
        ("gosf._application",),
        (
            "foundation",
            "protocol",
            "brokers",
            "engine.io",
            "socket.io server",
            "socket.io client",
            "admin",
        ),
    ),
    "public": Layer(
        ("gosf", "gosf.__main__", "gosf.testing"),
        ("foundation", "engine.io", "socket.io server", "socket.io client", "application"),
    ),
}


def layer_of(module: str) -> str:
    """The name of the layer ``module`` belongs to.

    Raises:
        AssertionError: it belongs to none.
    """
    for name, layer in LAYERS.items():
        for member in layer.modules:
            if module == member or (member != "gosf" and module.startswith(member + ".")):
                return name
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_layers_import_only_what_they_may() -> None:
    wrong = {
        f"{module} ({layer_of(module)}) imports {imported} ({layer_of(imported)})"
        for module, imports in GRAPH.items()
        for imported in imports
        if layer_of(imported) != layer_of(module)
        and layer_of(imported) not in LAYERS[layer_of(module)].may_import
    }
    assert not wrong, "\n".join(sorted(wrong))


def test_layer_rules_are_as_strict_as_the_code() -> None:
    """Every permission in LAYERS is used: a rule looser than the code is a rule
    nobody checks."""
    used = {
        (layer_of(module), layer_of(imported))
        for module, imports in GRAPH.items()
        for imported in imports
    }
    unused = {
        (layer, allowed)
        for layer, rules in LAYERS.items()
        for allowed in rules.may_import
        if (layer, allowed) not in used
    }
    assert not unused, sorted(unused)
