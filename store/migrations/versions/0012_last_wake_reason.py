"""Why a session's workflow was last woken, so a reached limit is signalled once, not on every
mark batch and sweep until the workflow has wound the session down.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("trading_sessions", sa.Column("last_wake_reason", sa.String(16)))


def downgrade() -> None:
    op.drop_column("trading_sessions", "last_wake_reason")
