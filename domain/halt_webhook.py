"""The halt webhook as a delivery of its own: what it carries and how long it is retried.

The halt is the gate closing in the database and ``pg_notify('algorithm_halt', ...)``, both
in the transaction that moves the session to ENDING. The algorithm's halt webhook, when it
has one, is one more way of telling it: a delivery that retries on its own and raises an
operator alert when it gives up, so a dead endpoint never holds up cancel and flatten.
"""

from datetime import timedelta

from pydantic import BaseModel, Field

HALT_EVENT = "algorithm.halt"
# Like a notification's webhook: quick at first, then spaced out, up to 5 minutes apart.
HALT_WEBHOOK_MAX_INTERVAL = timedelta(minutes=5)
HALT_WEBHOOK_BACKOFF = 2.0


def halt_webhook_workflow_id(session_id: str) -> str:
    """One halt delivery per session: a retried halt step finds it and leaves it be."""
    return f"halt-webhook-{session_id}"


def halt_delivery_id(session_id: str) -> str:
    """The ``X-Trading-Delivery`` of a session's halt: the same on every attempt."""
    return f"halt-{session_id}"


class HaltDeliveryInput(BaseModel):
    """What the algorithm is told (the session, why) and the delivery's retry budget."""

    session_id: str
    algorithm_id: str
    reason: str
    detail: str | None = None
    max_attempts: int = Field(default=12, ge=1)
    first_retry_seconds: float = Field(default=1.0, gt=0)

    def body(self) -> dict[str, str | None]:
        """The JSON the algorithm receives, as the NOTIFY payload says it."""
        return {
            "session_id": self.session_id,
            "algorithm_id": self.algorithm_id,
            "reason": self.reason,
            "detail": self.detail,
        }


class HaltDeliveryFailedInput(BaseModel):
    delivery: HaltDeliveryInput
    error: str
