"""How a stored session becomes its workflow: the input, the Web UI's view of it, and the
rule that a repeated start must describe the same session."""

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from domain.session_messages import SessionSpec, SessionWorkflowInput
from starter.api.schemas import StartSessionBody
from starter.runtime.settings import Settings
from starter.services.errors import ConflictError
from store.models import TradingSession
from workflows import search_attributes
from workflows.session import TradingSessionWorkflow


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
            reducing_at=row.reducing_at,
            max_drawdown=row.max_drawdown,
            profit_target=row.profit_target,
        ),
        max_session_seconds=settings.max_session_hours * 3600,
    )


async def start_session_workflow(client: Client, row: TradingSession, settings: Settings) -> None:
    """Start the session's workflow: its id and queue, the Web UI's summary and filters, and
    the policies that make a repeated start return the running workflow, not a second one.

    Raises ``WorkflowAlreadyStartedError`` when the workflow ran and closed already.
    """
    thresholds = ", ".join(f"{t:.0%}" for t in row.warning_thresholds)
    await client.start_workflow(
        TradingSessionWorkflow.run,
        workflow_input(row, settings),
        id=row.workflow_id,
        task_queue=settings.temporal_task_queue,
        search_attributes=search_attributes.initial(row.account_id, row.algorithm_id, row.end_time),
        static_summary=(
            f"Session {row.id}: account {row.account_id}, "
            f"algorithm {row.algorithm_id}, loss limit {row.loss_limit.normalize():f}"
        ),
        static_details=(
            f"Starts {row.start_time.isoformat()}, expires {row.end_time.isoformat()}; "
            f"warnings at {thresholds} of time and of the loss limit."
        ),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


def check_same_session(row: TradingSession, request: StartSessionBody) -> None:
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
