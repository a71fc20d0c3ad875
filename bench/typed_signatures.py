"""Count the public service and selector functions, app by app, that are fully typed (every
argument and the return annotated) and, for services, keyword-only (no positional argument).

    python3 bench/typed_signatures.py            # a table, and the functions that fall short
    python3 bench/typed_signatures.py --quiet    # the table alone

Reads the source with ast (nothing is imported, no settings needed). Public: a module-level
`def` whose name does not start with `_`, in `<app>/services.py`, `<app>/services/*.py` or
`<app>/selectors.py`.
"""

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["members", "points", "content", "community", "analytics", "recommend", "usergroup"]


@dataclass
class Tally:
    functions: int = 0
    typed: int = 0
    keyword_only: int = 0  # services only
    services: int = 0
    short: list[str] = field(default_factory=list)


def modules(app: Path) -> list[tuple[str, Path]]:
    found = []
    for kind in ("services", "selectors"):
        if (app / f"{kind}.py").exists():
            found.append((kind, app / f"{kind}.py"))
        if (app / kind).is_dir():
            found += [(kind, path) for path in sorted((app / kind).glob("*.py"))]
    return found


def fully_typed(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = func.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    return func.returns is not None and all(a.annotation is not None for a in every)


def keyword_only(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return not func.args.posonlyargs and not func.args.args and func.args.vararg is None


def tally(app: str) -> Tally:
    result = Tally()
    for kind, path in modules(ROOT / app):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name.startswith("_"):
                continue
            result.functions += 1
            typed = fully_typed(node)
            result.typed += typed
            where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
            if kind == "services":
                result.services += 1
                kw = keyword_only(node)
                result.keyword_only += kw
                if not kw:
                    where += " (positional arguments)"
            else:
                kw = True
            if not typed:
                where += " (untyped)"
            if not (typed and kw):
                result.short.append(where)
    return result


def main(argv: list[str]) -> None:
    quiet = "--quiet" in argv
    rows = {app: tally(app) for app in APPS}
    total = Tally()
    print(f"{'app':<12}{'public':>8}{'typed':>8}{'services':>10}{'kw-only':>9}")
    for app, row in rows.items():
        print(f"{app:<12}{row.functions:>8}{row.typed:>8}{row.services:>10}{row.keyword_only:>9}")
        total.functions += row.functions
        total.typed += row.typed
        total.services += row.services
        total.keyword_only += row.keyword_only
        total.short += row.short
    print(f"{'all':<12}{total.functions:>8}{total.typed:>8}{total.services:>10}{total.keyword_only:>9}")
    if not quiet and total.short:
        print("\nNot yet fully typed, or a service with positional arguments:")
        for line in total.short:
            print(" ", line)


if __name__ == "__main__":
    main(sys.argv[1:])
