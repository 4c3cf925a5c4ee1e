"""Compiled validators: each schema version is compiled once to fast Python code."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastjsonschema

from flywheel.schemas.fastpath import compile_checker
from flywheel.schemas.refs import ref_problem

DRAFT4 = "http://json-schema.org/draft-04/schema#"
DRAFT7 = "http://json-schema.org/draft-07/schema#"
_FAST_DRAFTS = {
    DRAFT4, DRAFT7,
    "http://json-schema.org/draft-06/schema#",
}
_IGLU_META_PREFIX = "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/"


@dataclass(frozen=True, slots=True)
class Violation:
    """One machine-readable validation error."""

    path: str  # JSON path into the event's data, e.g. $.items[0].sku
    rule: str  # the JSON Schema keyword that failed, e.g. minimum
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule, "message": self.message}


class ValidationFailure(Exception):
    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.message)
        self.violation = violation


Validator = Callable[[Any], Any]
"""Raises `fastjsonschema.JsonSchemaValueException` (fast path) or `ValidationFailure`."""


def effective_draft(document: dict[str, Any]) -> str:
    declared = document.get("$schema")
    if not isinstance(declared, str) or not declared:
        return DRAFT7
    if declared.startswith(_IGLU_META_PREFIX):
        return DRAFT4  # Iglu's self-describing meta-schema extends draft 4
    return declared if declared.endswith("#") else declared + "#"


def _for_compilation(document: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in document.items() if k != "self"}
    body["$schema"] = effective_draft(document)
    return body


def compile_validator(document: dict[str, Any]) -> Validator:
    """Compile once; fastjsonschema for drafts 4-7, the jsonschema library for newer ones."""
    body = _for_compilation(document)
    if body["$schema"] not in _FAST_DRAFTS:
        return _reference_validator(body)
    # use_default=False: validating must never write defaults into the caller's dict.
    full: Validator = fastjsonschema.compile(body, use_default=False)
    fast = compile_checker(body, body["$schema"])
    if fast is None:
        return full

    def validate(data: Any) -> Any:
        # The fast path only ever says "valid"; the full validator decides everything else.
        return data if fast(data) else full(data)

    return validate


def _reference_validator(body: dict[str, Any]) -> Validator:
    import jsonschema

    cls = jsonschema.validators.validator_for(body)
    checker = cls(body, format_checker=cls.FORMAT_CHECKER)

    def validate(data: Any) -> Any:
        error = jsonschema.exceptions.best_match(checker.iter_errors(data))
        if error is not None:
            raise ValidationFailure(
                Violation(error.json_path, str(error.validator), _short(error.message)))
        return data

    return validate


_INDEX = re.compile(r"\[(\d+)\]")


def violation_from_fast(exc: fastjsonschema.JsonSchemaValueException) -> Violation:
    name = exc.name or "data"
    path = "$" + name[len("data"):] if name.startswith("data") else "$." + name
    return Violation(path, str(exc.rule or "schema"), _short(str(exc.message)))


def _short(message: str, limit: int = 300) -> str:
    line = " ".join(message.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def check_document(document: dict[str, Any]) -> str | None:
    """Why `document` is not a valid JSON Schema, or None when it is."""
    import jsonschema

    body = _for_compilation(document)
    # Without a default, an unknown `$schema` only warns and validates as the latest draft.
    if jsonschema.validators.validator_for(body, default=None) is None:
        return (f"$schema {_short(repr(document.get('$schema')))} is not a JSON Schema "
                "draft this project knows (draft-04, -06, -07, 2019-09, 2020-12)")
    try:
        cls = jsonschema.validators.validator_for(body)
        cls.check_schema(body)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        return f"at {where}: {_short(exc.message)}"
    problem = ref_problem(document)
    if problem:
        return problem
    try:
        compile_validator(document)
    except Exception as exc:  # a compiler error is a schema error for the user
        return f"cannot be compiled: {_short(str(exc))}"
    return None
