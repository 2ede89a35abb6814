"""The package's import graph: dependencies point down, providers stay behind one seam.

Every import counts, whether at module level, inside a function or under TYPE_CHECKING: each
is a dependency a reader has to follow. ``docjobs/__init__.py`` is the composition root and is
not counted as a parent of the modules below it.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "docjobs"
PROVIDERS = ("docjobs.brokers.local", "docjobs.brokers.bullmq", "docjobs.brokers.inngest")
# The one factory that picks a provider by name.
FACTORY = "docjobs.runtime"
# Layers below the runtime: they are handed what they need, and never reach up for it.
BELOW_RUNTIME = ("docjobs.db", "docjobs.brokers", "docjobs.scheduler", "docjobs.registry", "docjobs.tasks")

# Edges that close a cycle today; each step of issue 19 removes some, until none is left.
CYCLE_EDGES_LEFT: set[tuple[str, str]] = set()
# Modules below the runtime that still import it; shrinks to nothing.
RUNTIME_IMPORTS_LEFT: set[str] = set()
# Modules outside the factory that still import a provider package; shrinks to nothing.
PROVIDER_IMPORTS_LEFT: set[str] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the docjobs modules it imports (a package's own submodules not counted)."""

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [owner(alias.name) for alias in node.names if alias.name.startswith("docjobs")]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(kept + ([node.module] if node.module else []))
                if base.startswith("docjobs"):
                    targets = [owner(f"{base}.{alias.name}") for alias in node.names]
            for target in targets:
                own_submodule = path.name == "__init__.py" and target.startswith(name + ".")
                if target and target != name and not own_submodule:
                    graph[name].add(target)
        # Importing a.b.c runs a/b/__init__.py first (the root package is the composition root).
        parts = name.split(".")
        for end in range(2, len(parts)):
            parent = ".".join(parts[:end])
            if parent in modules and modules[parent].name == "__init__.py":
                graph[name].add(parent)
    return graph


GRAPH = _imports(_modules())


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def test_the_package_has_no_import_cycles() -> None:
    pruned = {
        name: targets - {t for s, t in CYCLE_EDGES_LEFT if s == name} for name, targets in GRAPH.items()
    }
    try:
        graphlib.TopologicalSorter(pruned).prepare()
    except graphlib.CycleError as error:
        pytest.fail("import cycle: " + " -> ".join(error.args[1]))
    for source, target in CYCLE_EDGES_LEFT:
        assert target in GRAPH[source], f"{source} no longer imports {target}: drop it from CYCLE_EDGES_LEFT"


def test_layers_below_the_runtime_never_import_it() -> None:
    offenders = {
        name for name, targets in GRAPH.items() if _within(name, BELOW_RUNTIME) and FACTORY in targets
    }
    assert offenders == RUNTIME_IMPORTS_LEFT, (
        f"new: {offenders - RUNTIME_IMPORTS_LEFT}; fixed, drop from the list: {RUNTIME_IMPORTS_LEFT - offenders}"
    )


def test_only_the_factory_imports_a_provider() -> None:
    offenders = set()
    for name, targets in GRAPH.items():
        home = next((p for p in PROVIDERS if _within(name, (p,))), None)
        for target in targets:
            provider = next((p for p in PROVIDERS if _within(target, (p,))), None)
            if provider is not None and provider != home and name != FACTORY:
                offenders.add(name)
    assert not {o for o in offenders if _within(o, PROVIDERS)}, "a provider imports another provider"
    assert offenders == PROVIDER_IMPORTS_LEFT, (
        f"new: {offenders - PROVIDER_IMPORTS_LEFT}; fixed, drop from the list: {PROVIDER_IMPORTS_LEFT - offenders}"
    )


# Where shared code still asks which provider it holds; each step of issue 19 empties a file.
PROVIDER_PROBES_LEFT: dict[str, int] = {}
# The settings hold each provider's rules (required variables, the concurrency field) as data.
PROBE_EXEMPT = ("docjobs/settings.py", "docjobs/runtime.py")
PROVIDER_NAMES = {"local", "bullmq", "inngest"}
PROBED_CLASSES = {"BulkBroker", "TransactionalBroker", "LocalBroker", "BullmqBroker", "InngestBroker"}


def _probes(tree: ast.AST) -> int:
    """getattr/hasattr on a broker, isinstance against a provider class, .provider == a name."""
    found = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            subject = ast.unparse(node.args[0])
            if node.func.id in ("getattr", "hasattr") and "broker" in subject:
                found += 1
            elif node.func.id == "isinstance" and len(node.args) == 2:
                found += bool(
                    PROBED_CLASSES & {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                )
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            names = {
                s.value for s in ast.walk(node) if isinstance(s, ast.Constant) and isinstance(s.value, str)
            }
            reads_provider = any(isinstance(s, ast.Attribute) and s.attr == "provider" for s in sides)
            found += reads_provider and bool(names & PROVIDER_NAMES)
    return found


def test_shared_code_never_asks_which_provider_it_holds() -> None:
    counts = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR.parent).as_posix()
        if relative.startswith("docjobs/brokers/") or relative in PROBE_EXEMPT:
            continue
        if probes := _probes(ast.parse(path.read_text(), relative)):
            counts[relative] = probes
    assert counts == PROVIDER_PROBES_LEFT
