"""Model URIs: `name@alias` (where an alias points now), `name/version` (one version), and a
bare `name` (its newest version)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flywheel._core.errors import InputError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
_HINT = "e.g. purchase@champion, purchase/3 or purchase"


@dataclass(frozen=True, slots=True)
class ModelUri:
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name if self.version is None else f"{self.name}/{self.version}"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InputError(f"model name {name!r} is not a name",
                         hint="letters, digits, _ . - (at most 128), starting with a letter "
                         "or digit")
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
        raise InputError(f"alias {alias!r} is not a name",
                         hint="a letter, then letters, digits, _ or - (at most 64), "
                         "e.g. champion")
    return alias


def parse_uri(text: str) -> ModelUri:
    """`name@alias`, `name/version` or `name`; anything else is an `InputError`."""
    if not isinstance(text, str):
        raise InputError(f"model URI {text!r} is not text", hint=_HINT)
    if "@" in text:
        name, _, alias = text.partition("@")
        if NAME.fullmatch(name) and ALIAS.fullmatch(alias):
            return ModelUri(name, alias=alias)
    elif "/" in text:
        name, _, version = text.partition("/")
        if NAME.fullmatch(name) and _VERSION.fullmatch(version):
            return ModelUri(name, version=int(version))
    elif NAME.fullmatch(text):
        return ModelUri(text)
    raise InputError(f"cannot read the model URI {text!r}", hint=_HINT)
