"""Orders, portfolios, performance snapshots, termination steps, algorithms, webhooks, alerts.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(24, 8)
TS = sa.DateTime(timezone=True)


def _now() -> sa.Column[object]:
    return sa.Column("created_at", TS, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(64),
            sa.ForeignKey("trading_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", MONEY, nullable=False),
        sa.Column("limit_price", MONEY),
        sa.Column("status", sa.String(12), nullable=False),
        _now(),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("session_id", "order_id", name="uq_orders_session_order"),
        sa.CheckConstraint("quantity > 0", name="ck_orders_quantity_positive"),
    )
    op.create_index("ix_orders_session_id", "orders", ["session_id"])

    op.create_table(
        "portfolios",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("cash", MONEY, nullable=False, server_default="0"),
        sa.Column("realized_pnl", MONEY, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "portfolio_settlements",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("realized_pnl", MONEY, nullable=False),
        sa.Column("settled_at", TS, nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "performance_snapshots",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("realized_pnl", MONEY, nullable=False),
        sa.Column("unrealized_pnl", MONEY, nullable=False),
        sa.Column("fills", sa.Integer, nullable=False),
        sa.Column("round_trips", sa.Integer, nullable=False),
        sa.Column("win_rate", sa.Float),
        sa.Column("peak_pnl", MONEY, nullable=False),
        sa.Column("max_drawdown", MONEY, nullable=False),
        sa.Column("duration_seconds", sa.Float, nullable=False),
        sa.Column("loss_used_pct", sa.Float, nullable=False),
        sa.Column("time_used_pct", sa.Float, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
    )
    op.create_index(
        "ix_performance_snapshots_session_id", "performance_snapshots", ["session_id", "taken_at"]
    )

    op.create_table(
        "termination_steps",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("step", sa.String(32), primary_key=True),
        sa.Column("result", JSONB, nullable=False, server_default="{}"),
        sa.Column("completed_at", TS, nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "algorithms",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("halt_webhook_url", sa.Text),
        _now(),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("account_id", sa.String(64)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        _now(),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("notification_id", sa.BigInteger, primary_key=True),
        sa.Column("subscription_id", sa.BigInteger, primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("delivered_at", TS),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64)),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("dedupe_key", sa.String(200), unique=True),
        _now(),
        sa.Column("resolved_at", TS),
    )
    op.create_index("ix_alerts_session_id", "alerts", ["session_id"])


def downgrade() -> None:
    for table in (
        "alerts",
        "webhook_deliveries",
        "webhook_subscriptions",
        "algorithms",
        "termination_steps",
        "performance_snapshots",
        "portfolio_settlements",
        "portfolios",
        "orders",
    ):
        op.drop_table(table)
