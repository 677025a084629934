"""Account risk: the daily loss limit per account and the broker's dead-man's switch.

- ``account_limits``: one row per account with an optional ``daily_loss_limit`` (the sum of
  the loss of the account's sessions of the UTC day), and the UTC day its 80 % warning was
  sent and its limit reached (each once a day).
- ``kill_switches.end_reason``: the end reason a switch's sessions record (NULL: TERMINATED);
  the account loss limit engages an account switch with ``ACCOUNT_LOSS_LIMIT``.
- ``broker_cancel_after``: the paper broker's dead-man's switch, one deadline per account
  (``Broker.cancel_all_after``); past it the broker cancels the account's open orders itself.
- ``orders.cancelled_by``: ``dead_man`` for an order the broker's own timer cancelled (NULL:
  open, or cancelled by the session's termination).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(24, 8)


def upgrade() -> None:
    op.create_table(
        "account_limits",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("daily_loss_limit", MONEY, nullable=True),
        sa.Column("warned_on", sa.Date, nullable=True),
        sa.Column("breached_on", sa.Date, nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "daily_loss_limit IS NULL OR daily_loss_limit > 0",
            name="ck_account_limits_daily_loss_limit",
        ),
    )
    op.add_column("kill_switches", sa.Column("end_reason", sa.String(20), nullable=True))
    op.create_table(
        "broker_cancel_after",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("armed_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("triggered_at", TS, nullable=True),
    )
    op.add_column("orders", sa.Column("cancelled_by", sa.String(20), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "cancelled_by")
    op.drop_table("broker_cancel_after")
    op.drop_column("kill_switches", "end_reason")
    op.drop_table("account_limits")
