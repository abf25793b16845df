"""The plugin contract is documented and tested: every hookspec has a docstring, is in the
README's hook table, and is declared by a test (``@pytest.mark.hooks``) that makes the core call
it; plugins import only the public API."""

from __future__ import annotations

import ast
import functools
import inspect
import re
from pathlib import Path

import pytest

from helpdesk import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(
    name
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, "helpdesk_spec")
)
README_HOOK_ROW = re.compile(r"^\| `(helpdesk_\w+)\(([^)]*)\)` \|", re.MULTILINE)
PRIVATE_IMPORT = re.compile(r"^\s*(?:import\s+helpdesk\b|from\s+helpdesk\.)", re.MULTILINE)


def _readme_hooks() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return dict(README_HOOK_ROW.findall(text))


def test_there_are_hooks():
    assert "helpdesk_ticket_panels" in HOOKS and len(HOOKS) > 15


@pytest.mark.parametrize("name", HOOKS)
def test_every_hookspec_has_a_docstring(name: str):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert len(doc) > 40, f"{name} needs a docstring: when it runs, arguments, what it returns"


def test_readme_hook_table_matches_the_hookspecs():
    documented = _readme_hooks()
    assert sorted(documented) == HOOKS
    for name, args in documented.items():
        expected = list(inspect.signature(getattr(hookspecs, name)).parameters)
        assert [a.strip() for a in args.split(",") if a.strip()] == expected, name


@functools.cache
def _declared_hooks() -> frozenset[str]:
    """Hook names in every ``@pytest.mark.hooks(...)`` of the test files."""
    declared: set[str] = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "hooks"
                and ast.unparse(node.func.value) == "pytest.mark"
            ):
                declared |= {a.value for a in node.args if isinstance(a, ast.Constant)}
                if any(k.arg == "every" for k in node.keywords):
                    declared |= set(HOOKS)
    return frozenset(declared)


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_exercised_by_a_test(name: str):
    assert name in _declared_hooks(), (
        f"no test declares @pytest.mark.hooks({name!r}); write one that makes the core call it"
    )


def test_plugins_import_only_the_public_api():
    offenders = []
    for folder in ("plugins", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            for match in PRIVATE_IMPORT.finditer(path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(ROOT)}: {match.group(0).strip()}")
    assert offenders == [], "plugins must use `from helpdesk import ...` only"


def test_the_import_check_catches_private_imports():
    bad = "import helpdesk.core\nfrom helpdesk.core.models import Ticket\nimport helpdesk\n"
    good = "from helpdesk import db\nfrom helpdesk_hello.models import Greeting\n"
    assert len(PRIVATE_IMPORT.findall(bad)) == 3
    assert PRIVATE_IMPORT.findall(good) == []
