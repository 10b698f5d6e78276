"""The shape of the tree, held by reading it (the AST of every module), not by running it.

Rooms are folders (``shared/domain``, ``shared/api``, …) and, inside ``shared/services``,
bounded contexts (``identity``, ``messaging``, …; the modules at the root of
``shared/services`` are the kernel). ``MAY_IMPORT`` names the rooms each room imports
directly; what those import it may import too. Every other arrow between rooms is a
failure, and so is any import cycle between modules, wherever it is (lazy imports
inside functions and ``TYPE_CHECKING`` imports count). docs/design.md draws it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CODE = ("function_app.py", "cli", "functions", "shared")
"""What ships or runs the product; tests and benchmarks may import anything."""

MAY_IMPORT: dict[str, frozenset[str]] = {
    room: frozenset(below)
    for room, below in {
        "cli": {"function_app", "bootstrap", "onboarding", "identity"},
        "function_app": {"functions"},
        "functions": {"api", "bootstrap", "delivery", "webhooks", "analytics", "onboarding"},
        "api": {"delivery", "webhooks", "analytics", "onboarding"},
        "bootstrap": {"embedded", "azure", "providers", "kernel"},
        # contexts of shared/services, top down
        "onboarding": {"messaging"},
        "delivery": {"messaging"},
        "webhooks": {"events"},
        "analytics": {"events"},
        "messaging": {"channels", "receivers"},
        "channels": {"events"},
        "receivers": {"events"},
        "events": {"identity"},
        "identity": {"kernel"},
        "kernel": {"ports", "containers", "telemetry", "http_client"},
        # the platform's parts
        "embedded": {"adapters"},
        "azure": {"adapters"},
        "providers": {"ports", "http_client"},
        "adapters": {"ports"},
        "containers": {"ports"},
        "ports": {"domain"},
        "http_client": {"egress", "domain"},
        "telemetry": {"config"},
        "egress": set(),
        "config": set(),
        "domain": set(),
        "shared": set(),
    }.items()
}

_FOLDERS: tuple[tuple[str, str], ...] = (
    ("shared.adapters.embedded", "embedded"),
    ("shared.adapters.azure", "azure"),
    ("shared.adapters.providers", "providers"),
    ("shared.adapters", "adapters"),
    ("shared.api", "api"),
    ("shared.bootstrap", "bootstrap"),
    ("shared.ports", "ports"),
    ("shared.containers", "containers"),
    ("shared.telemetry", "telemetry"),
    ("shared.http_client", "http_client"),
    ("shared.egress", "egress"),
    ("shared.config", "config"),
    ("shared.domain", "domain"),
    ("shared", "shared"),
    ("functions", "functions"),
    ("cli", "cli"),
    ("function_app", "function_app"),
)


def room_of(module: str, packages: set[str]) -> str:
    """The room a module stands in (``packages``: the dotted names that are packages)."""
    parts = module.split(".")
    if parts[:2] == ["shared", "services"]:
        # a context is a package of shared/services; the modules beside them, the kernel
        return parts[2] if len(parts) > 2 and ".".join(parts[:3]) in packages else "kernel"
    for prefix, room in _FOLDERS:
        if module == prefix or module.startswith(prefix + "."):
            return room
    raise AssertionError(f"{module} stands in no room: add its folder to test_layers")


def modules(root: Path) -> dict[str, Path]:
    """Every module of the product under ``root``, by dotted name."""
    found: dict[str, Path] = {}
    for top in CODE:
        path = root / top
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            name = ".".join(file.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = file
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
            base = ".".join([*parts, base] if base else parts)
        yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the modules of ours it imports: at the top, inside functions, or
    under ``TYPE_CHECKING``, each resolved to the deepest module that exists."""
    mods = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, name, path.name == "__init__.py"):
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other round in a circle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = stack[stack.index(v) :]
            del stack[stack.index(v) :]
            if len(members) > 1:
                found.append(sorted(members))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reachable(room: str) -> frozenset[str]:
    """The rooms ``room`` may import: its own list, and theirs, all the way down."""
    seen: set[str] = set()
    todo = [room]
    while todo:
        for below in MAY_IMPORT[todo.pop()]:
            if below not in seen:
                seen.add(below)
                todo.append(below)
    return frozenset(seen)


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import from one room into a room it may not import."""
    packages = {m for m in graph if any(o.startswith(m + ".") for o in graph)}
    wrong = []
    for source, targets in sorted(graph.items()):
        here = room_of(source, packages)
        for target in sorted(targets):
            there = room_of(target, packages)
            if there != here and there not in reachable(here):
                wrong.append(f"{source} ({here}) imports {target} ({there})")
    return wrong


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(REPO)


def test_no_import_cycle_anywhere(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_every_import_points_down(graph: dict[str, set[str]]) -> None:
    assert upward(graph) == []


def test_every_room_has_its_rule(graph: dict[str, set[str]]) -> None:
    packages = {m for m in graph if any(o.startswith(m + ".") for o in graph)}
    rooms = {room_of(m, packages) for m in graph}
    assert rooms <= set(MAY_IMPORT), f"rooms without a rule: {sorted(rooms - set(MAY_IMPORT))}"


def test_the_contexts_have_their_homes() -> None:
    services = REPO / "shared" / "services"
    contexts = {p.name for p in services.iterdir() if (p / "__init__.py").exists()}
    assert contexts == {
        "identity",
        "channels",
        "receivers",
        "messaging",
        "delivery",
        "events",
        "webhooks",
        "analytics",
        "onboarding",
    }


def test_shared_never_imports_azure_functions() -> None:
    offenders = [
        f"{name}: {target}"
        for name, path in modules(REPO).items()
        if name.startswith("shared")
        for node in ast.walk(ast.parse(path.read_text()))
        for target in _imported(node, name, path.name == "__init__.py")
        if target == "azure.functions" or target.startswith("azure.functions.")
    ]
    assert offenders == []


def _is_trigger(node: ast.AsyncFunctionDef | ast.FunctionDef) -> bool:
    """Decorated ``@bp.<something>_trigger(...)``: a function the Functions host calls."""
    return any(
        isinstance(d, ast.Call)
        and isinstance(d.func, ast.Attribute)
        and d.func.attr.endswith("_trigger")
        for d in node.decorator_list
    )


def not_triggers(folder: Path) -> list[str]:
    """What a folder of triggers holds besides triggers: classes, plain functions."""
    found = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                found.append(f"{path.name}: class {node.name}")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not _is_trigger(node):
                found.append(f"{path.name}: def {node.name}")
    return found


def test_functions_holds_only_triggers() -> None:
    assert not_triggers(REPO / "functions") == []


MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def test_every_module_reads_in_one_sitting() -> None:
    too_long = [
        f"{name}: {count} lines"
        for name, path in modules(REPO).items()
        if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert too_long == []


def test_every_function_is_short() -> None:
    too_long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, path in modules(REPO).items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert too_long == []


def _names_imported(path: Path) -> set[str]:
    return {
        alias.asname or alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_only_the_directory_reads_the_directory_across_tenants() -> None:
    """ARCHITECTURE's one narrow door: a service that names both the Directory and the
    system scope could read any tenant's entries."""
    door = "shared.services.identity.directory"
    readers = [
        name
        for name, path in modules(REPO).items()
        if name.startswith("shared.services.") and {"DIRECTORY", "SYSTEM"} <= _names_imported(path)
    ]
    assert readers == [door]


# --- the checks above catch what they are for ----------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in {p.parent for p in root.rglob("*.py")}:
        while folder != root:
            (folder / "__init__.py").touch()
            folder = folder.parent
    return root


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "shared/domain/status.py": "",
            "shared/services/delivery/dispatch.py": "from shared.domain import status\n",
            "shared/services/channels/channels.py": (
                "def later():\n    from shared.services.delivery import dispatch\n"
            ),
        },
    )
    assert upward(import_graph(root)) == [
        "shared.services.channels.channels (channels) imports "
        "shared.services.delivery.dispatch (delivery)"
    ]


def test_a_deliberate_upward_import_in_the_real_tree_is_caught(
    graph: dict[str, set[str]],
) -> None:
    broken = {k: set(v) for k, v in graph.items()}
    broken["shared.domain.status"].add("shared.services.messaging.outbox")
    assert upward(broken) == [
        "shared.domain.status (domain) imports shared.services.messaging.outbox (messaging)"
    ]


def test_a_cycle_is_caught_even_through_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "shared/services/identity/a.py": "from shared.services.identity import b\n",
            "shared/services/identity/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from shared.services.identity.c import C\n"
            ),
            "shared/services/identity/c.py": "def f():\n    import shared.services.identity.a\n",
        },
    )
    assert cycles(import_graph(root)) == [
        ["shared.services.identity.a", "shared.services.identity.b", "shared.services.identity.c"]
    ]


def test_a_deliberate_cycle_in_the_real_tree_is_caught(graph: dict[str, set[str]]) -> None:
    broken = {k: set(v) for k, v in graph.items()}
    broken["shared.services.pages"].add("shared.services.deps")
    broken["shared.services.deps"].add("shared.services.pages")
    assert ["shared.services.deps", "shared.services.pages"] in cycles(broken)


def test_a_helper_among_the_triggers_is_caught(tmp_path: Path) -> None:
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "jobs.py").write_text(
        "@bp.service_bus_queue_trigger(arg_name='m', queue_name='q', connection='c')\n"
        "async def run(m): ...\n"
        "def helper(): ...\n"
        "class Parser: ...\n"
    )
    assert not_triggers(folder) == ["jobs.py: def helper", "jobs.py: class Parser"]
