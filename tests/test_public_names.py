"""Each module's `__all__` is exactly its public names, so that what it offers is what it says.

A public name is a top-level name that does not start with `_` and that the module defines
(a function, a class, an assignment), not one it imports. A package's `__init__` offers what
it re-exports from its own submodules, eagerly or on first use (`__getattr__`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "flywheel"


def _with_all() -> list[Path]:
    found = [path for path in sorted(PACKAGE.rglob("*.py")) if "__all__" in _assigned(path)]
    return found if PACKAGE / "__init__.py" in found else [PACKAGE / "__init__.py", *found]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import (inside top-level `if`/`try` too), not under TYPE_CHECKING."""
    for node in body:
        if isinstance(node, ast.If):
            if _is_type_checking(node.test):
                yield from _top_level(node.orelse)
                continue
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for part in (node.body, *(h.body for h in node.handlers), node.orelse,
                         node.finalbody):
                yield from _top_level(part)
        else:
            yield node


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _targets(element)


def _assigned(path: Path) -> set[str]:
    """Names the module defines: functions, classes, assignment targets."""
    names: set[str] = set()
    for node in _top_level(_tree(path).body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(_targets(target))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            names.update(_targets(node.target))
    return names


def _reexported(path: Path) -> set[str]:
    """What an `__init__` imports from its own package: eagerly, or (with a module
    `__getattr__`) under TYPE_CHECKING, to be imported on first use."""
    package = ".".join(path.parent.relative_to(SRC).parts)
    tree = _tree(path)
    lazy = any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0 \
                and node.module.startswith(package + "."):
            names.update(alias.asname or alias.name for alias in node.names)
    eager = {alias.asname or alias.name for node in _top_level(tree.body)
             if isinstance(node, ast.ImportFrom) for alias in node.names}
    return names if lazy else names & eager


def _declared(path: Path) -> list[str]:
    for node in _tree(path).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list | tuple), f"{path}: __all__ is not a literal list"
            return [str(name) for name in value]
    return []


def _public(path: Path) -> set[str]:
    names = {name for name in _assigned(path) if not name.startswith("_")}
    if path.name == "__init__.py":
        names |= {name for name in _reexported(path) if not name.startswith("_")}
    if path == PACKAGE / "__init__.py":
        names.add("__version__")  # the one dunder the SDK offers
    return names


MODULES = _with_all()


def _case(path: Path) -> object:
    return pytest.param(path, id=str(path.relative_to(SRC)))


@pytest.mark.parametrize("path", [_case(path) for path in MODULES])
def test_all_is_exactly_the_public_names(path: Path) -> None:
    declared = _declared(path)
    assert len(declared) == len(set(declared)), f"a name is in __all__ twice: {declared}"
    public = _public(path)
    assert sorted(set(declared) - public) == [], f"{path.name}: in __all__, not defined there"
    assert sorted(public - set(declared)) == [], f"{path.name}: public, not in __all__"


def test_the_sdk_offers_what_it_imports_on_first_use() -> None:
    import flywheel

    assert set(flywheel.__all__) == {*flywheel._LAZY, "__version__"}


def test_a_module_that_imports_a_name_does_not_offer_it(tmp_path: Path) -> None:
    module = tmp_path / "shown.py"
    module.write_text("from typing import Any\nimport os\n__all__ = ['Shown']\n"
                      "class Shown: ...\n_hidden = 1\nLIMIT: int = 3\n")
    assert _public(module) == {"Shown", "LIMIT"}
