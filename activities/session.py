"""Activities that read and write a session's row: activate, check PnL, finish."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.notifications import announce_alert
from activities.refusals import refusal
from domain.limits import session_loss
from domain.risk import equity
from domain.session import is_open
from domain.session_messages import SYSTEM_ACTOR, ActivateInput, CheckInput, PnlSnapshot
from domain.status import IllegalTransitionError, SessionStatus
from domain.sweep import CheckSource, loss_state, loss_used_pct
from domain.termination_messages import FinishInput, FinishResult
from starter.runtime.metrics import Metrics
from store.alerts import AlertRepository
from store.audit import AuditRepository
from store.ledger import LedgerRepository
from store.sessions import SessionNotFoundError, SessionRepository

# A check that only succeeds this long after it was first scheduled means the database was
# out for that long: worth an alert for a person, not just a retry counter.
DATABASE_OUTAGE_ALERT_AFTER = timedelta(seconds=60)


class SessionActivities:
    """Built once per worker with its session factory; each method owns one transaction."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: Metrics | None = None,
        *,
        outage_alert_after: timedelta | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics or Metrics()
        self.outage_alert_after = outage_alert_after or DATABASE_OUTAGE_ALERT_AFTER

    @activity.defn
    async def activate_session(self, input: ActivateInput) -> None:
        """PENDING -> ACTIVE, with its audit event; a retry finds it done and does nothing."""
        async with self.sessionmaker.begin() as db:
            try:
                _, changed = await SessionRepository(db).transition(
                    input.session_id, SessionStatus.ACTIVE
                )
            except (SessionNotFoundError, IllegalTransitionError) as err:
                raise refusal(err) from err
            if changed:
                await AuditRepository(db).append(
                    session_id=input.session_id,
                    action="session.activated",
                    actor=SYSTEM_ACTOR,
                    workflow_id=input.workflow_id,
                    run_id=input.run_id,
                    dedupe_key=f"{input.session_id}:activated",
                )

    @activity.defn
    async def check_session(self, input: CheckInput) -> PnlSnapshot:
        """Read the session's PnL and record the check with the LossUsedPct the workflow will
        publish, so the sweep knows what the Web UI shows; the workflow judges the figures."""
        self.metrics.checks.labels(CheckSource.WORKFLOW.value).inc()
        info = activity.info()
        outage = datetime.now(UTC) - info.scheduled_time if info.attempt > 1 else timedelta(0)
        try:
            async with self.sessionmaker.begin() as db:
                figures = await LedgerRepository(db).pnl(input.session_id)
                loss = session_loss(figures.realized_pnl, figures.unrealized_pnl)
                peak = await SessionRepository(db).record_check(
                    input.session_id,
                    CheckSource.WORKFLOW,
                    published_loss_pct=loss_used_pct(loss, input.loss_limit),
                    trading_state=loss_state(loss, input.loss_limit, input.reducing_at),
                    equity=equity(figures.realized_pnl, figures.unrealized_pnl),
                )
        except SessionNotFoundError as err:
            raise refusal(err) from err
        except Exception as err:
            if outage > self.outage_alert_after:
                activity.logger.error(
                    "check of session %s failing for %.0f s (attempt %d): %s",
                    input.session_id,
                    outage.total_seconds(),
                    info.attempt,
                    type(err).__name__,
                )
            raise
        if outage > self.outage_alert_after:
            await self._raise_outage_alert(input.session_id, info.scheduled_time, outage)
        return PnlSnapshot(
            session_id=input.session_id,
            realized_pnl=figures.realized_pnl,
            unrealized_pnl=figures.unrealized_pnl,
            open_positions=figures.open_positions,
            peak_equity=peak if peak is not None else Decimal(0),
        )

    async def _raise_outage_alert(
        self, session_id: str, first_scheduled: datetime, outage: timedelta
    ) -> None:
        """One alert per session and outage: the outage is named by the check it held up."""
        message = (
            f"database unreachable for {outage.total_seconds():.0f} s: the check of session "
            f"{session_id} scheduled at {first_scheduled.isoformat()} succeeded only then"
        )
        key = f"{session_id}:database_outage:{first_scheduled.isoformat()}"
        async with self.sessionmaker.begin() as db:
            raised = await AlertRepository(db).raise_alert(
                kind="database_outage", message=message, session_id=session_id, dedupe_key=key
            )
        if raised:
            activity.logger.error(message)
            await announce_alert(self.sessionmaker, key)

    @activity.defn
    async def finish_session(self, input: FinishInput) -> FinishResult:
        """Write the terminal status and the audit event in one transaction, exactly once."""
        target = input.reason.final_status
        async with self.sessionmaker.begin() as db:
            sessions = SessionRepository(db)
            try:
                row = await sessions.get(input.session_id, for_update=True)
                if is_open(row.status):
                    await sessions.transition(input.session_id, SessionStatus.ENDING)
                row, changed = await sessions.transition(
                    input.session_id,
                    target,
                    end_reason=input.reason,
                    end_detail=input.detail,
                    ended_at=input.ended_at,
                )
            except (SessionNotFoundError, IllegalTransitionError) as err:
                raise refusal(err) from err
            if changed:
                self.metrics.terminations.labels(input.reason.value).inc()
                await AuditRepository(db).append(
                    session_id=input.session_id,
                    action="session.ended",
                    actor=input.actor,
                    reason=input.detail,
                    details={
                        "end_reason": input.reason.value,
                        "ended_at": input.ended_at.isoformat(),
                        "realized_pnl": str(row.realized_pnl),
                    },
                    workflow_id=input.workflow_id,
                    run_id=input.run_id,
                    dedupe_key=f"{input.session_id}:ended",
                )
            return FinishResult(status=row.status, realized_pnl=row.realized_pnl)
