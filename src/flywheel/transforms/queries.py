"""The SQL of a transform or an expectation, checked when the definitions are applied."""

from __future__ import annotations

import re
from collections.abc import Sequence

from flywheel._core.text import first_line
from flywheel.transforms.errors import TransformDefinitionError

_SQL_LINE = re.compile(r"\bLINE (\d+):")


def check_query(sql: str, where: str, lines: Sequence[int] = ()) -> None:
    """Refuse, when the definitions are applied, SQL that DuckDB cannot parse or that is not
    one query: it would otherwise fail only when the transform runs, or run the wrong part.
    `lines` are the file's line numbers of the SQL's lines, for the message."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except Exception as exc:  # DuckDB's parser says what and where, in its first lines
        message = str(exc)
        found = _SQL_LINE.search(message)
        line = int(found.group(1)) if found else 0
        at = f":{lines[line - 1]}" if 0 < line <= len(lines) else ""
        raise TransformDefinitionError(f"{where}{at}: its SQL does not parse: "
                                       f"{first_line(message, None)}") from None
    if len(statements) != 1:
        raise TransformDefinitionError(
            f"{where}: its SQL holds {len(statements)} statements; a transform is one query",
            hint="remove the ';' between them, or join them with UNION ALL or a CTE")
    kind = statements[0].type
    if kind not in (duckdb.StatementType.SELECT, duckdb.StatementType.MULTI):  # MULTI: PIVOT
        raise TransformDefinitionError(
            f"{where}: its SQL is a {kind.name} statement, not a query",
            hint="a transform is a SELECT; Flywheel writes its result")
