"""Late fills: a fill recorded after the session's trading ended is kept, and marked so.

A broker can report an execution of an order placed before the halt while the session is
winding down or after it ended. Such a fill is recorded with ``late`` set and the order it
executes (``order_id``), so the ledger matches the broker and the reconciler can find the
sessions it left open (the partial indexes keep that lookup to the few rows that matter).
The halt webhook is signed like every other webhook: each algorithm gets its own secret.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "fills", sa.Column("late", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("fills", sa.Column("order_id", sa.String(128), nullable=True))
    op.create_index(
        "ix_fills_late_session", "fills", ["session_id"], postgresql_where=sa.text("late")
    )
    op.create_index(
        "ix_positions_open",
        "positions",
        ["session_id"],
        postgresql_where=sa.text("quantity <> 0"),
    )
    op.add_column("algorithms", sa.Column("halt_webhook_secret", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("algorithms", "halt_webhook_secret")
    op.drop_index("ix_positions_open", table_name="positions")
    op.drop_index("ix_fills_late_session", table_name="fills")
    op.drop_column("fills", "order_id")
    op.drop_column("fills", "late")
