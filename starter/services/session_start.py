"""How a stored session becomes its workflow: the input, the Web UI's view of it, and the
rule that a repeated start must describe the same session."""

from typing import Any

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from domain.messages import SessionSpec, SessionWorkflowInput
from starter.api.schemas import StartSessionRequest
from starter.runtime.settings import Settings
from starter.services.errors import ConflictError
from store.models import TradingSession
from workflows import search_attributes


def workflow_input(row: TradingSession, settings: Settings) -> SessionWorkflowInput:
    return SessionWorkflowInput(
        spec=SessionSpec(
            session_id=row.id,
            account_id=row.account_id,
            algorithm_id=row.algorithm_id,
            start_time=row.start_time,
            end_time=row.end_time,
            loss_limit=row.loss_limit,
            warning_thresholds=row.warning_thresholds,
        ),
        max_session_seconds=settings.max_session_hours * 3600,
    )


def start_options(row: TradingSession, settings: Settings) -> dict[str, Any]:
    """Id, queue, the Web UI's summary and filters, and the policies that make a repeated
    start return the running workflow instead of a second one."""
    thresholds = ", ".join(f"{t:.0%}" for t in row.warning_thresholds)
    return {
        "id": row.workflow_id,
        "task_queue": settings.temporal_task_queue,
        "search_attributes": search_attributes.initial(
            row.account_id, row.algorithm_id, row.end_time
        ),
        "static_summary": (
            f"Session {row.id}: account {row.account_id}, "
            f"algorithm {row.algorithm_id}, loss limit {row.loss_limit.normalize():f}"
        ),
        "static_details": (
            f"Starts {row.start_time.isoformat()}, expires {row.end_time.isoformat()}; "
            f"warnings at {thresholds} of time and of the loss limit."
        ),
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
    }


def check_same_session(row: TradingSession, request: StartSessionRequest) -> None:
    """A repeated start must describe the same session; otherwise it is a conflict."""
    differs = [
        name
        for name, value in (
            ("session_id", request.session_id or row.id),
            ("account_id", request.account_id),
            ("algorithm_id", request.algorithm_id),
            ("end_time", request.end_time),
            ("loss_limit", request.loss_limit),
        )
        if getattr(row, "id" if name == "session_id" else name) != value
    ]
    if differs:
        raise ConflictError(
            f"session {row.id!r} already exists with a different {', '.join(differs)}",
            field=differs[0],
        )
