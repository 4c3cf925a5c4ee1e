"""Iglu schema keys: `iglu:{vendor}/{name}/{format}/{MAJOR-MINOR-PATCH}`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from flywheel._core.errors import SchemaDefinitionError

_KEY = re.compile(
    r"^iglu:(?P<vendor>[a-zA-Z0-9_.-]+)/(?P<name>[a-zA-Z0-9_-]+)/(?P<format>[a-zA-Z0-9_-]+)/"
    r"(?P<major>[1-9][0-9]{0,5})-(?P<minor>0|[1-9][0-9]{0,5})-(?P<patch>0|[1-9][0-9]{0,5})$"
)
_VERSION = re.compile(r"^([1-9][0-9]{0,5})-(0|[1-9][0-9]{0,5})-(0|[1-9][0-9]{0,5})$")
_SAFE_PART = re.compile(r"^[a-zA-Z0-9_.-]+$")


@total_ordering
@dataclass(frozen=True, slots=True)
class SchemaKey:
    vendor: str
    name: str
    format: str
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> SchemaKey:
        match = _KEY.match(text)
        if match is None:
            raise SchemaDefinitionError(
                f"'{text[:200]}' is not an Iglu schema key",
                hint="expected iglu:{vendor}/{name}/jsonschema/{MAJOR-MINOR-PATCH}, "
                "e.g. iglu:com.acme/add_to_cart/jsonschema/1-0-0",
            )
        g = match.groupdict()
        return cls(g["vendor"], g["name"], g["format"], int(g["major"]), int(g["minor"]),
                   int(g["patch"]))

    @classmethod
    def from_parts(cls, vendor: str, name: str, fmt: str, version: str) -> SchemaKey:
        return cls.parse(f"iglu:{vendor}/{name}/{fmt}/{version}")

    @property
    def version(self) -> str:
        return f"{self.major}-{self.minor}-{self.patch}"

    @property
    def family(self) -> tuple[str, str, str]:
        return (self.vendor, self.name, self.format)

    @property
    def table(self) -> LogTableRef:
        return LogTableRef(self.vendor, self.name, self.major)

    def __str__(self) -> str:
        return f"iglu:{self.vendor}/{self.name}/{self.format}/{self.version}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SchemaKey):
            return NotImplemented
        return (*self.family, self.major, self.minor, self.patch) < (
            *other.family, other.major, other.minor, other.patch)


def is_version(text: str) -> bool:
    return _VERSION.match(text) is not None


@dataclass(frozen=True, slots=True, order=True)
class LogTableRef:
    """One log table: every minor version of one MAJOR version of one schema."""

    vendor: str
    name: str
    major: int

    def __str__(self) -> str:
        return f"{self.vendor}/{self.name}/v{self.major}"

    @property
    def path(self) -> str:
        """The table's folder below the log root."""
        return f"{self.vendor}/{self.name}/v{self.major}"

    @classmethod
    def parse(cls, text: str, known: list[LogTableRef] | None = None) -> LogTableRef:
        """Accept `vendor/name/v1`, `vendor/name` (newest major known) or a full Iglu key."""
        text = text.strip()
        if text.startswith("iglu:"):
            return SchemaKey.parse(text).table
        parts = text.split("/")
        if (len(parts) == 3 and parts[2].startswith("v") and parts[2][1:].isdigit()
                and _SAFE_PART.match(parts[0]) and _SAFE_PART.match(parts[1])):
            return cls(parts[0], parts[1], int(parts[2][1:]))
        if len(parts) == 2 and known is not None:
            majors = [t for t in known if (t.vendor, t.name) == (parts[0], parts[1])]
            if majors:
                return max(majors, key=lambda t: t.major)
        raise SchemaDefinitionError(
            f"no log table '{text}'",
            hint="name it as vendor/name/v1, vendor/name, or a full iglu: key; "
            "`flywheel log stats` lists the tables",
        )
