"""Activities for what changes during a session: warnings, limit changes, the trading gate."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.algorithm import AlgorithmControl, DatabaseAlgorithmControl
from activities.notifications import announce_alert
from activities.refusals import locked_session
from domain.limits import WarningKind
from domain.session import is_open
from domain.session_messages import (
    GateInput,
    HandlerFailureInput,
    LimitChangeInput,
    NotificationRef,
    RequestAuditInput,
    WarningInput,
)
from starter.runtime.metrics import Metrics
from store.alerts import AlertRepository
from store.audit import AuditRepository
from store.notifications import NotificationRepository
from store.sessions import SessionRepository


class SessionControlActivities:
    """Each method writes its change and its audit event in one transaction, once."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        metrics: Metrics | None = None,
        control: AlgorithmControl | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics or Metrics()
        self.control = control or DatabaseAlgorithmControl()

    @activity.defn
    async def record_warning(self, input: WarningInput) -> NotificationRef:
        """Audit event and notification for one threshold; a retry finds both written."""
        key = f"{input.session_id}:warning:{input.kind}:{input.threshold:g}"
        message = (
            f"{input.kind.lower()} used {input.used:.0%} reached the "
            f"{input.threshold:.0%} warning threshold"
        )
        async with self.sessionmaker.begin() as db:
            written = await AuditRepository(db).append(
                session_id=input.session_id,
                action=f"warning.{input.kind.lower()}",
                actor="system",
                reason=message,
                details={"threshold": input.threshold, "used": input.used},
                workflow_id=input.workflow_id,
                run_id=input.run_id,
                dedupe_key=key,
            )
            if written:
                self.metrics.warnings.labels(input.kind.value).inc()
                await NotificationRepository(db).enqueue(
                    session_id=input.session_id,
                    account_id=input.account_id,
                    kind=f"warning.{input.kind.lower()}",
                    payload={
                        "session_id": input.session_id,
                        "kind": input.kind,
                        "threshold": input.threshold,
                        "used": input.used,
                        "at": input.at.isoformat(),
                        "message": message,
                    },
                    dedupe_key=key,
                )
            if input.kind in (WarningKind.LOSS, WarningKind.DRAWDOWN):
                await SessionRepository(db).add_loss_warning(
                    input.session_id,
                    input.threshold,
                    drawdown=input.kind is WarningKind.DRAWDOWN,
                )
            notification_id = await NotificationRepository(db).id_for(key)
        activity.logger.info("warning sent: %s", message)
        return NotificationRef(notification_id=notification_id)

    @activity.defn
    async def change_limits(self, input: LimitChangeInput) -> None:
        """Persist a new deadline and/or loss limit under the row lock, with its audit event."""
        values: dict[str, object] = {}
        details: dict[str, str] = {}
        if input.end_time is not None:
            values["end_time"] = input.end_time
            details["end_time"] = input.end_time.isoformat()
        if input.loss_limit is not None:
            values["loss_limit"] = input.loss_limit
            details["loss_limit"] = str(input.loss_limit)
        async with self.sessionmaker.begin() as db:
            sessions = SessionRepository(db)
            row = await locked_session(sessions, input.session_id)
            if not is_open(row.status):  # an ended session keeps its limits
                raise ApplicationError(
                    f"session {input.session_id!r} is {row.status}: its limits can no longer "
                    "change",
                    type="SessionEnded",
                    non_retryable=True,
                )
            details.update(previous_end_time=row.end_time.isoformat())
            details.update(previous_loss_limit=str(row.loss_limit))
            written = await AuditRepository(db).append(
                session_id=input.session_id,
                action="session.limits_changed",
                actor=input.actor,
                reason=input.reason,
                details=details,
                workflow_id=input.workflow_id,
                run_id=input.run_id,
                dedupe_key=f"{input.session_id}:limits:{input.change_id}",
            )
            if written:
                await sessions.change_limits(input.session_id, values)

    @activity.defn
    async def set_trading_gate(self, input: GateInput) -> None:
        """Open or close the session's trading gate (the algorithm's pre-trade check)."""
        async with self.sessionmaker.begin() as db:
            sessions = SessionRepository(db)
            await locked_session(sessions, input.session_id)
            written = await AuditRepository(db).append(
                session_id=input.session_id,
                action="gate.opened" if input.open else "gate.closed",
                actor=input.actor,
                reason=input.reason,
                workflow_id=input.workflow_id,
                run_id=input.run_id,
                dedupe_key=f"{input.session_id}:gate:{input.change_id}",
            )
            if written:
                await self.control.set_gate(
                    db, input.session_id, open_=input.open, reason=input.reason
                )

    @activity.defn
    async def record_request(self, input: RequestAuditInput) -> None:
        """Audit an operator's request as the workflow received it; a retry writes it once."""
        async with self.sessionmaker.begin() as db:
            await AuditRepository(db).append(
                session_id=input.session_id,
                action=input.action,
                actor=input.actor,
                reason=input.reason,
                details=dict(input.details),
                workflow_id=input.workflow_id,
                run_id=input.run_id,
                dedupe_key=f"{input.session_id}:{input.action}:{input.key}",
            )

    @activity.defn
    async def record_handler_failure(self, input: HandlerFailureInput) -> None:
        """A handler's activity gave up: an alert for an operator and an audit event."""
        key = f"{input.session_id}:handler_failed:{input.key}"
        message = f"{input.handler} of session {input.session_id} failed: {input.error}"
        async with self.sessionmaker.begin() as db:
            await AlertRepository(db).raise_alert(
                kind="handler_failed",
                message=message[:2000],
                session_id=input.session_id,
                dedupe_key=key,
            )
            await AuditRepository(db).append(
                session_id=input.session_id,
                action="handler.failed",
                actor=input.actor,
                reason=input.error[:2000],
                details={"handler": input.handler},
                workflow_id=input.workflow_id,
                run_id=input.run_id,
                dedupe_key=key,
            )
        await announce_alert(self.sessionmaker, key)
        activity.logger.error(message)
