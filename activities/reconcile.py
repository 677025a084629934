"""The reconciler: session rows and their workflows never drift apart unseen.

Part of the fleet sweep, every minute per shard. An open row whose workflow is missing or
closed (terminated from the Web UI or the CLI, failed) has its gate closed at once and its
termination run by a new run of the session's own workflow, through the same idempotent
steps; a PENDING row whose workflow was never started is started (or ended START_FAILED);
a session still open well past its deadline is made to end; an ended session a late fill
left holding a position (or not yet announced) gets its follow-up (``workflows/late_fills.py``).
Every repair writes an audit event by ``reconciler`` and a metric, and every repair of a
session's life (not a late fill's follow-up, which the broker's own report explains) an
operator alert.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.notifications import announce_alert
from domain.late_fills import late_fill_workflow_id
from domain.session_messages import CheckNowInput, SessionState, SessionWorkflowInput
from domain.status import EndReason, SessionStatus
from domain.sweep import OVERDUE_GRACE, RepairKind
from starter.runtime.metrics import Metrics
from store.alerts import AlertRepository
from store.audit import AuditRepository
from store.fleet import FleetRepository
from store.late_fills import LateFillRepository
from store.ledger import LedgerRepository
from store.models import TradingSession
from store.reconcile import ReconcileRepository
from store.sessions import spec_of
from workflows import search_attributes
from workflows.late_fills import start_late_fill_follow_up

RECONCILER = "reconciler"
SESSION_WORKFLOW_TYPE = "TradingSession"


class _Workflow(StrEnum):
    RUNNING = "running"
    CLOSED = "closed"
    MISSING = "missing"


class Reconciler:
    """Built once per worker; signals and starts workflows through the activity's client."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: Metrics,
        *,
        max_session_seconds: float,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics
        self.max_session_seconds = max_session_seconds

    async def reconcile(self, shard: int, shards: int, min_age: timedelta) -> dict[str, int]:
        """Compare the shard's open rows at least ``min_age`` old with their workflows, and
        mend what drifted."""
        now = datetime.now(UTC)
        async with self.sessionmaker() as db:
            rows = await ReconcileRepository(db).open_sessions(shard, shards, now - min_age)
            late = await LateFillRepository(db).sessions_to_follow_up(shard, shards)
        repairs: Counter[str] = Counter()
        if late:
            repairs[RepairKind.LATE_FILLS.value] = await self._follow_up_late_fills(late)
        if not rows:
            return dict(repairs)
        client = activity.client()
        task_queue = activity.info().task_queue
        running = await _running_sessions(client, task_queue)
        for row in rows:
            overdue = row.status in (SessionStatus.PENDING, SessionStatus.ACTIVE) and (
                now > row.end_time + OVERDUE_GRACE
            )
            if row.workflow_id in running and not overdue:
                continue
            found = await _workflow_of(client, row.workflow_id)  # visibility may lag: ask
            if found is _Workflow.RUNNING and not overdue:
                continue
            kind = await self._repair(client, task_queue, row, found, overdue, now)
            if kind is not None:
                repairs[kind.value] += 1
                self.metrics.reconcile_repairs.labels(kind.value).inc()
        return dict(repairs)

    async def _follow_up_late_fills(self, session_ids: Sequence[str]) -> int:
        """Ended sessions a late fill left open or unannounced: start each one's follow-up
        (a running one is left be), on the record."""
        client = activity.client()
        task_queue = activity.info().task_queue
        for session_id in session_ids:
            await start_late_fill_follow_up(client, session_id, task_queue)
            async with self.sessionmaker.begin() as db:
                fills = await LedgerRepository(db).fill_count(session_id)
                await AuditRepository(db).append(
                    session_id=session_id,
                    action=f"session.reconciled.{RepairKind.LATE_FILLS.value}",
                    actor=RECONCILER,
                    reason="a late fill after its end: flatten again, settle, announce",
                    workflow_id=late_fill_workflow_id(session_id),
                    # Once per state of its ledger: a new late fill makes a new repair.
                    dedupe_key=f"{session_id}:reconcile:late_fills:{fills}",
                )
            self.metrics.reconcile_repairs.labels(RepairKind.LATE_FILLS.value).inc()
            activity.logger.warning("reconciler: late fill follow-up of session %s", session_id)
        return len(session_ids)

    async def _repair(
        self,
        client: Client,
        task_queue: str,
        row: TradingSession,
        found: _Workflow,
        overdue: bool,
        now: datetime,
    ) -> RepairKind | None:
        if found is _Workflow.RUNNING:
            # Alive but past its deadline: stop its trading now and wake it to expire.
            await self._record(row, RepairKind.OVERDUE, "open past its deadline", close=True)
            await client.get_workflow_handle(row.workflow_id).signal(
                "check_now", CheckNowInput(source=RECONCILER, reason="overdue")
            )
            return RepairKind.OVERDUE
        if found is _Workflow.MISSING and row.status == SessionStatus.PENDING:
            return await self._start(client, task_queue, row, now)
        reason = EndReason.EXPIRED if now >= row.end_time else EndReason.ORPHANED
        detail = (
            "deadline passed while its workflow was gone"
            if reason is EndReason.EXPIRED
            else f"its workflow is {found.value}: ended by the reconciler"
        )
        await self._record(row, RepairKind.ORPHANED, detail, close=True)
        state = SessionState(
            status=SessionStatus.ENDING,
            end_time=row.end_time,
            loss_limit=row.loss_limit,
            loss_warnings_sent=list(row.loss_warnings_sent),
            end_reason=reason,
            end_detail=detail,
            ended_by=RECONCILER,
            ended_at=now,
        )
        # A new run of the session's own workflow winds it down: the same idempotent steps,
        # and the session's history in the Web UI tells what happened.
        await self._start_run(
            client,
            task_queue,
            row,
            state,
            summary=f"Session {row.id}: wound down by the reconciler ({reason.value})",
        )
        return RepairKind.ORPHANED

    async def _start(
        self, client: Client, task_queue: str, row: TradingSession, now: datetime
    ) -> RepairKind:
        """A PENDING row whose workflow was never started: start it as the API would."""
        try:
            await self._start_run(client, task_queue, row, None)
        except RPCError as err:
            detail = f"its workflow could not be started: {err.message}"
            async with self.sessionmaker.begin() as db:
                await ReconcileRepository(db).end_unstarted(row.id, detail, now)
            await self._record(row, RepairKind.START_FAILED, detail, close=False)
            return RepairKind.START_FAILED
        await self._record(row, RepairKind.STARTED, "its workflow had never started", close=False)
        return RepairKind.STARTED

    async def _start_run(
        self,
        client: Client,
        task_queue: str,
        row: TradingSession,
        state: SessionState | None,
        *,
        summary: str | None = None,
    ) -> None:
        """Start a run of the session's workflow: a wind-down run (``state`` says how it
        ended) may follow a closed one; a first run never repeats one that ran."""
        await client.start_workflow(
            SESSION_WORKFLOW_TYPE,
            SessionWorkflowInput(
                spec=spec_of(row), max_session_seconds=self.max_session_seconds, state=state
            ),
            id=row.workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE
            if state is not None
            else WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=search_attributes.initial(
                row.account_id, row.algorithm_id, row.end_time
            ),
            static_summary=summary,
        )

    async def _record(
        self, row: TradingSession, kind: RepairKind, detail: str, close: bool
    ) -> None:
        """Gate closed (when asked), audit event and operator alert, in one transaction."""
        key = f"{row.id}:reconcile:{kind.value}"
        async with self.sessionmaker.begin() as db:
            if close:
                await FleetRepository(db).close_gates(
                    [row.id], f"reconciler: {detail}", cause=f"reconcile:{kind.value}"
                )
            await AuditRepository(db).append(
                session_id=row.id,
                action=f"session.reconciled.{kind.value}",
                actor=RECONCILER,
                reason=detail,
                workflow_id=row.workflow_id,
                dedupe_key=key,
            )
            await AlertRepository(db).raise_alert(
                kind=f"reconcile_{kind.value}",
                message=f"session {row.id} ({row.status}): {detail}",
                session_id=row.id,
                dedupe_key=key,
            )
        await announce_alert(self.sessionmaker, key)
        activity.logger.warning("reconciled session %s: %s (%s)", row.id, kind.value, detail)


async def _running_sessions(client: Client, task_queue: str) -> set[str]:
    """The ids of the session workflows running on the task queue, from visibility; empty
    where the server has no list (the time-skipping test server): then each row is asked."""
    query = (
        f"WorkflowType = '{SESSION_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' "
        f"AND TaskQueue = '{task_queue}'"
    )
    try:
        return {execution.id async for execution in client.list_workflows(query)}
    except RPCError as err:
        if err.status is RPCStatusCode.UNIMPLEMENTED:
            return set()
        raise


async def _workflow_of(client: Client, workflow_id: str) -> _Workflow:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return _Workflow.MISSING
        raise
    if described.status is WorkflowExecutionStatus.RUNNING:
        return _Workflow.RUNNING
    return _Workflow.CLOSED
