"""Initial tables: schemas, tokens, bad_row_recoveries.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "schemas",
        sa.Column("vendor", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("format", sa.String(64), nullable=False),
        sa.Column("major", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("minor", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("patch", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        _timestamp("registered_at"),
        sa.PrimaryKeyConstraint(
            "vendor", "name", "format", "major", "minor", "patch", name="pk_schemas"
        ),
    )
    op.create_table(
        "tokens",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_tokens"),
        sa.UniqueConstraint("sha256", name="uq_tokens_sha256"),
    )
    op.create_table(
        "bad_row_recoveries",
        sa.Column("bad_row_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        _timestamp("recovered_at"),
        sa.PrimaryKeyConstraint("bad_row_id", name="pk_bad_row_recoveries"),
    )


def downgrade() -> None:
    op.drop_table("bad_row_recoveries")
    op.drop_table("tokens")
    op.drop_table("schemas")
