"""Alerts: what an operator must look at, and how it reaches them.

An alert is raised once (a dedupe key) by whatever saw the problem, in the transaction that
records it, together with a notification for the operator channel: webhook subscriptions of
scope ``operators`` and the operators' SSE stream. Traders never receive alerts.
"""

from enum import StrEnum

# The notification kind of an alert is this prefix and the alert's kind: ``alert.cleanup_failed``.
ALERT_NOTIFICATION_PREFIX = "alert."
# Acknowledgements of alerts about no session are audited under this id (ids start
# alphanumeric, so no session can have it).
FLEET_AUDIT_ID = "_fleet"


class Audience(StrEnum):
    """Who a notification is for."""

    ACCOUNT = "account"  # the account's traders (webhook subscriptions of scope account)
    OPERATORS = "operators"  # operators only: alerts


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


# Kinds raised today; the reconciler's are ``reconcile_<repair>``. New kinds need no change here.
KNOWN_KINDS = (
    "cleanup_failed",
    "database_outage",
    "handler_failed",
    "webhook_delivery_failed",
    "halt_webhook_failed",
    "reconcile_started",
    "reconcile_start_failed",
    "reconcile_orphaned",
    "reconcile_overdue",
)


def alert_notification_kind(kind: str) -> str:
    """``alert.<kind>``: the event name operators' streams and webhooks see."""
    return f"{ALERT_NOTIFICATION_PREFIX}{kind}"


def alert_notification_key(alert_id: int) -> str:
    """The outbox dedupe key of an alert's notification: one per alert."""
    return f"alert:{alert_id}"
