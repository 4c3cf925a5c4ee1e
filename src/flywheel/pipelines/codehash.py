"""The code hash of a step: its own source and the source of its module around it.

Like a Python transform, a step's hash covers its whole module, since a helper or a
constant beside it is part of its logic; but the other steps of the pipeline are left
out (editing one step re-runs that step, not its neighbours), and so is the module's
`Pipeline(...)` wiring (what a step receives reaches its cache key as input digests).
The project's own modules that the step's module imports (found under the project
folder, transitively) are covered too: a helper moved into `helpers.py` still counts.
The source is compared as parsed code (`ast.unparse`): comments and layout do not count.
"""

from __future__ import annotations

import ast
import inspect
import marshal
import sys
from collections.abc import Callable, Collection, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from flywheel._core.hashing import canonical_json, sha256_bytes, sha256_text
from flywheel._core.modules import check_source, import_error
from flywheel.pipelines.errors import PipelineError


def code_hash(function: Callable[..., Any], others: Collection[Callable[..., Any]] = (),
              root: Path | None = None) -> str:
    """The hash of `function`'s code; `others` are the pipeline's other step functions,
    `root` the project folder whose modules count as the step's code when imported."""
    try:
        path = inspect.getsourcefile(function)
        stat = Path(path).stat() if path else None
    except (TypeError, OSError):
        path, stat = None, None
    if path is None or stat is None:
        return _compiled_hash(function)
    module = _parsed(path, stat.st_mtime_ns, stat.st_size)
    name = getattr(function, "__name__", "")
    mine = _top_level_def(module, name)
    if mine is None:  # not defined at the top of its module (nested, a lambda...)
        try:
            return sha256_text(canonical_json(["nested", inspect.getsource(function),
                                               ast.unparse(module)]))
        except OSError:
            return _compiled_hash(function)
    steps = frozenset({getattr(o, "__name__", "") for o in others if _same_file(o, path)}
                      | {name})
    local = _local_imports(path, root) if root is not None else []
    return sha256_text(canonical_json(
        ["step", ast.unparse(mine), _rest(path, stat.st_mtime_ns, stat.st_size, steps),
         local]))


def _local_imports(path: str, root: Path) -> list[tuple[str, str]]:
    """(path, parsed source) of each module under `root` that `path` imports, directly
    or through another such module."""
    resolved = root.resolve()
    return sorted((str(Path(file).resolve().relative_to(resolved)), ast.unparse(_read(file)))
                  for file in local_modules(path, [root]).values())


def local_modules(path: str, roots: Sequence[Path]) -> dict[str, str]:
    """{module name: file} of the imported modules under one of `roots` that the file at
    `path` imports, directly or through one another (as far as they are imported)."""
    folders = [root.resolve() for root in roots]
    found: dict[str, str] = {}
    todo, seen = [path], {path}
    while todo:
        for name in sorted(_imported_names(_read(todo.pop()))):
            file = getattr(sys.modules.get(name), "__file__", None)
            if (name in ("__main__", "__mp_main__") or not isinstance(file, str)
                    or not file.endswith(".py") or file in seen
                    or not any(Path(file).resolve().is_relative_to(f) for f in folders)):
                continue
            found[name] = file
            seen.add(file)
            todo.append(file)
    return found


def _read(path: str) -> ast.Module:
    stat = Path(path).stat()
    return _parsed(path, stat.st_mtime_ns, stat.st_size)


def _imported_names(module: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        for target in targets:  # `a.b.c` imports a, a.b and a.b.c
            parts = target.split(".")
            names.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return names


@lru_cache(maxsize=64)
def _rest(path: str, mtime_ns: int, size: int, steps: frozenset[str]) -> str:
    """The module without its steps and its wiring: the same text for each of its steps."""
    module = _parsed(path, mtime_ns, size)
    kept = [node for node in module.body if not _skipped(node, steps)]
    return ast.unparse(ast.Module(body=kept, type_ignores=[]))


@lru_cache(maxsize=64)
def _parsed(path: str, mtime_ns: int, size: int) -> ast.Module:
    # The mtime and size are part of the key: an edited file is read again.
    text = check_source(Path(path), PipelineError)
    try:
        return ast.parse(text, filename=path)
    except (SyntaxError, MemoryError, RecursionError) as exc:
        # The module cannot run either: say where, in one line.
        raise import_error(Path(path), exc, PipelineError) from None


def _top_level_def(module: ast.Module, name: str) -> ast.AST | None:
    found = None
    for node in module.body:  # the last definition of a name is the one Python keeps
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            found = node
    return found


def _skipped(node: ast.stmt, names: Collection[str]) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name in names
    value = node.value if isinstance(node, ast.Assign | ast.AnnAssign | ast.Expr) else None
    if isinstance(value, ast.Call):
        func = value.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return called == "Pipeline"
    return False


def _same_file(function: Callable[..., Any], path: str) -> bool:
    try:
        return inspect.getsourcefile(function) == path
    except TypeError:
        return False


def _compiled_hash(function: Callable[..., Any]) -> str:
    code = getattr(function, "__code__", None)
    if code is None:
        return sha256_text(f"{getattr(function, '__module__', '')}."
                           f"{getattr(function, '__qualname__', repr(function))}")
    return sha256_bytes(marshal.dumps(code))
