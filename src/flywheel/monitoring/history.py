"""`project.alerts`: the alert history and the retraining decisions, read back."""

from __future__ import annotations

import builtins
import datetime as dt

from flywheel._core.clock import utc_now
from flywheel._core.errors import InputError
from flywheel._core.metadata.alerts import AlertRecord, AlertStore, RetrainingDecision
from flywheel.features.definitions import parse_duration

__all__ = ["MAX_LIMIT", "AlertHistory", "parse_since"]

MAX_LIMIT = 100_000


class AlertHistory:
    """What fired, when, and what became of it; what retraining decided."""

    def __init__(self, *, store: AlertStore) -> None:
        self._store = store

    def list(self, *, monitor: str | None = None, since: dt.datetime | str | None = None,
             limit: int = 100) -> list[AlertRecord]:
        """Alerts newest first; `since`: a time, or a duration back from now (`1d`)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
            raise InputError(f"limit {limit!r} must be a whole number from 1 to {MAX_LIMIT:,}")
        return self._store.alerts(monitor=monitor, since=parse_since(since), limit=limit)

    def decisions(self, *, policy: str | None = None, limit: int = 100,
                  ) -> builtins.list[RetrainingDecision]:
        """Retraining decisions, newest first."""
        return self._store.decisions(policy=policy, limit=limit)


def parse_since(value: dt.datetime | str | None, *,
                now: dt.datetime | None = None) -> dt.datetime | None:
    """A time (ISO 8601; UTC when it names no zone) or a duration back from now."""
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)
    text = value.strip()
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            back = parse_duration(text)
        except Exception:  # the duration parser's own error: say both forms instead
            raise InputError(f"--since {value!r} is neither a time nor a duration",
                             hint="e.g. 2026-03-01T00:00:00Z, 2026-03-01, 1d or 30m") from None
        return (now or utc_now()) - back
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
