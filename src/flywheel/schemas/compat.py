"""Versioning rules within one MAJOR version: changes must be additive.

A later version of the same MAJOR must accept every event an earlier one accepted and
store it in the same columns. Adding optional properties is a MINOR change; a PATCH may
only touch documentation and loosen constraints; anything else needs a new MAJOR.
"""

from __future__ import annotations

import itertools
from typing import Any

from flywheel.schemas.columns import RESERVED, allows_extra, payload_columns
from flywheel.schemas.keys import SchemaKey


def _required(document: dict[str, Any]) -> set[str]:
    required = document.get("required")
    return {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()


def shape_problems(key: SchemaKey, document: dict[str, Any]) -> list[str]:
    """Problems with one version on its own."""
    problems = []
    if document.get("type") not in ("object", None) or (
        "type" not in document and "properties" not in document
    ):
        problems.append(f"{key}: the top level must be \"type\": \"object\"")
    properties = document.get("properties") or {}
    if not isinstance(properties, dict):
        return [*problems, f"{key}: properties must be an object"]
    clash = sorted(RESERVED.intersection(properties))
    if clash:
        problems.append(
            f"{key}: propert{'y' if len(clash) == 1 else 'ies'} {', '.join(clash)} "
            "clash with envelope columns; rename them in the schema")
    lowered: dict[str, str] = {}
    for name in properties:
        other = lowered.setdefault(name.lower(), name)
        if other != name:
            problems.append(f"{key}: properties '{other}' and '{name}' differ only in case")
    return problems


def evolution_problems(
    old_key: SchemaKey, old: dict[str, Any], new_key: SchemaKey, new: dict[str, Any]
) -> list[str]:
    """Problems with `new` as the next version after `old` in the same MAJOR."""
    breaking = f"publish it as {new_key.major + 1}-0-0 instead"
    problems = []
    old_cols = {c.name: c for c in payload_columns(old)}
    new_cols = {c.name: c for c in payload_columns(new)}
    for name, column in old_cols.items():
        if name not in new_cols:
            problems.append(f"{new_key} removes property '{name}' of {old_key}: {breaking}")
        elif new_cols[name].signature() != column.signature():
            problems.append(
                f"{new_key} changes the type of '{name}' from {column.signature()} to "
                f"{new_cols[name].signature()}: {breaking}")
    added_required = sorted(_required(new) - _required(old))
    if added_required:
        problems.append(
            f"{new_key} makes {', '.join(added_required)} required, which rejects events "
            f"{old_key} accepted: {breaking}")
    if allows_extra(old) and not allows_extra(new):
        problems.append(
            f"{new_key} forbids additional properties that {old_key} allowed: {breaking}")
    added = sorted(set(new_cols) - set(old_cols))
    if added and new_key.minor == old_key.minor:
        problems.append(
            f"{new_key} adds {', '.join(added)}: adding properties is a MINOR change, "
            f"publish it as {new_key.major}-{old_key.minor + 1}-0")
    return problems


def family_problems(versions: list[tuple[SchemaKey, dict[str, Any]]]) -> list[str]:
    """Check every MAJOR of one schema family; `versions` in any order."""
    problems: list[str] = []
    by_major: dict[int, list[tuple[SchemaKey, dict[str, Any]]]] = {}
    for key, document in sorted(versions, key=lambda kv: kv[0]):
        by_major.setdefault(key.major, []).append((key, document))
    for major, chain in by_major.items():
        first = chain[0][0]
        if (first.minor, first.patch) != (0, 0):
            problems.append(f"{first}: the first version of MAJOR {major} must be {major}-0-0")
        for (old_key, old), (new_key, new) in itertools.pairwise(chain):
            problems.extend(evolution_problems(old_key, old, new_key, new))
    return problems
