"""Sessions, positions, fills, marks and the append-only audit trail.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(24, 8)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trading_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("algorithm_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_time", TS, nullable=False),
        sa.Column("end_time", TS, nullable=False),
        sa.Column("loss_limit", MONEY, nullable=False),
        sa.Column("warning_thresholds", JSONB, nullable=False),
        sa.Column("realized_pnl", MONEY, nullable=False, server_default="0"),
        sa.Column("end_reason", sa.String(20)),
        sa.Column("end_detail", sa.Text),
        sa.Column("ended_at", TS),
        sa.Column("idempotency_key", sa.String(128), unique=True),
        sa.Column("workflow_id", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("loss_limit > 0", name="ck_sessions_loss_limit_positive"),
        sa.CheckConstraint("end_time > start_time", name="ck_sessions_end_after_start"),
    )
    op.create_index("ix_trading_sessions_account_id", "trading_sessions", ["account_id"])
    op.create_index("ix_trading_sessions_status", "trading_sessions", ["status"])

    op.create_table(
        "positions",
        sa.Column(
            "session_id",
            sa.String(64),
            sa.ForeignKey("trading_sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("quantity", MONEY, nullable=False),
        sa.Column("average_price", MONEY, nullable=False),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "fills",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(64),
            sa.ForeignKey("trading_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("fill_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", MONEY, nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("fee", MONEY, nullable=False, server_default="0"),
        sa.Column("realized_pnl", MONEY, nullable=False),
        sa.Column("executed_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("session_id", "fill_id", name="uq_fills_session_fill"),
        sa.CheckConstraint("quantity > 0 AND price > 0 AND fee >= 0", name="ck_fills_positive"),
    )
    op.create_index("ix_fills_session_id", "fills", ["session_id"])

    op.create_table(
        "marks",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(64),
            sa.ForeignKey("trading_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("marked_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("price > 0", name="ck_marks_price_positive"),
    )
    op.create_index("ix_marks_latest", "marks", ["session_id", "symbol", "marked_at"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("workflow_id", sa.String(128)),
        sa.Column("run_id", sa.String(64)),
        sa.Column("dedupe_key", sa.String(200), unique=True),
        sa.Column("occurred_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_audit_events_session_id", "audit_events", ["session_id"])
    # The audit trail is evidence: the application may add to it, never rewrite it.
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only';
        END;
        $$ LANGUAGE plpgsql;
        """
    )
    op.execute(
        """
        CREATE TRIGGER audit_events_append_only
        BEFORE UPDATE OR DELETE ON audit_events
        FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
    op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    for table in ("audit_events", "marks", "fills", "positions", "trading_sessions"):
        op.drop_table(table)
