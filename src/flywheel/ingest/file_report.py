"""What ingesting one file reports: the counts, the rejections by reason and the first few
errors with where they are in the file (a line of NDJSON, a row of CSV or Parquet)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from flywheel._core.errors import FlywheelError
from flywheel.ingest.inputs import STDIN, Format
from flywheel.ingest.result import IngestResult

__all__ = ["FIRST_ERRORS", "FileIngestReport", "FirstError", "IngestInterrupted", "Tally"]

FIRST_ERRORS = 5
"""How many errors a report lists with their location; all are counted by reason."""


class IngestInterrupted(FlywheelError):
    """Ctrl-C in the middle of a file: what was committed before it stays committed, and
    the message says how much that was."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstError:
    """One of the first errors of a file."""

    index: int
    """The event's position in the file, from 0."""
    at: str
    """Where it is, for a person: `line 3` (NDJSON) or `row 3` (CSV, Parquet)."""
    reason: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FileIngestReport:
    """The outcome of ingesting one file or standard input."""

    source: str
    """The path as given, or `-` for standard input."""
    format: Format
    result: IngestResult
    by_reason: dict[str, int]
    """Rejections by reason; those beyond the listed errors under `(not listed)`."""
    first_errors: tuple[FirstError, ...]
    seconds: float
    """From the schema chosen to the last commit acknowledged."""

    @property
    def name(self) -> str:
        """The source as shown to a person."""
        return "stdin" if self.source == STDIN else self.source


@dataclass(slots=True)
class Tally:
    """The reasons and first errors of a file, added up chunk by chunk."""

    by_reason: Counter[str] = field(default_factory=Counter)
    first: list[FirstError] = field(default_factory=list)

    def add(self, result: IngestResult, shift: int, locate: list[int] | None,
            unit: str) -> None:
        """Count the errors of `result`, whose indexes start at `shift` in the file;
        `locate` maps an index to its line number when it is not the position + 1."""
        self.by_reason.update(e.reason for e in result.errors)
        for error in result.errors[: max(FIRST_ERRORS - len(self.first), 0)]:
            where = locate[error.index] if locate is not None else error.index + shift + 1
            self.first.append(FirstError(index=error.index + shift, at=f"{unit} {where}",
                                         reason=error.reason, message=error.message))
        if result.errors_omitted:
            self.by_reason["(not listed)"] += result.errors_omitted

    def report(self, source: str, chosen: Format, result: IngestResult,
               seconds: float) -> FileIngestReport:
        return FileIngestReport(source=source, format=chosen, result=result,
                                by_reason=dict(self.by_reason),
                                first_errors=tuple(self.first), seconds=seconds)
