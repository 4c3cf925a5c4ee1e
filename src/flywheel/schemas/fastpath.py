"""A C-speed accept path for the common subset of JSON Schema, built on msgspec.

`msgspec.convert` checks a dict against a typed structure about six times faster than the
generated Python of a JSON Schema compiler. The structure is built only from keywords whose
msgspec meaning is at least as strict as JSON Schema's; any other keyword anywhere in the
schema means no fast path. So "msgspec accepts" implies "the schema accepts", and an event
msgspec rejects is handed to the full validator, which has the last word and the error
message. A property test checks that implication on random schemas and data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import count
from typing import Annotated, Any, Literal, Union

import msgspec

Checker = Callable[[Any], bool]
"""Returns True when the data is valid for certain; False means "ask the full validator"."""

_NEUTRAL = frozenset({"title", "description", "$schema", "$id", "id", "self", "default",
                      "examples", "$comment", "readOnly", "writeOnly"})
_OBJECT = frozenset({"type", "properties", "required", "additionalProperties"})
_STRING = frozenset({"type", "minLength", "maxLength", "pattern", "enum", "format"})
_NUMBER = frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_ARRAY = frozenset({"type", "items", "minItems", "maxItems"})
_TYPE_KEYWORDS = {
    "string": _STRING, "integer": _NUMBER, "number": _NUMBER, "array": _ARRAY,
    "object": _OBJECT, "boolean": frozenset({"type"}), "null": frozenset({"type"}),
}
_names = count()


class Unsupported(Exception):
    """The schema uses a keyword the fast path does not model; use the full validator."""


def _keywords(schema: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = set(schema) - allowed - _NEUTRAL
    if extra:
        raise Unsupported(sorted(extra))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(json_type: str, schema: dict[str, Any]) -> Any:
    if json_type == "string":
        if "format" in schema:
            raise Unsupported("format")  # handled for top-level properties only
        meta: dict[str, Any] = {}
        if "minLength" in schema:
            meta["min_length"] = int(schema["minLength"])
        if "maxLength" in schema:
            meta["max_length"] = int(schema["maxLength"])
        if "pattern" in schema:
            meta["pattern"] = str(schema["pattern"])
        return Annotated[str, msgspec.Meta(**meta)] if meta else str
    if json_type in ("integer", "number"):
        bounds: dict[str, Any] = {}
        for keyword, arg in (("minimum", "ge"), ("maximum", "le"), ("exclusiveMinimum", "gt"),
                             ("exclusiveMaximum", "lt")):
            if keyword in schema:
                if not _number(schema[keyword]):
                    raise Unsupported(keyword)  # draft 4's boolean exclusives
                bounds[arg] = schema[keyword]
        base: Any = int if json_type == "integer" else float
        return Annotated[base, msgspec.Meta(**bounds)] if bounds else base
    if json_type == "boolean":
        return bool
    if json_type == "null":
        return None
    if json_type == "array":
        items = schema.get("items", {})
        if not isinstance(items, dict):
            raise Unsupported("tuple items")
        lengths: dict[str, Any] = {}
        if "minItems" in schema:
            lengths["min_length"] = int(schema["minItems"])
        if "maxItems" in schema:
            lengths["max_length"] = int(schema["maxItems"])
        listed = list.__class_getitem__(_type(items) if items else Any)
        return Annotated[listed, msgspec.Meta(**lengths)] if lengths else listed
    if json_type == "object":
        return _struct(schema)
    raise Unsupported(json_type)


def _type(schema: Any) -> Any:
    if not isinstance(schema, dict):
        raise Unsupported("boolean schema")
    enum = schema.get("enum")
    if enum is not None:
        if not enum or not all(isinstance(v, str) for v in enum):
            raise Unsupported("enum")
        if schema.get("type", "string") != "string":
            raise Unsupported("enum type")
        _keywords(schema, frozenset({"type", "enum"}))
        return Literal[tuple(enum)]
    declared = schema.get("type")
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list) or not declared or not all(
            t in _TYPE_KEYWORDS for t in declared):
        raise Unsupported("type")
    kinds = set(declared)
    if {"integer", "number"} <= kinds:
        kinds.discard("integer")
    _keywords(schema, frozenset().union(*(_TYPE_KEYWORDS[t] for t in kinds)))
    # Keywords of one JSON type do not constrain values of another: give each its own.
    members = [_scalar(t, {k: v for k, v in schema.items() if k in _TYPE_KEYWORDS[t]})
               for t in sorted(kinds)]
    return members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007


def _struct(schema: dict[str, Any]) -> Any:
    additional = schema.get("additionalProperties", True)
    if additional not in (True, False):
        raise Unsupported("additionalProperties schema")
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    if not isinstance(properties, dict) or not required <= set(properties):
        raise Unsupported("required outside properties")
    fields = []
    for i, (name, sub) in enumerate(properties.items()):
        sub_type = _type(sub)
        if name in required:
            fields.append((f"f{i}", sub_type, msgspec.field(name=name)))
        else:
            fields.append((f"f{i}", msgspec.UnsetType | sub_type,
                           msgspec.field(default=msgspec.UNSET, name=name)))
    required_first = sorted(fields, key=lambda f: f[2].default is not msgspec.UNSET,
                            reverse=True)
    return msgspec.defstruct(f"Event{next(_names)}", required_first,
                             forbid_unknown_fields=additional is False, kw_only=True)


def _format_patterns(draft: str) -> dict[str, re.Pattern[str]]:
    """The full validator's own format expressions, so both agree on what matches."""
    from fastjsonschema.draft04 import CodeGeneratorDraft04
    from fastjsonschema.draft07 import CodeGeneratorDraft07

    generator = CodeGeneratorDraft04 if "draft-04" in draft else CodeGeneratorDraft07
    return {name: re.compile(text) for name, text in generator.FORMAT_REGEXS.items()}


def _formats(document: dict[str, Any], draft: str,
             ) -> tuple[dict[str, Any], list[tuple[str, re.Pattern[str]]]]:
    """Strip top-level string formats the fast path checks itself; keep their expressions."""
    patterns = _format_patterns(draft)
    properties = dict(document.get("properties") or {})
    checks = []
    for name, sub in properties.items():
        if isinstance(sub, dict) and "format" in sub:
            pattern = patterns.get(sub["format"])
            if pattern is None or sub.get("type") != "string":
                raise Unsupported(f"format {sub['format']}")
            properties[name] = {k: v for k, v in sub.items() if k != "format"}
            checks.append((name, pattern))
    return {**document, "properties": properties}, checks


def compile_checker(document: dict[str, Any], draft: str) -> Checker | None:
    """A fast checker for `document`, or None when it uses keywords outside the subset."""
    body = {k: v for k, v in document.items() if k not in _NEUTRAL}
    if body.get("type", "object") != "object":
        return None
    try:
        stripped, formats = _formats(body, draft)
        _keywords(stripped, _OBJECT)
        struct = _struct(stripped)
        msgspec.convert({}, struct)
    except msgspec.ValidationError:
        pass  # the type is usable; {} merely lacks required fields
    except (Unsupported, TypeError, ValueError, re.error):
        return None
    convert = msgspec.convert
    error = msgspec.ValidationError

    def check(data: Any) -> bool:
        try:
            convert(data, struct)
        except error:
            return False
        for name, pattern in formats:
            value = data.get(name)
            if isinstance(value, str) and pattern.match(value) is None:
                return False
        return True

    return check
