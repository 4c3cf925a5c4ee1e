"""`$ref`s of a schema document, checked before it is compiled: a reference to another
document would be fetched (from the network, or a local file) by the compiler, and a
loop of references that never steps into the data recurses without end on every event."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

_SAME_VALUE = ("allOf", "anyOf", "oneOf")
"""Keywords whose subschemas apply to the same value (a list of them)."""
_SAME_VALUE_ONE = ("not", "if", "then", "else")
_NOT_SCHEMAS = frozenset({"enum", "const", "default", "examples"})
"""Keywords whose values are data, not subschemas: a `$ref` key in them means nothing."""


def ref_problem(document: dict[str, Any]) -> str | None:
    """Why the references of `document` cannot be compiled safely, or None."""
    nodes: dict[str, dict[str, Any]] = {}
    stack: list[tuple[Any, str]] = [(document, "#")]
    while stack:
        value, pointer = stack.pop()
        if isinstance(value, list):
            stack.extend((item, f"{pointer}/{i}") for i, item in enumerate(value))
            continue
        if not isinstance(value, dict):
            continue
        nodes[pointer] = value
        ref = value.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return (f"at {pointer}: $ref '{ref}' points to another document; only references "
                    "within the schema (#/definitions/...) are supported")
        stack.extend((child, f"{pointer}/{_escape(key)}") for key, child in value.items()
                     if key not in _NOT_SCHEMAS)
    return _loop(nodes)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _target(ref: str) -> str:
    """`#/a/b` as the pointer this module keys subschemas by (its parts unescaped once)."""
    return unquote(ref).rstrip("/") or "#"


def _edges(pointer: str, node: dict[str, Any]) -> list[str]:
    """The subschemas that apply to the very value `node` applies to."""
    found = []
    ref = node.get("$ref")
    if isinstance(ref, str):
        found.append(_target(ref))
    for key in _SAME_VALUE:
        if isinstance(node.get(key), list):
            found.extend(f"{pointer}/{key}/{i}" for i in range(len(node[key])))
    found.extend(f"{pointer}/{key}" for key in _SAME_VALUE_ONE if isinstance(node.get(key), dict))
    return found


def _loop(nodes: dict[str, dict[str, Any]]) -> str | None:
    """A cycle of same-value references (depth-first, iteratively), named by a pointer."""
    done: set[str] = set()
    for start in nodes:
        if start in done:
            continue
        on_path: set[str] = set()
        stack: list[tuple[str, bool]] = [(start, True)]
        while stack:
            pointer, entering = stack.pop()
            if not entering:
                on_path.discard(pointer)
                done.add(pointer)
                continue
            if pointer in on_path:
                return (f"at {pointer}: $ref refers back to itself without reading any part "
                        "of the value: validating would never end")
            if pointer in done or pointer not in nodes:
                continue
            on_path.add(pointer)
            stack.append((pointer, False))
            stack.extend((child, True) for child in _edges(pointer, nodes[pointer]))
    return None
