"""Inside the community and points apps the imports form a tree: no module imports, directly or
through others, one that imports it back, and no import is hidden in a function to dodge such a
cycle (AppConfig.ready() may import there: models cannot load before the app registry)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ["community", "points"]


def modules(app: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / app).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imported(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    """The modules of `known` an import statement loads (a package's __init__ included, except
    the importer's own packages, which Python has started before the importer)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, node.module] if node.module else parts)
        targets = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
        ]
    else:
        targets = [alias.name for alias in node.names]
    out = set()
    for target in targets:
        parts = target.split(".")
        for n in range(1, len(parts) + 1):
            name = ".".join(parts[:n])
            if name in known and name != module and not module.startswith(f"{name}."):
                out.add(name)
    return out


def graph(app: str) -> tuple[dict[str, set[str]], list[str]]:
    """The app's import graph, and the imports of the app's own modules made inside functions."""
    known = modules(app)
    edges: dict[str, set[str]] = {name: set() for name in known}
    in_functions = []
    for module, path in known.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges[module] |= imported(module, path, node, known)
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) or function.name == "ready":
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and imported(module, path, node, known):
                    in_functions.append(f"{module}:{node.lineno} {ast.unparse(node)}")
    return edges, sorted(set(in_functions))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other (strongly connected, more than one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in edges:
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("app", APPS)
def test_the_apps_imports_form_a_tree(app):
    edges, _ = graph(app)
    assert cycles(edges) == []


@pytest.mark.parametrize("app", APPS)
def test_no_import_of_the_app_hides_in_a_function(app):
    _, in_functions = graph(app)
    assert in_functions == []


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
