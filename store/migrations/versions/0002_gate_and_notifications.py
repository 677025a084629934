"""Trading gate on sessions and the notification outbox.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "trading_sessions",
        sa.Column("gate_open", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    op.add_column("trading_sessions", sa.Column("gate_reason", sa.Text))
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("delivered_at", TS),
    )
    op.create_index("ix_notifications_session_id", "notifications", ["session_id"])
    op.create_index(
        "ix_notifications_undelivered",
        "notifications",
        ["id"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_column("trading_sessions", "gate_reason")
    op.drop_column("trading_sessions", "gate_open")
