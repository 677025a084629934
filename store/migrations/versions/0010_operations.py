"""Operations: alerts an operator acknowledges, an operator channel, the auditor role.

- ``alerts`` gain ``account_id`` (filtering, and what a notification about it names),
  ``acknowledged_at`` and ``acknowledged_by``; open alerts (not acknowledged) have a small
  partial index, as ``GET /alerts?state=open`` and the open-alerts gauge read them.
- ``notifications`` gain ``audience``: ``account`` (the account's traders, as before) or
  ``operators`` (alerts). An operator notification may name no session and no account.
- ``webhook_subscriptions`` gain ``scope``: ``account`` (as before: one account or all) or
  ``operators`` (every alert, nothing else).
- ``audit_events`` get an index on ``occurred_at`` for exports by time window.
- ``job_counts``: how many background jobs ended how, and how many loss checks were made, per
  hour, added up from the workers' counters (``/jobs/stats`` reads the success ratio and the
  checks per hour from it; Prometheus counters die with their process).
- The ``auditor`` API-key role: reads the audit trail and nothing else.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
# The roles as 0009 left them (its risk role included).
ROLES = "'trader', 'service', 'operator', 'admin', 'market_data', 'risk'"


def upgrade() -> None:
    op.add_column("alerts", sa.Column("account_id", sa.String(64)))
    op.add_column("alerts", sa.Column("acknowledged_at", TS))
    op.add_column("alerts", sa.Column("acknowledged_by", sa.String(200)))
    op.create_index(
        "ix_alerts_open", "alerts", ["kind"], postgresql_where=sa.text("acknowledged_at IS NULL")
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])

    op.add_column(
        "notifications",
        sa.Column("audience", sa.String(16), nullable=False, server_default="account"),
    )
    op.create_check_constraint(
        "ck_notifications_audience", "notifications", "audience IN ('account', 'operators')"
    )
    op.alter_column("notifications", "session_id", existing_type=sa.String(64), nullable=True)
    op.alter_column("notifications", "account_id", existing_type=sa.String(64), nullable=True)
    op.create_check_constraint(
        "ck_notifications_account_audience",
        "notifications",
        "audience = 'operators' OR (session_id IS NOT NULL AND account_id IS NOT NULL)",
    )

    op.add_column(
        "webhook_subscriptions",
        sa.Column("scope", sa.String(16), nullable=False, server_default="account"),
    )
    op.create_check_constraint(
        "ck_webhook_subscriptions_scope",
        "webhook_subscriptions",
        "scope IN ('account', 'operators') AND (scope = 'account' OR account_id IS NULL)",
    )

    op.create_table(
        "job_counts",
        sa.Column("hour", TS, primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("outcome", sa.String(32), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )

    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at", "id"])

    op.drop_constraint("ck_api_keys_role", "api_keys", type_="check")
    op.create_check_constraint("ck_api_keys_role", "api_keys", f"role IN ({ROLES}, 'auditor')")


def downgrade() -> None:
    op.drop_constraint("ck_api_keys_role", "api_keys", type_="check")
    op.execute("DELETE FROM api_keys WHERE role = 'auditor'")
    op.create_check_constraint("ck_api_keys_role", "api_keys", f"role IN ({ROLES})")
    op.drop_index("ix_audit_events_occurred_at", "audit_events")
    op.drop_table("job_counts")
    op.drop_constraint("ck_webhook_subscriptions_scope", "webhook_subscriptions", type_="check")
    op.drop_column("webhook_subscriptions", "scope")
    op.execute("DELETE FROM notifications WHERE audience = 'operators'")
    op.drop_constraint("ck_notifications_account_audience", "notifications", type_="check")
    op.alter_column("notifications", "account_id", existing_type=sa.String(64), nullable=False)
    op.alter_column("notifications", "session_id", existing_type=sa.String(64), nullable=False)
    op.drop_constraint("ck_notifications_audience", "notifications", type_="check")
    op.drop_column("notifications", "audience")
    op.drop_index("ix_alerts_created_at", "alerts")
    op.drop_index("ix_alerts_open", "alerts")
    op.drop_column("alerts", "acknowledged_by")
    op.drop_column("alerts", "acknowledged_at")
    op.drop_column("alerts", "account_id")
