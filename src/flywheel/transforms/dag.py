"""Loading a project's transforms and ordering them as a DAG."""

from __future__ import annotations

from collections.abc import Iterable
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from flywheel._core.modules import import_file
from flywheel.schemas.keys import LogTableRef
from flywheel.transforms.definitions import TransformDef, collect_decorated, parse_sql
from flywheel.transforms.errors import TransformDefinitionError


def load_transforms(folder: Path) -> list[TransformDef]:
    """Every transform under `folder`: `*.sql` files and `@transform` functions in `*.py`."""
    if not folder.is_dir():
        return []
    found: list[TransformDef] = []
    for path in sorted(folder.rglob("*.sql")):
        found.append(parse_sql(path))
    collect_decorated()  # forget anything registered outside this folder
    for path in sorted(folder.rglob("*.py")):
        if path.name.startswith("_"):
            continue
        _import(path)
        found.extend(collect_decorated())
    names = [t.name for t in found]
    for name in {n for n in names if names.count(n) > 1}:
        where = ", ".join(t.source for t in found if t.name == name)
        raise TransformDefinitionError(f"two transforms are named '{name}' ({where})")
    return found


def _import(path: Path) -> None:
    import_file(path, "flywheel_transforms", TransformDefinitionError)


class TransformGraph:
    """Transforms in dependency order, checked against the log tables that exist."""

    def __init__(self, transforms: Iterable[TransformDef], log_tables: Iterable[LogTableRef]):
        self.by_name = {t.name: t for t in transforms}
        self._log_tables = list(log_tables)
        self._check_inputs()
        self.order = self._sorted()

    def log_table(self, target: str) -> LogTableRef:
        return LogTableRef.parse(target, self._log_tables)

    def _check_inputs(self) -> None:
        for t in self.by_name.values():
            for ref in t.inputs:
                if ref.is_log:
                    try:
                        resolved = self.log_table(ref.target)
                    except Exception:
                        resolved = None
                    if resolved is None or resolved not in self._log_tables:
                        raise TransformDefinitionError(
                            f"{t.source}: input '{ref.target}' is not a log table",
                            hint="register its schema under schemas/ and run `flywheel apply`")
                elif ref.target not in self.by_name:
                    raise TransformDefinitionError(
                        f"{t.source}: input '{ref.target}' is neither a log table nor a "
                        "transform", hint="log tables are named vendor/name; derived tables "
                        "by their transform's name")
                elif t.is_incremental and self.by_name[ref.target].unique_key:
                    raise TransformDefinitionError(
                        f"{t.source}: an incremental transform cannot read '{ref.target}', "
                        "whose rows are replaced by key",
                        hint="make this transform materialized: table")

        for t in self.by_name.values():
            streams = [r.target for r in t.inputs
                       if r.is_log or self.by_name[r.target].is_incremental]
            if t.is_incremental and len(streams) > 1:
                raise TransformDefinitionError(
                    f"{t.source}: an incremental transform reads new rows of one growing "
                    f"input, not of several ({', '.join(streams)}): new rows of one would "
                    "miss older rows of the other",
                    hint="make it materialized: table, or join a `table` transform instead")

    def _sorted(self) -> list[str]:
        graph = {t.name: {r.target for r in t.inputs if not r.is_log}
                 for t in self.by_name.values()}
        try:
            return list(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise TransformDefinitionError(f"transforms form a cycle: {cycle}",
                                           hint="a derived table cannot depend on itself"
                                           ) from None

    def upstream(self, names: Iterable[str]) -> list[str]:
        """`names` and every transform they read from, in run order."""
        wanted: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in self.by_name:
                raise TransformDefinitionError(f"no transform named '{name}'",
                                               hint="`flywheel transform` with no name runs all")
            if name not in wanted:
                wanted.add(name)
                stack.extend(r.target for r in self.by_name[name].inputs if not r.is_log)
        return [n for n in self.order if n in wanted]
