"""Average prices keep 20 decimal places, so a round trip realizes exact money.

An average like 100.666... cut to 8 places makes every close realize a few 1e-8 too much or
too little (-1900.11000002 where -1900.11 is right). ``domain.positions`` quantizes the average
to this scale, so what it computes is exactly what is stored and read back.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 16 integer digits, as every price column (NUMERIC(24, 8)); an average never exceeds them.
    op.alter_column(
        "positions",
        "average_price",
        type_=sa.Numeric(36, 20),
        existing_type=sa.Numeric(24, 8),
        existing_nullable=False,
    )


def downgrade() -> None:
    op.alter_column(
        "positions",
        "average_price",
        type_=sa.Numeric(24, 8),
        existing_type=sa.Numeric(36, 20),
        existing_nullable=False,
    )
