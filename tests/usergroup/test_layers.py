"""DESIGN.md, "Who may import whom": a lower app never imports a higher one."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["members", "points", "content", "community"]  # analytics and recommend sit on top of all


def imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_lower_apps_never_import_higher_ones():
    problems = []
    for level, app in enumerate(ORDER):
        forbidden = set(ORDER[level + 1 :]) | {"analytics", "recommend", "usergroup"}
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            bad = imported_apps(path) & forbidden
            if bad:
                problems.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert problems == []
