"""The termination steps that touch the outside world: halt, cancel, flatten, settle, notify.

Each step is recorded in ``termination_steps`` when done; a retry (activities run at least
once) reads the record and returns without repeating the effect.
"""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.algorithm import AlgorithmControl, DatabaseAlgorithmControl, Halt
from activities.broker import Broker
from activities.refusals import locked_session
from domain.halt_webhook import HaltDeliveryInput, halt_webhook_workflow_id
from domain.session import is_open
from domain.session_messages import NotificationRef
from domain.status import EndReason, SessionStatus
from domain.termination import TerminationStep
from domain.termination_messages import CleanupFailedInput, CleanupRetryInput, StepInput, StepResult
from starter.runtime.metrics import Metrics
from store.alerts import AlertRepository
from store.audit import AuditRepository
from store.notifications import NotificationRepository
from store.sessions import SessionRepository
from store.termination import PortfolioRepository, TerminationStepRepository

HALT_WEBHOOK_WORKFLOW = "HaltWebhookDelivery"


@dataclass(frozen=True)
class HaltWebhookPolicy:
    """How long a halt webhook's delivery retries before it alerts (settings)."""

    max_attempts: int = 12
    first_retry_seconds: float = 1.0


class TerminationActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
        http: httpx.AsyncClient,
        metrics: Metrics | None = None,
        control: AlgorithmControl | None = None,
        halt_webhook: HaltWebhookPolicy | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.broker = broker
        self.http = http
        self.metrics = metrics or Metrics()
        self.control = control or DatabaseAlgorithmControl(http)
        self.halt_webhook = halt_webhook or HaltWebhookPolicy()

    @activity.defn
    async def halt_algorithm(self, input: StepInput) -> StepResult:
        """Close the trading gate and announce the halt, before anything else.

        The gate and the NOTIFY are the halt, recorded in their own transaction; the halt
        webhook (if the algorithm has one) is handed to a delivery of its own that retries
        on its own and alerts when it gives up, so cancel and flatten go on at once.
        """
        step = TerminationStep.HALT_ALGORITHM
        halt = Halt(input.session_id, input.algorithm_id, input.end_reason.value, input.detail)
        async with self.sessionmaker.begin() as db:
            steps = TerminationStepRepository(db)
            if (done := await steps.result(input.session_id, step)) is not None:
                webhook = done.get("webhook")
            else:
                sessions = SessionRepository(db)
                row = await locked_session(sessions, input.session_id)
                if is_open(row.status):
                    await sessions.transition(input.session_id, SessionStatus.ENDING)
                await _audit(db, input, "algorithm.halted", step, asdict(halt))
                webhook = await self.control.halt(db, halt)
                details = {"gate": "closed"} | ({"webhook": "delivering"} if webhook else {})
                await steps.record(input.session_id, step, details)
        if done is None and input.end_reason is EndReason.LOSS_LIMIT:
            # ended_at is when the breaching check decided; the gate is closed as of commit.
            halted_after = (datetime.now(UTC) - input.ended_at).total_seconds()
            self.metrics.breach_to_halt.observe(max(0.0, halted_after))
        if webhook:
            # Also on a retry: the step may have been recorded by an attempt that died
            # before the delivery started. A second start finds the first delivery.
            await self._deliver_halt(halt)
        if done is not None:
            return StepResult(step=step, already_done=True, details=done)
        return StepResult(step=step, details=details)

    async def _deliver_halt(self, halt: Halt) -> None:
        delivery = HaltDeliveryInput(
            session_id=halt.session_id,
            algorithm_id=halt.algorithm_id,
            reason=halt.reason,
            detail=halt.detail,
            max_attempts=self.halt_webhook.max_attempts,
            first_retry_seconds=self.halt_webhook.first_retry_seconds,
        )
        try:
            await activity.client().start_workflow(
                HALT_WEBHOOK_WORKFLOW,
                delivery,
                id=halt_webhook_workflow_id(halt.session_id),
                task_queue=activity.info().task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"Halt webhook of session {halt.session_id}",
            )
        except WorkflowAlreadyStartedError:
            activity.logger.info("halt webhook of %s delivered already", halt.session_id)

    @activity.defn
    async def cancel_orders(self, input: StepInput) -> StepResult:
        step = TerminationStep.CANCEL_ORDERS
        if (done := await self._done(input, step)) is not None:
            return done
        cancelled = await self.broker.cancel_open_orders(input.session_id)
        details = {"cancelled": str(len(cancelled)), "order_ids": ",".join(cancelled)}
        return await self._record(input, step, details, audit="orders.cancelled")

    @activity.defn
    async def flatten_positions(self, input: StepInput) -> StepResult:
        step = TerminationStep.FLATTEN_POSITIONS
        if (done := await self._done(input, step)) is not None:
            return done
        closing = await self.broker.flatten_positions(input.session_id)
        details = {
            fill.symbol: f"{fill.side} {fill.quantity:f} @ {fill.price:f} fee {fill.fee:f} "
            f"pnl {fill.realized_pnl:f}"
            for fill in closing
        }
        return await self._record(input, step, details, audit="positions.flattened")

    @activity.defn
    async def update_portfolio(self, input: StepInput) -> StepResult:
        """Add the session's realized PnL to the account's portfolio, exactly once."""
        step = TerminationStep.UPDATE_PORTFOLIO
        async with self.sessionmaker.begin() as db:
            row = await locked_session(SessionRepository(db), input.session_id)
            settled = await PortfolioRepository(db).settle_session(
                input.session_id, row.account_id, row.realized_pnl
            )
            details = {"account_id": row.account_id, "realized_pnl": f"{row.realized_pnl:f}"}
            if settled:
                await _audit(db, input, "portfolio.updated", step, details)
                await TerminationStepRepository(db).record(input.session_id, step, details)
        return StepResult(step=step, already_done=not settled, details=details)

    @activity.defn
    async def notify_ended(self, input: StepInput) -> NotificationRef:
        """Queue the 'session ended' notification; delivery happens outside this step."""
        async with self.sessionmaker.begin() as db:
            row = await locked_session(SessionRepository(db), input.session_id)
            key = f"{input.session_id}:ended"
            await NotificationRepository(db).enqueue(
                session_id=input.session_id,
                account_id=row.account_id,
                kind="session.ended",
                payload={
                    "session_id": input.session_id,
                    "status": row.status,
                    "end_reason": input.end_reason.value,
                    "detail": input.detail,
                    "realized_pnl": f"{row.realized_pnl:f}",
                    "ended_at": input.ended_at.isoformat(),
                },
                dedupe_key=key,
            )
            notification_id = await NotificationRepository(db).id_for(key)
            await TerminationStepRepository(db).record(
                input.session_id, TerminationStep.NOTIFY, {"notification_id": str(notification_id)}
            )
        return NotificationRef(notification_id=notification_id)

    @activity.defn
    async def mark_cleanup_failed(self, input: CleanupFailedInput) -> NotificationRef:
        """A step gave up: make it visible (status, alert, audit event, notification)."""
        step = input.step
        key = f"{step.session_id}:cleanup_failed:{input.attempt}"
        message = (
            f"termination of session {step.session_id} failed at {input.failed_step}: {input.error}"
        )
        async with self.sessionmaker.begin() as db:
            sessions = SessionRepository(db)
            await locked_session(sessions, step.session_id)
            await sessions.transition(step.session_id, SessionStatus.CLEANUP_FAILED)
            await AlertRepository(db).raise_alert(
                kind="cleanup_failed", message=message, session_id=step.session_id, dedupe_key=key
            )
            details = {"failed_step": input.failed_step, "error": input.error}
            await _audit(db, step, "cleanup.failed", f"cleanup_failed:{input.attempt}", details)
            # For operators, not the account's traders: the alert's notification is it.
            notification_id = await AlertRepository(db).notification_id(key)
        activity.logger.error(message)
        return NotificationRef(notification_id=notification_id)

    @activity.defn
    async def resume_cleanup(self, input: CleanupRetryInput) -> None:
        """An operator asked to retry: CLEANUP_FAILED goes back to ENDING, on the record."""
        step = input.step.model_copy(update={"actor": input.actor, "detail": input.reason or ""})
        async with self.sessionmaker.begin() as db:
            sessions = SessionRepository(db)
            await locked_session(sessions, step.session_id)
            await sessions.transition(step.session_id, SessionStatus.ENDING)
            await _audit(db, step, "cleanup.retried", f"cleanup_retried:{input.attempt}", {})

    async def _done(self, input: StepInput, step: str) -> StepResult | None:
        async with self.sessionmaker() as db:
            done = await TerminationStepRepository(db).result(input.session_id, step)
        return None if done is None else StepResult(step=step, already_done=True, details=done)

    async def _record(
        self, input: StepInput, step: str, details: dict[str, str], audit: str | None = None
    ) -> StepResult:
        async with self.sessionmaker.begin() as db:
            if audit is not None:
                await _audit(db, input, audit, step, details)
            await TerminationStepRepository(db).record(input.session_id, step, details)
        return StepResult(step=step, details=details)


async def _audit(
    db: AsyncSession, input: StepInput, action: str, step: str, details: dict[str, Any]
) -> None:
    await AuditRepository(db).append(
        session_id=input.session_id,
        action=action,
        actor=input.actor,
        reason=input.detail,
        details=details,
        workflow_id=input.workflow_id,
        run_id=input.run_id,
        dedupe_key=f"{input.session_id}:{step}",
    )
