"""Alerts (each claimed once per monitor, action, window and subject) and the decisions of
retraining policies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite: the autoincrementing rowid


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("monitor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("window_start", _TS, nullable=False),
        sa.Column("window_end", _TS, nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("statistic", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fired_at", _TS, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("monitor", "action", "window_start", "subject",
                            name="uq_alerts_key"),
    )
    op.create_index("ix_alerts_monitor_action_fired_at", "alerts",
                    ["monitor", "action", "fired_at"])
    op.create_index("ix_alerts_fired_at", "alerts", ["fired_at"])
    op.create_table(
        "retraining_decisions",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
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
        sa.Column("decided_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retraining_decisions"),
    )
    op.create_index("ix_retraining_decisions_policy_id", "retraining_decisions",
                    ["policy", "id"])


def downgrade() -> None:
    op.drop_table("retraining_decisions")
    op.drop_table("alerts")
