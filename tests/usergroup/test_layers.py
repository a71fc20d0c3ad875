"""DESIGN.md, "Who may import whom": a lower app never imports a higher one, in Python or in
templates; and inside each app the modules import each other as a tree, with no cycle."""

import ast
from pathlib import Path

import pytest
from django.template import Engine, TemplateDoesNotExist, engines
from django.template.backends.django import DjangoTemplates
from django.template.base import Lexer, TokenType

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["members", "points", "content", "community"]  # analytics and recommend sit on top of all
SHARED_TEMPLATES = "templates"  # the project's base layout and shared partials: any app may use them


def forbidden_for(app: str) -> set[str]:
    return set(ORDER[ORDER.index(app) + 1 :]) | {"analytics", "recommend", "usergroup"}


def imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_lower_apps_never_import_higher_ones():
    problems = []
    for app in ORDER:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            bad = imported_apps(path) & forbidden_for(app)
            if bad:
                problems.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert problems == []


# --- No import cycle inside an app ---------------------------------------------------------
# An import inside a function is still an edge: moving an import into a function hides a
# cycle from Python, not from the design (a task module that imports the services that import
# it). Only imports under `if TYPE_CHECKING:` are left out: they never run.

APPS = [*ORDER, "analytics", "recommend", "usergroup"]


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _import_nodes(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, at any depth, but those under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking_block(child):
            children: list[ast.AST] = list(child.orelse)  # only the `else:` ever runs
        else:
            children = [child]
        for statement in children:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                found.append(statement)
            found += _import_nodes(statement)
    return found


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, app: str) -> dict[str, set[str]]:
    """Which of the app's modules each of its modules imports (migrations left out)."""
    paths = {
        module_name(root, path): path
        for path in sorted((root / app).rglob("*.py"))
        if "migrations" not in path.relative_to(root).parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _import_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                # `from package import module` imports the module; `from module import name`, the module
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base
                    for alias in node.names
                ]
            edges.update(target for target in targets if target in paths and target != name)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan's
    strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


@pytest.mark.parametrize("app", APPS)
def test_no_import_cycle_inside_an_app(app):
    assert import_cycles(import_graph(ROOT, app)) == []


def test_cycle_check_finds_cycles_hidden_in_functions_and_ignores_type_checking(tmp_path):
    package = tmp_path / "shop"
    (package / "billing").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "models.py": "",
        "services.py": "from . import models\nfrom .billing import hooks\n",
        "tasks.py": "from shop import services\n",
        "billing/__init__.py": "",
        "billing/hooks.py": "def later():\n    from ..tasks import run\n",
        "selectors.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .views import View\n",
        "views.py": "from .selectors import x\nfrom .models import y\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = import_graph(tmp_path, "shop")
    assert graph["shop.billing.hooks"] == {"shop.tasks"}
    assert graph["shop.selectors"] == set()
    assert import_cycles(graph) == [["shop.billing.hooks", "shop.services", "shop.tasks"]]
    (package / "billing/hooks.py").write_text("def later():\n    from ..models import run\n")
    assert import_cycles(import_graph(tmp_path, "shop")) == []


# --- Templates ----------------------------------------------------------------------------


def template_references(source: str) -> tuple[set[str], set[str]]:
    """The tag libraries a template `{% load %}`s, and the templates it `{% include %}`s or
    `{% extends %}` by a literal name (a name in a variable cannot be checked)."""
    libraries: set[str] = set()
    names: set[str] = set()
    commented = False
    for token in Lexer(source).tokenize():
        if token.token_type != TokenType.BLOCK:
            continue
        bits = token.split_contents()
        tag = bits[0] if bits else ""
        if tag in ("comment", "endcomment"):
            commented = tag == "comment"
        elif commented:
            continue
        elif tag == "load":
            # {% load a b %}, or {% load tag1 tag2 from library %}
            libraries.update(bits[-1:] if len(bits) > 3 and bits[-2] == "from" else bits[1:])
        elif tag in ("include", "extends") and len(bits) > 1:
            name = bits[1]
            if len(name) > 1 and name[0] in "\"'" and name[-1] == name[0]:
                names.add(name[1:-1])
    return libraries, names


def owner_of_path(path: str) -> str | None:
    """The app a file belongs to, SHARED_TEMPLATES for the project's templates/ folder, or None
    for Django's and third parties' files."""
    try:
        first = Path(path).resolve().relative_to(ROOT).parts[0]
    except ValueError:
        return None
    return first if first != ".venv" else None


def django_engine() -> Engine:
    backend = engines["django"]
    assert isinstance(backend, DjangoTemplates)
    return backend.engine


def library_owner(name: str) -> str:
    """The package whose templatetags module `{% load name %}` imports."""
    return django_engine().libraries[name].split(".")[0]


def template_owner(name: str) -> str | None:
    """Who owns the template Django finds under `name`: the app whose folder it is in."""
    return owner_of_path(django_engine().get_template(name).origin.name)


def template_problems(app: str, label: str, source: str) -> list[str]:
    libraries, names = template_references(source)
    problems = []
    for library in sorted(libraries):
        if library not in django_engine().libraries:
            problems.append(f"{label} loads {library!r}, which no installed app provides")
        elif (owner := library_owner(library)) in forbidden_for(app):
            problems.append(f"{label} loads {library!r} from {owner}")
    for name in sorted(names):
        try:
            template_app = template_owner(name)
        except TemplateDoesNotExist:
            problems.append(f"{label} uses {name!r}, which does not exist")
            continue
        if template_app in forbidden_for(app):
            problems.append(f"{label} uses {name!r} from {template_app}")
    return problems


def test_lower_apps_templates_never_use_higher_ones():
    problems = []
    checked = 0
    for app in ORDER:
        for path in sorted((ROOT / app / "templates").rglob("*")):
            if path.is_file():
                problems += template_problems(app, str(path.relative_to(ROOT)), path.read_text())
                checked += 1
    assert checked > 50
    assert problems == []


@pytest.mark.parametrize(
    ("app", "source", "problem"),
    [
        ("content", "{% load i18n comments_of_community %}", "loads 'comments_of_community', which no"),
        ("content", "{% load i18n insights %}", "loads 'insights' from analytics"),
        ("members", "{% load money access %}{% load something from content_slots %}", "from content"),
        ("points", '{% extends "content/detail.html" %}', "uses 'content/detail.html' from content"),
        ("content", "{% include 'community/_flag_form.html' with x=1 only %}", "from community"),
        ("community", '{% include "recommend/digest_picks.txt" %}', "from recommend"),
        ("members", '{% include "points/nope.html" %}', "'points/nope.html', which does not exist"),
    ],
)
def test_template_check_finds_edges_against_the_direction(app, source, problem):
    problems = template_problems(app, "t.html", source)
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize(
    ("app", "source"),
    [
        ("content", '{% extends "base.html" %}{% load i18n static access money content_slots %}'),
        ("community", '{% include "content/_card.html" %}{% include "partials/avatar.html" %}'),
        ("members", '{% extends "admin/change_form.html" %}{% load admin_urls %}'),
        ("content", "{% comment %}{% load insights %}{% endcomment %}{% include template_name %}"),
        ("content", '{% verbatim %}{% include "recommend/also_read.html" %}{% endverbatim %}'),
    ],
)
def test_template_check_allows_lower_shared_and_outside_templates(app, source):
    assert template_problems(app, "t.html", source) == []
