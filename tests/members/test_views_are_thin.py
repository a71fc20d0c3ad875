"""DESIGN.md, "Inside each app": members' views parse input and call one service or selector.
They read no model directly and never drop a cache themselves (the service that changed the
data does)."""

import ast
from pathlib import Path

import pytest

MEMBERS = Path(__file__).resolve().parents[2] / "members"
VIEW_MODULES = sorted(
    path for path in MEMBERS.rglob("*.py") if path.name == "views.py" or path.name.endswith("_views.py")
)
# Names that reach past the services and selectors: the ORM, and the access cache.
FORBIDDEN = {"objects", "select_for_update", "get_object_or_404", "get_list_or_404", "forget_rank", "cache"}


def reaches_past_services(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        name = (
            node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        )
        if name in FORBIDDEN:
            found.append(f"line {getattr(node, 'lineno', '?')}: {name}")
    return found


def test_there_are_views_to_check():
    names = {str(path.relative_to(MEMBERS)) for path in VIEW_MODULES}
    assert {"views.py", "billing/views.py", "privacy_views.py", "deletion_views.py"} <= names


@pytest.mark.parametrize("path", VIEW_MODULES, ids=lambda path: str(path.relative_to(MEMBERS)))
def test_members_views_read_through_selectors_and_leave_caches_to_services(path):
    assert reaches_past_services(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "def v(request):\n    return Tier.objects.filter(is_active=True)\n",
        "def v(request):\n    access.forget_rank(request.user)\n",
        "def v(request, pk):\n    return get_object_or_404(LocalCheckout, pk=pk)\n",
    ],
)
def test_the_check_finds_direct_reads_and_cache_clearing(source):
    assert len(reaches_past_services(source)) == 1
