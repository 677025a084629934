"""HTTP models of the operator's desk: alerts and the audit trail.

Beside ``schemas.py`` (which is past its size) and in its style: responses are plain models,
bodies forbid extra fields.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from domain.text import Actor, Reason
from starter.api.schemas import Body


class AlertOut(BaseModel):
    """An alert; open until an operator acknowledges it."""

    id: int
    kind: str
    message: str
    session_id: str | None
    account_id: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state(self) -> Literal["open", "acknowledged"]:
        return "open" if self.acknowledged_at is None else "acknowledged"


class AlertPage(BaseModel):
    """A page of alerts, newest first; ask for the next with ``before_id=next_before_id``."""

    alerts: list[AlertOut]
    next_before_id: int | None = Field(description="None on the last page.")


class AckBody(Body):
    """Acknowledge an alert: who (recorded after the key's identity) and why."""

    actor: Actor | None = Field(default=None, description="Your name, recorded with your key.")
    reason: Reason | None = Field(default=None, description="What was done about it.")


class AuditEventOut(BaseModel):
    """One audit event, as exported."""

    id: int
    occurred_at: datetime
    session_id: str
    action: str
    actor: str
    reason: str | None
    details: dict[str, Any]
    workflow_id: str | None
    run_id: str | None
