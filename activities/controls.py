"""Activities for what changes during a session: warnings, limit changes, the trading gate."""

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.metrics import Metrics
from activities.refusals import locked_session
from domain.messages import GateInput, LimitChangeInput, NotificationRef, WarningInput
from store.audit import AuditRepository
from store.models import TradingSession
from store.notifications import NotificationRepository
from store.sessions import SessionRepository


class SessionControlActivities:
    """Each method writes its change and its audit event in one transaction, once."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], metrics: Metrics | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics or Metrics()

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
            row = await locked_session(SessionRepository(db), input.session_id)
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
                await db.execute(
                    update(TradingSession)
                    .where(TradingSession.id == input.session_id)
                    .values(**values)
                )

    @activity.defn
    async def set_trading_gate(self, input: GateInput) -> None:
        """Open or close the session's trading gate (the algorithm's pre-trade check)."""
        async with self.sessionmaker.begin() as db:
            await locked_session(SessionRepository(db), input.session_id)
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
                await db.execute(
                    update(TradingSession)
                    .where(TradingSession.id == input.session_id)
                    .values(gate_open=input.open, gate_reason=input.reason)
                )
