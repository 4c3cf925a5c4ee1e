"""Tracking (runs, params, metrics, tags, artifacts, inputs) and the model registry
(versions, aliases and the audit trail of alias changes).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    _tracking()
    _registry()


def _tracking() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("git_dirty", sa.Boolean, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_name_started_at", "runs", ["name", "started_at"])
    op.create_index("ix_runs_parent_id", "runs", ["parent_id"])
    for table in ("run_params", "run_tags"):
        op.create_table(
            table,
            sa.Column("run_id", sa.String(64), nullable=False),
            sa.Column("key", sa.String(255), nullable=False),
            sa.Column("value", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("run_id", "key", name=f"pk_{table}"),
        )
        op.create_index(f"ix_{table}_key_value", table, ["key", "value"])
    op.create_table(
        "run_metrics",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
    )
    op.create_index("ix_run_metrics_run_id_key_step", "run_metrics", ["run_id", "key", "step"])
    op.create_table(
        "run_latest_metrics",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_run_latest_metrics"),
    )
    op.create_index("ix_run_latest_metrics_key_value", "run_latest_metrics", ["key", "value"])
    op.create_table(
        "run_artifacts",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "name", name="pk_run_artifacts"),
    )
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "table_name", name="pk_run_inputs"),
    )


def _registry() -> None:
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("flavor", sa.String(32), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("lineage", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_model_versions"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("name", "alias", name="pk_model_aliases"),
    )
    op.create_table(
        "model_alias_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False,
                  autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_model_alias_changes"),
    )
    op.create_index("ix_model_alias_changes_name_id", "model_alias_changes", ["name", "id"])


def downgrade() -> None:
    op.drop_table("model_alias_changes")
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
    for table in ("run_inputs", "run_artifacts", "run_latest_metrics", "run_metrics",
                  "run_tags", "run_params", "runs"):
        op.drop_table(table)
