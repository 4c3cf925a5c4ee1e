"""Re-validate bad rows (after a schema fix, or through a fix-up function) and ingest those
that now pass, exactly once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flywheel._core.errors import FlywheelError
from flywheel._core.ids import derived_id
from flywheel._core.metadata.recoveries import Recoveries
from flywheel._core.text import first_line
from flywheel.ingest.ingestor import Ingestor
from flywheel.ingest.prepare import NotJson, decode_json_items
from flywheel.ingest.result import IngestResult
from flywheel.log.store import LogStore

FixUp = Callable[[Any], Any]
"""Takes the parsed event (or the raw text when it is not JSON); returns the fixed event,
or None to leave the row as it is."""


@dataclass(frozen=True, slots=True)
class RecoverReport:
    considered: int
    recovered: int
    still_bad: int
    skipped: int
    result: IngestResult
    dry_run: bool = False
    """With dry_run, `recovered` counts the rows that would be recovered."""


def recover(store: LogStore, metadata: Recoveries, ingestor: Ingestor,
            fix: FixUp | None = None, reason: str | None = None,
            schema: str | None = None, dry_run: bool = False) -> RecoverReport:
    handle = store.bad_rows()
    if not handle.exists():
        return RecoverReport(0, 0, 0, 0, IngestResult())
    rows = handle.read(columns=["bad_row_id", "received_at", "reason", "schema", "raw"]
                       ).to_pylist()
    done = metadata.recovered_ids()
    todo = [r for r in rows if r["bad_row_id"] not in done
            and (reason is None or r["reason"] == reason)
            and (schema is None or (r["schema"] or "").startswith(schema))]
    items, skipped = [], 0
    raws: list[bytes] = []
    chosen: list[dict[str, Any]] = []
    for row in todo:
        item = _parse(row["raw"])
        if fix is not None:
            fixed = _apply_fix(fix, item.message if isinstance(item, NotJson) else item,
                               row["bad_row_id"])
            if fixed is None:
                skipped += 1
                continue
            item = fixed
        items.append(item)
        raws.append(row["raw"])
        chosen.append(row)
    if not items:
        return RecoverReport(len(todo), 0, 0, skipped, IngestResult())
    fallback = [derived_id("bad-row", r["bad_row_id"]) for r in chosen]
    # An event that never said when it happened happened when it was first received.
    times = [r["received_at"].isoformat() for r in chosen]
    result, passed = ingestor.ingest_with_ids(items, raws, fallback, door="recover",
                                              fallback_times=times, dry_run=dry_run)
    if dry_run:
        return RecoverReport(len(todo), len(passed), len(items) - len(passed), skipped, result,
                             dry_run=True)
    pairs = [(chosen[i]["bad_row_id"], _event_id(items[i]) or fallback[i]) for i in passed]
    claimed = metadata.claim_recoveries(pairs)
    return RecoverReport(len(todo), len(claimed), len(items) - len(passed), skipped, result)


class FixFailedError(FlywheelError):
    """The fix-up function raised: nothing was recovered."""


def _apply_fix(fix: FixUp, item: Any, bad_row_id: str) -> Any:
    try:
        return fix(item)
    except Exception as exc:
        name = getattr(fix, "__name__", "the fix-up function")
        raise FixFailedError(
            f"{name} raised {type(exc).__name__}: {first_line(exc, 200)} on bad row "
            f"{bad_row_id}", hint="nothing was recovered; make the function return the "
            "fixed event, or None to leave a row as it is") from exc


def _parse(raw: bytes) -> Any:
    item = decode_json_items([raw])[0]
    return NotJson(raw.decode("utf-8", "backslashreplace")) if type(item) is NotJson else item


def _event_id(item: Any) -> str | None:
    value = item.get("event_id") if isinstance(item, dict) else None
    return value if isinstance(value, str) else None
