"""The fleet sweep and market data per symbol.

- ``trading_sessions.shard_key``: a stable hash of the session id (the first 32 bits of its
  MD5), computed by the database itself, so every sweep shard selects its sessions with
  ``shard_key % shards = shard`` and the same id always lands in the same shard.
- ``last_checked_at`` / ``last_checked_by``: the last loss check of the session other than a
  sweep's (``fill``, ``mark``, ``workflow``); the sweeps' own times are in ``fleet_sweeps``.
- ``last_woken_at``: when a fill, a mark or a market batch last woke the session's workflow,
  so a fast feed wakes it at most once per short window (the limit always wakes it).
- ``published_loss_pct``: the LossUsedPct the workflow last published, so a sweep wakes a
  session only when the figure the Web UI filters on moved.
- ``loss_warnings_sent``: the loss thresholds already warned about, as the workflow recorded
  them, so a sweep never wakes a session for a warning it already sent.
- ``market_marks``: the latest price per symbol for the whole market (``POST /marks``).
- ``fleet_sweeps``: when each shard was last swept, and what it found.
- The ``market_data`` API-key role.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(24, 8)
# Keep in step with domain.sweep.shard_key: the first 32 bits of md5(id), unsigned.
SHARD_KEY_SQL = "(('x' || substr(md5(id), 1, 8))::bit(32)::bigint)"


def upgrade() -> None:
    op.add_column(
        "trading_sessions",
        sa.Column(
            "shard_key", sa.BigInteger, sa.Computed(SHARD_KEY_SQL, persisted=True), nullable=False
        ),
    )
    op.add_column("trading_sessions", sa.Column("last_checked_at", TS))
    op.add_column("trading_sessions", sa.Column("last_checked_by", sa.String(16)))
    op.add_column("trading_sessions", sa.Column("last_woken_at", TS))
    op.add_column(
        "trading_sessions",
        sa.Column("published_loss_pct", sa.Float, nullable=False, server_default="0"),
    )
    op.add_column(
        "trading_sessions",
        sa.Column("loss_warnings_sent", JSONB, nullable=False, server_default="[]"),
    )
    # The sweeps read the open sessions only; they are few beside the ended ones kept.
    op.create_index(
        "ix_trading_sessions_open",
        "trading_sessions",
        ["status"],
        postgresql_where=sa.text("status IN ('PENDING', 'ACTIVE', 'ENDING', 'CLEANUP_FAILED')"),
    )
    op.create_table(
        "market_marks",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("price", MONEY, nullable=False),
        sa.Column("marked_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "fleet_sweeps",
        sa.Column("shard_count", sa.Integer, primary_key=True),
        sa.Column("shard", sa.Integer, primary_key=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("swept_at", TS, nullable=False),
        sa.Column("sessions_checked", sa.Integer, nullable=False),
        sa.Column("signals_sent", sa.Integer, nullable=False),
    )
    op.drop_constraint("ck_api_keys_role", "api_keys", type_="check")
    op.create_check_constraint(
        "ck_api_keys_role",
        "api_keys",
        "role IN ('trader', 'service', 'operator', 'admin', 'market_data')",
    )


def downgrade() -> None:
    op.drop_constraint("ck_api_keys_role", "api_keys", type_="check")
    op.execute("DELETE FROM api_keys WHERE role = 'market_data'")
    op.create_check_constraint(
        "ck_api_keys_role", "api_keys", "role IN ('trader', 'service', 'operator', 'admin')"
    )
    op.drop_table("fleet_sweeps")
    op.drop_table("market_marks")
    op.drop_index("ix_trading_sessions_open", "trading_sessions")
    for column in ("loss_warnings_sent", "published_loss_pct", "last_checked_by"):
        op.drop_column("trading_sessions", column)
    op.drop_column("trading_sessions", "last_woken_at")
    op.drop_column("trading_sessions", "last_checked_at")
    op.drop_column("trading_sessions", "shard_key")
