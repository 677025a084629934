"""Risk controls: the kill switch, a session's trading state and its per-session limits.

- ``kill_switches``: one row per engagement of the emergency kill switch (a scope: an
  account, an algorithm or all); at most one engaged (not re-armed) per scope.
- ``kill_switch_sessions``: the sessions a kill switch closed, and whether their workflow was
  told to terminate: its progress.
- ``trading_sessions``: ``reducing_at`` (share of the loss limit where REDUCING starts),
  ``max_drawdown``, ``profit_target``, ``order_limits`` (the pre-trade checks),
  ``peak_equity`` (the running peak the drawdown is measured from) and ``trading_state`` (the
  state the workflow last published: what the wake rules compare with),
  ``drawdown_warnings_sent`` (as ``loss_warnings_sent``, for the drawdown's warnings).
- The ``risk`` API-key role.

Revision ID: 0009
Revises: 0008 (0008 is added in parallel; the two are chained at merge)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(24, 8)
ROLES = "'trader', 'service', 'operator', 'admin', 'market_data'"


def upgrade() -> None:
    op.add_column("trading_sessions", sa.Column("reducing_at", sa.Float, nullable=True))
    op.add_column("trading_sessions", sa.Column("max_drawdown", MONEY, nullable=True))
    op.add_column("trading_sessions", sa.Column("profit_target", MONEY, nullable=True))
    op.add_column(
        "trading_sessions",
        sa.Column("order_limits", JSONB, nullable=False, server_default="{}"),
    )
    op.add_column(
        "trading_sessions",
        sa.Column("peak_equity", MONEY, nullable=False, server_default="0"),
    )
    op.add_column(
        "trading_sessions",
        sa.Column("trading_state", sa.String(10), nullable=False, server_default="ACTIVE"),
    )
    op.add_column(
        "trading_sessions",
        sa.Column("drawdown_warnings_sent", JSONB, nullable=False, server_default="[]"),
    )
    op.create_table(
        "kill_switches",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("scope_kind", sa.String(10), nullable=False),
        sa.Column("scope_value", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("engaged_by", sa.String(200), nullable=False),
        sa.Column("engaged_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("sessions_targeted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rearmed_at", TS, nullable=True),
        sa.Column("rearmed_by", sa.String(200), nullable=True),
        sa.Column("rearm_reason", sa.Text, nullable=True),
        sa.CheckConstraint(
            "scope_kind IN ('account', 'algorithm', 'all')", name="ck_kill_switches_scope"
        ),
        sa.CheckConstraint(
            "(scope_kind = 'all') = (scope_value IS NULL)", name="ck_kill_switches_scope_value"
        ),
    )
    # One engaged switch per scope: a second press finds the first.
    op.create_index(
        "uq_kill_switches_engaged",
        "kill_switches",
        ["scope_kind", sa.text("coalesce(scope_value, '')")],
        unique=True,
        postgresql_where=sa.text("rearmed_at IS NULL"),
    )
    op.create_table(
        "kill_switch_sessions",
        sa.Column(
            "kill_switch_id",
            sa.BigInteger,
            sa.ForeignKey("kill_switches.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("signalled_at", TS, nullable=True),
        sa.Column("signal_error", sa.Text, nullable=True),
    )
    op.drop_constraint("ck_api_keys_role", "api_keys", type_="check")
    op.create_check_constraint("ck_api_keys_role", "api_keys", f"role IN ({ROLES}, 'risk')")


def downgrade() -> None:
    op.drop_constraint("ck_api_keys_role", "api_keys", type_="check")
    op.execute("DELETE FROM api_keys WHERE role = 'risk'")
    op.create_check_constraint("ck_api_keys_role", "api_keys", f"role IN ({ROLES})")
    op.drop_table("kill_switch_sessions")
    op.drop_index("uq_kill_switches_engaged", "kill_switches")
    op.drop_table("kill_switches")
    for column in (
        "drawdown_warnings_sent",
        "trading_state",
        "peak_equity",
        "order_limits",
        "profit_target",
        "max_drawdown",
        "reducing_at",
    ):
        op.drop_column("trading_sessions", column)
