"""Failure analysis for operators: what failed lately, and how the workflows are doing.

Both read Temporal visibility, scoped to this deployment's task queue, and PostgreSQL.
"""

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import WorkflowExecution as ExecutionRef
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from domain.session import workflow_id_for
from starter.api.schemas import FailedSession, FailedWorkflow, Failures, JobOutcomes, JobStats
from starter.runtime.job_counts import CHECKS_KIND
from starter.runtime.metrics import JOB_KINDS, JOB_OUTCOMES, SLO_TARGET
from starter.runtime.settings import Settings
from starter.services.errors import UnavailableError
from store.failures import cleanup_failed_sessions
from store.job_counts import JobCountRepository

# Histories fetched at once for last errors: enough to be quick, few enough to spare the server.
HISTORY_FETCHES = 8
_SESSION_PREFIX = workflow_id_for("")


class JobService:
    """What Temporal and the store say about the deployment's failed and running work."""

    def __init__(
        self, client: Client, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        self.client = client
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def failures(self, hours: float, limit: int) -> Failures:
        """Workflows that failed or timed out in the window, and sessions in CLEANUP_FAILED."""
        since = datetime.now(UTC) - timedelta(hours=hours)
        queue = self.settings.temporal_task_queue
        query = (
            f"TaskQueue = {_quote(queue)} AND ExecutionStatus IN ('Failed', 'TimedOut') "
            f"AND CloseTime >= {_quote(_timestamp(since))}"
        )
        try:
            executions = [e async for e in self.client.list_workflows(query, limit=limit)]
            executions.sort(key=lambda e: e.close_time or e.start_time, reverse=True)
            gate = asyncio.Semaphore(HISTORY_FETCHES)
            workflows = list(
                await asyncio.gather(*(_describe(self.client, e, gate) for e in executions))
            )
        except RPCError as err:
            raise UnavailableError(f"Temporal visibility did not answer: {err.message}") from err
        async with self.sessionmaker() as db:
            stuck = await cleanup_failed_sessions(db, limit)
        return Failures(
            since=since,
            task_queue=queue,
            workflows=workflows,
            sessions=[FailedSession.model_validate(s, from_attributes=True) for s in stuck],
        )

    async def stats(self, hours: float) -> JobStats:
        """Counts by execution status of the workflows that closed in the window."""
        until = datetime.now(UTC)
        since = until - timedelta(hours=hours)
        on_queue = f"TaskQueue = {_quote(self.settings.temporal_task_queue)}"
        after = _quote(_timestamp(since))
        try:
            closed, started, running = await asyncio.gather(
                self.client.count_workflows(
                    f"{on_queue} AND CloseTime >= {after} GROUP BY ExecutionStatus"
                ),
                self.client.count_workflows(f"{on_queue} AND StartTime >= {after}"),
                self.client.count_workflows(f"{on_queue} AND ExecutionStatus = 'Running'"),
            )
        except RPCError as err:
            raise UnavailableError(f"Temporal visibility did not answer: {err.message}") from err
        by_status = {str(group.group_values[0]): group.count for group in closed.groups}
        async with self.sessionmaker() as db:
            totals = await JobCountRepository(db).totals(since)
        jobs = {kind: JobOutcomes() for kind in JOB_KINDS}
        checks: dict[str, int] = {}
        for (kind, outcome), count in totals.items():
            if kind == CHECKS_KIND:
                checks[outcome] = count
            elif outcome in JOB_OUTCOMES:
                counts = jobs.setdefault(kind, JobOutcomes())
                setattr(counts, outcome, getattr(counts, outcome) + count)
        ratio = success_ratio(jobs.values())
        return JobStats(
            since=since,
            until=until,
            task_queue=self.settings.temporal_task_queue,
            started=started.count,
            running=running.count,
            closed=by_status,
            jobs=jobs,
            success_ratio=ratio,
            slo_target=SLO_TARGET,
            slo_met=None if ratio is None else ratio >= SLO_TARGET,
            checks=checks,
            checks_per_hour=round(sum(checks.values()) / hours, 3),
        )


async def _describe(
    client: Client, execution: WorkflowExecution, gate: asyncio.Semaphore
) -> FailedWorkflow:
    async with gate:
        error, error_type = await _last_error(client, execution)
    session_id = None
    if execution.workflow_type == "TradingSession" and execution.id.startswith(_SESSION_PREFIX):
        session_id = execution.id.removeprefix(_SESSION_PREFIX)
    return FailedWorkflow(
        workflow_id=execution.id,
        run_id=execution.run_id,
        workflow_type=execution.workflow_type,
        status=execution.status.name if execution.status else "UNKNOWN",
        start_time=execution.start_time,
        close_time=execution.close_time,
        session_id=session_id,
        last_error=error,
        error_type=error_type,
    )


async def _last_error(
    client: Client, execution: WorkflowExecution
) -> tuple[str | None, str | None]:
    """The failure recorded by the execution's closing event: message chain and error type."""
    response = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=ExecutionRef(workflow_id=execution.id, run_id=execution.run_id),
            maximum_page_size=1,
        )
    )
    if not response.history.events:
        return None, None
    event = response.history.events[0]
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        return _failure_chain(event.workflow_execution_failed_event_attributes.failure)
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        return "workflow execution timed out", "TimedOut"
    return None, None


def _failure_chain(failure: Failure) -> tuple[str, str | None]:
    """``"Activity task failed: session 'x' not found"`` and the innermost application type."""
    messages, error_type = [], None
    current: Failure | None = failure
    while current is not None:
        if current.message:
            messages.append(current.message)
        if current.HasField("application_failure_info") and current.application_failure_info.type:
            error_type = current.application_failure_info.type
        current = current.cause if current.HasField("cause") else None
    return ": ".join(messages), error_type


def success_ratio(jobs: Iterable[JobOutcomes]) -> float | None:
    """Jobs that succeeded among those that ended (retried attempts are not endings)."""
    done = [(j.success, j.failure) for j in jobs]
    ended = sum(s + f for s, f in done)
    return None if ended == 0 else sum(s for s, _ in done) / ended


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _quote(value: str) -> str:
    """A visibility-query string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
