"""Publishable keys: a kind for every token, and the limits and value of publishable keys.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot add a NOT NULL column in place otherwise on every version.
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False,
                                   server_default="bearer"))
        batch.add_column(sa.Column("limits", sa.Text, nullable=True))
        batch.add_column(sa.Column("public_key", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("public_key")
        batch.drop_column("limits")
        batch.drop_column("kind")
