"""The metadata tables (SQLAlchemy Core). Change them only together with a new migration."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

# Deterministic constraint names, so migrations can refer to them on every dialect.
metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always read back timezone-aware in UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        value = value.astimezone(dt.UTC)
        # SQLite keeps no offset, only the wall time: store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


schemas = sa.Table(
    "schemas",
    metadata,
    sa.Column("vendor", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("format", sa.String(64), primary_key=True),
    sa.Column("major", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("minor", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("patch", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("registered_at", UtcDateTime, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.Text, nullable=False),  # comma-separated; scopes hold no commas
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="bearer"),
    # Publishable keys only: {"app_ids": [...], "origins": [...], "rate": N | null} as JSON,
    # and the key itself (public by design, so that `token list` can show it again).
    sa.Column("limits", sa.Text, nullable=True),
    sa.Column("public_key", sa.String(255), nullable=True),
)

bad_row_recoveries = sa.Table(
    "bad_row_recoveries",
    metadata,
    sa.Column("bad_row_id", sa.String(255), primary_key=True),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("recovered_at", UtcDateTime, nullable=False),
)

table_versions = sa.Table(
    "table_versions",
    metadata,
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("rows_in", sa.BigInteger, nullable=False),
    sa.Column("rows_out", sa.BigInteger, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Tracking -------------------------------------------------------------------------
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("parent_id", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime, nullable=True),
    sa.Column("environment", sa.Text, nullable=False),
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("git_dirty", sa.Boolean, nullable=True),
    sa.Index("ix_runs_started_at", "started_at"),
    sa.Index("ix_runs_name_started_at", "name", "started_at"),
    sa.Index("ix_runs_parent_id", "parent_id"),
)

run_params = sa.Table(
    "run_params",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    # Searches filter on a param's value across runs.
    sa.Index("ix_run_params_key_value", "key", "value"),
)

run_metrics = sa.Table(
    "run_metrics",
    metadata,
    # Append-only history, written in batches; no primary key keeps the inserts cheap.
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("value", sa.Float, nullable=True),  # NULL stands for NaN (SQLite has none)
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", UtcDateTime, nullable=False),
    sa.Index("ix_run_metrics_run_id_key_step", "run_id", "key", "step"),
)

run_latest_metrics = sa.Table(
    "run_latest_metrics",
    metadata,
    # Each key's newest point per run, kept current by every batch, so that searches
    # filter and order by a metric with an index instead of scanning the history.
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", UtcDateTime, nullable=False),
    sa.Index("ix_run_latest_metrics_key_value", "key", "value"),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_run_tags_key_value", "key", "value"),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(255), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# Model registry -----------------------------------------------------------------------
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("artifact_sha256", sa.String(64), nullable=False),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),
    sa.Column("lineage", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("alias", sa.String(255), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

model_alias_changes = sa.Table(
    "model_alias_changes",
    metadata,
    # INTEGER on SQLite: only that type makes the column the rowid, which autoincrements.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("alias", sa.String(255), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(255), nullable=True),
    sa.Index("ix_model_alias_changes_name_id", "name", "id"),
)

# Alerts ---------------------------------------------------------------------------------
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("monitor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(255), nullable=False),
    sa.Column("window_start", UtcDateTime, nullable=False),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("statistic", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("fired_at", UtcDateTime, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    # The de-duplication key: one alert per monitor, action, window and subject, ever.
    sa.UniqueConstraint("monitor", "action", "window_start", "subject",
                        name="uq_alerts_key"),
    sa.Index("ix_alerts_monitor_action_fired_at", "monitor", "action", "fired_at"),
    sa.Index("ix_alerts_fired_at", "fired_at"),
)

retraining_decisions = sa.Table(
    "retraining_decisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("policy", sa.String(255), nullable=False),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("alert_id", sa.BigInteger, nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("champion_version", sa.Integer, nullable=True),
    sa.Column("challenger_version", sa.Integer, nullable=True),
    sa.Column("metric", sa.String(32), nullable=False),
    sa.Column("champion_value", sa.Float, nullable=True),
    sa.Column("challenger_value", sa.Float, nullable=True),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decided_at", UtcDateTime, nullable=False),
    sa.Index("ix_retraining_decisions_policy_id", "policy", "id"),
)

SCHEMA_KEY = tuple(column for column in schemas.primary_key.columns)
"""The columns of a schema version's identity, in key order."""
