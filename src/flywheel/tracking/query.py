"""Run search conditions in text: `metrics.auc >= 0.8`, `params.model = lgbm`,
`tags.team != research`, and orderings such as `metrics.auc desc`."""

from __future__ import annotations

import math
import re
from typing import cast

from flywheel._core.errors import InputError
from flywheel._core.metadata.runs import Comparison, RunFilter

_KEY = r"[A-Za-z0-9_][A-Za-z0-9_.\-/:]*"
_FILTER = re.compile(
    rf"^\s*(?P<field>params|metrics|tags)\.(?P<key>{_KEY})\s*"
    r"(?P<op>==|!=|<=|>=|=|<|>)\s*(?P<value>.*?)\s*$", re.DOTALL)
_ORDER = re.compile(rf"^\s*metrics\.(?P<key>{_KEY})(?:\s+(?P<dir>asc|desc))?\s*$", re.IGNORECASE)
_KEY_ONLY = re.compile(rf"^{_KEY}$")
_HINT = "e.g. 'metrics.auc >= 0.8', 'params.model = lgbm' or 'tags.team != research'"


def parse_filter(text: str) -> RunFilter:
    """One condition; params and tags compare text with = or !=, metrics compare numbers."""
    found = _FILTER.fullmatch(text)
    if found is None:
        raise InputError(f"cannot read the run filter {text!r}", hint=_HINT)
    field, key, value = found["field"], found["key"], _unquote(found["value"])
    op = cast(Comparison, "=" if found["op"] == "==" else found["op"])
    if field == "metrics":
        return RunFilter("metrics", key, op, _number(text, value))
    if op not in ("=", "!="):
        raise InputError(f"run filter {text!r}: {field} compare as text, with = or != only",
                         hint="compare metrics with < <= > >=")
    return RunFilter("params" if field == "params" else "tags", key, op, value)


def format_filter(condition: RunFilter) -> str:
    """The text `parse_filter` reads back as `condition`."""
    value = condition.value
    shown = repr(float(value)) if condition.field == "metrics" else _quote(str(value))
    return f"{condition.field}.{condition.key} {condition.op} {shown}"


def parse_order(text: str) -> tuple[str, bool]:
    """`metrics.KEY [asc|desc]` -> (key, descending); descending unless asc is given."""
    found = _ORDER.fullmatch(text)
    if found is None:
        raise InputError(f"cannot order runs by {text!r}",
                         hint="order by a metric: 'metrics.auc desc' or 'metrics.loss asc'")
    return found["key"], (found["dir"] or "desc").lower() == "desc"


def check_key(key: str, what: str) -> str:
    """A param, metric or tag key: what search conditions can name."""
    if not isinstance(key, str) or len(key) > 255 or not _KEY_ONLY.fullmatch(key):
        raise InputError(f"{what} key {key!r} is not a name",
                         hint="letters, digits and _ . - / : (at most 255), not starting "
                         "with punctuation")
    return key


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _quote(value: str) -> str:
    plain = value and value == value.strip() and value[0] not in "'\"" and "\n" not in value
    return value if plain else f"'{value}'"


def _number(text: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"run filter {text!r}: {value!r} is not a number",
                         hint=_HINT) from None
    if math.isnan(number):
        raise InputError(f"run filter {text!r}: NaN compares to nothing", hint=_HINT)
    return number
