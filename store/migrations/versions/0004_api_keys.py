"""API keys: who may call the API, in which role; only a hash of each secret is kept.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        # The public part of the key, shown in lists and recorded as the actor.
        sa.Column("key_id", sa.String(32), nullable=False, unique=True),
        # SHA-256 (hex) of the whole key; the key itself is never stored.
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(64)),
        sa.Column("description", sa.String(200)),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", TS),
        sa.CheckConstraint(
            "role IN ('trader', 'service', 'operator', 'admin')", name="ck_api_keys_role"
        ),
        sa.CheckConstraint(
            "(role = 'trader') = (account_id IS NOT NULL)", name="ck_api_keys_trader_account"
        ),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
