"""Builders of test data with sensible defaults; override only what a test is about."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.session import workflow_id_for
from domain.session_messages import SessionSpec
from domain.status import SessionStatus


def new_session_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def session_values(
    *,
    start: datetime | None = None,
    duration: timedelta = timedelta(hours=1),
    loss_limit: Decimal = Decimal(1000),
    **overrides: Any,
) -> dict[str, Any]:
    """Column values for a PENDING trading_sessions row."""
    session_id = overrides.pop("id", None) or new_session_id()
    start = start or datetime.now(UTC)
    values: dict[str, Any] = {
        "id": session_id,
        "account_id": "acc-1",
        "algorithm_id": "algo-1",
        "status": SessionStatus.PENDING,
        "start_time": start,
        "end_time": start + duration,
        "loss_limit": loss_limit,
        "warning_thresholds": [0.8],
        "workflow_id": workflow_id_for(session_id),
    }
    values.update(overrides)
    return values


def spec_from(values: dict[str, Any]) -> SessionSpec:
    return SessionSpec(
        session_id=values["id"],
        account_id=values["account_id"],
        algorithm_id=values["algorithm_id"],
        start_time=values["start_time"],
        end_time=values["end_time"],
        loss_limit=values["loss_limit"],
        warning_thresholds=values["warning_thresholds"],
    )
