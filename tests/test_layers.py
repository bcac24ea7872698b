"""The layers, read from the source: each imports only the layers below it, and no module cycle.

Every `import` counts, at the top of a module or inside a function: an import moved into a function
still runs. Only imports under `if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "workers", "schedules")

# What each layer may import from the project, besides itself. `settings` is plain data.
ALLOWED = {
    "pipeline.domain": set(),
    "pipeline.settings": set(),
    "pipeline.adapters": {"pipeline.domain"},
    "pipeline.generator": {"pipeline.domain", "pipeline.adapters"},
    "pipeline.services": {"pipeline.domain", "pipeline.adapters", "pipeline.settings"},
    "pipeline.bootstrap": {"pipeline.adapters", "pipeline.services", "pipeline.settings"},
    "pipeline.entrypoints": {"pipeline", "pipeline.domain", "pipeline.adapters", "pipeline.generator",
                             "pipeline.services", "pipeline.bootstrap", "pipeline.settings"},
    "workers": {"pipeline", "pipeline.bootstrap", "pipeline.entrypoints", "pipeline.services", "pipeline.settings"},
    "schedules": {"pipeline", "pipeline.bootstrap", "pipeline.entrypoints", "pipeline.services", "workers"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_only(tree: ast.AST) -> set[int]:
    """Ids of the import nodes under `if TYPE_CHECKING:`."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(inner) for statement in node.body for inner in ast.walk(statement)}
    return skipped


def imports(known: dict[str, Path]) -> dict[str, set[str]]:
    """Each project module's project imports (a `from a import b` names `a.b` when that is a module)."""
    graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped, targets = _type_only(tree), set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        graph[name] = {t for t in targets if t in known and t != name}
    return graph


def layer(module: str) -> str:
    if module.startswith("pipeline."):
        return ".".join(module.split(".")[:2])
    return module.split(".")[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_another_that_imports_it_back_even_from_inside_a_function():
    graph = imports(modules())
    assert "pipeline.entrypoints.runner" in graph and graph["pipeline.entrypoints.runner"]
    assert cycles(graph) == []


def test_each_layer_imports_only_the_layers_below_it():
    graph = imports(modules())
    wrong = sorted(f"{source} imports {target}" for source, targets in graph.items() for target in targets
                   if layer(target) != layer(source) and layer(target) not in ALLOWED[layer(source)])
    assert wrong == []


def test_every_module_belongs_to_a_known_layer():
    assert {layer(name) for name in modules()} - {"pipeline"} <= set(ALLOWED)


def test_the_checker_sees_an_import_inside_a_function_and_a_cycle(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = "def f():\n    from pipeline.domain import rules\nif TYPE_CHECKING:\n    import workers\n"
    tree = ast.parse(source)
    skipped = _type_only(tree)
    seen = {ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skipped}
    assert seen == {"from pipeline.domain import rules"}
