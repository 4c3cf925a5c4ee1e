"""`--param k=v`: the value is typed the way one would write it in YAML or JSON.

`true`/`false` are bools, `null` is None, `3` an int, `0.5` or `1e-3` a float, text
starting with `[`, `{` or `"` is JSON (and must be valid), anything else is a string.
Quote a string that looks like something else: `--param 'name="007"'`.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from flywheel.pipelines.errors import PipelineError
from flywheel.pipelines.steps import Step

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?$")
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_SIMPLE: dict[Any, type] = {t: t for t in (bool, int, float, str)} | {
    t.__name__: t for t in (bool, int, float, str)}


def parse_value(text: str) -> Any:
    """The typed value of the text after `=`."""
    word = text.strip()
    if word.lower() in _WORDS:
        return _WORDS[word.lower()]
    if _INT.match(word):
        return int(word)
    if _FLOAT.match(word):
        number = float(word)
        if math.isfinite(number):
            return number
    if word[:1] in ('[', '{', '"'):
        try:
            return json.loads(word)
        except json.JSONDecodeError as exc:
            raise PipelineError(f"'{text}' is not valid JSON: {exc.msg} at column "
                                f"{exc.colno}", hint="quote the whole value for the shell, "
                                "e.g. --param 'layers=[64, 32]'") from None
    return text


def format_value(value: Any) -> str:
    """The text that `parse_value` reads back as `value` (strings stay bare when they can)."""
    if isinstance(value, str):
        try:
            if parse_value(value) == value and value == value.strip():
                return value
        except PipelineError:
            pass
    return json.dumps(value, ensure_ascii=False)


def parse_param(text: str) -> tuple[str, Any]:
    """`k=v` -> (k, typed v)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise PipelineError(f"--param '{text}' is not KEY=VALUE",
                            hint="KEY is a step parameter's name, e.g. --param epochs=10")
    return key, parse_value(value)


def parse_params(texts: Iterable[str]) -> dict[str, Any]:
    """Several `k=v`; a later one wins."""
    return dict(parse_param(text) for text in texts)


def check_types(one: Step, params: Mapping[str, Any]) -> dict[str, Any]:
    """Params checked against the simple annotations of `one` (bool, int, float, str);
    an int for a float parameter becomes a float, so 1 and 1.0 are one cache key."""
    checked = dict(params)
    for name, value in params.items():
        annotation = one.annotations.get(name, inspect.Parameter.empty)
        wanted = _SIMPLE.get(annotation) if isinstance(annotation, type | str) else None
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            checked[name] = float(value)
        elif wanted is not None and not _fits(value, wanted):
            raise PipelineError(f"param {name} of step {one.name} is {format_value(value)} "
                                f"({type(value).__name__}), not {wanted.__name__}")
    return checked


def _fits(value: Any, wanted: type) -> bool:
    if wanted is not bool and isinstance(value, bool):
        return False
    return isinstance(value, wanted)
