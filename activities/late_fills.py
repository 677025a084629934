"""The follow-up of an ended session's late fills: flatten again, settle the difference,
bring the final performance up to date, announce each late fill.

Every part is idempotent by the state it finds: a flat session is not flattened, a settled
difference of zero adds nothing, the final snapshot is rewritten with the same figures, and
each late fill is announced once (its notification's key). A retried or repeated follow-up
therefore changes nothing more.
"""

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.broker import Broker
from activities.refusals import refusal
from domain.late_fills import LATE_FILL_NOTIFICATION, LateFillsInput, LateFillsResult
from domain.performance import SnapshotKind, snapshot_key
from domain.status import is_terminal
from store.audit import AuditRepository
from store.late_fills import LateFillRepository, late_fill_notification_key
from store.models import TradingSession
from store.notifications import NotificationRepository
from store.performance import PerformanceRepository
from store.sessions import SessionNotFoundError, SessionRepository
from store.termination import PortfolioRepository

ACTOR = "reconciler"


class LateFillActivities:
    """Built once per worker with the session factory and the broker."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: Broker,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.broker = broker

    @activity.defn
    async def settle_late_fills(self, input: LateFillsInput) -> LateFillsResult:
        """Flatten what late fills reopened, settle, refresh the final snapshot, announce."""
        session_id = input.session_id
        result = LateFillsResult(session_id=session_id)
        async with self.sessionmaker() as db:
            try:
                row = await SessionRepository(db).get(session_id)
            except SessionNotFoundError as err:
                raise refusal(err) from err  # purged by retention: nothing left to settle
        if not is_terminal(row.status):
            # Still winding down: its own termination flattens, settles and snapshots.
            activity.logger.info("late fills of %s wait for its end (%s)", session_id, row.status)
            return result
        closing = await self.broker.flatten_positions(session_id)
        result.reflattened = {
            fill.symbol: f"{fill.fill_id}: {fill.side} {fill.quantity:f} @ {fill.price:f}"
            for fill in closing
        }
        async with self.sessionmaker.begin() as db:
            row = await SessionRepository(db).get(session_id, for_update=True)
            late = await LateFillRepository(db).late_count(session_id)
            if closing:
                await self._audit(db, row, "positions.reflattened", late, result.reflattened)
            difference = await PortfolioRepository(db).resettle_session(
                session_id, row.account_id, row.realized_pnl
            )
            if difference is not None:
                result.settled_difference = f"{difference:f}"
                details = {"difference": f"{difference:f}", "realized_pnl": f"{row.realized_pnl:f}"}
                await self._audit(db, row, "portfolio.resettled", late, details)
            result.realized_pnl = f"{row.realized_pnl:f}"
        await self._final_snapshot(row)
        result.notification_ids = await self._announce(session_id, row.realized_pnl)
        for symbol, fill in result.reflattened.items():
            activity.logger.warning("session %s: %s flattened again (%s)", session_id, symbol, fill)
        return result

    async def _final_snapshot(self, row: TradingSession) -> None:
        """The final snapshot, as of the session's end, with every fill known now."""
        ended_at = row.ended_at or row.end_time
        async with self.sessionmaker.begin() as db:
            repo = PerformanceRepository(db)
            await repo.begin_consistent_read()
            inputs = await repo.inputs(row.id)
            await repo.save(
                session_id=row.id,
                kind=SnapshotKind.FINAL,
                taken_at=ended_at,
                figures=inputs.figures_at(ended_at),
                dedupe_key=snapshot_key(row.id, SnapshotKind.FINAL, ended_at),
                replace=True,
            )

    async def _announce(self, session_id: str, realized_pnl: Decimal) -> list[int]:
        """One ``session.late_fill`` notification per late fill, with the session's
        realized PnL after the follow-up; returns the ids to deliver."""
        ids: list[int] = []
        async with self.sessionmaker.begin() as db:
            row = await SessionRepository(db).get(session_id)
            notifications = NotificationRepository(db)
            for fill in await LateFillRepository(db).unannounced(session_id):
                key = late_fill_notification_key(session_id, fill.fill_id)
                await notifications.enqueue(
                    session_id=session_id,
                    account_id=row.account_id,
                    kind=LATE_FILL_NOTIFICATION,
                    payload={
                        "session_id": session_id,
                        "status": row.status.value,
                        "fill_id": fill.fill_id,
                        "order_id": fill.order_id,
                        "symbol": fill.symbol,
                        "side": fill.side,
                        "quantity": f"{fill.quantity:f}",
                        "price": f"{fill.price:f}",
                        "executed_at": fill.executed_at.isoformat(),
                        "realized_pnl": f"{realized_pnl:f}",
                    },
                    dedupe_key=key,
                )
                notification_id = await notifications.id_for(key)
                if notification_id is not None:  # queued just now, in this transaction
                    ids.append(notification_id)
        return ids

    async def _audit(
        self, db: AsyncSession, row: TradingSession, action: str, late: int, details: dict[str, str]
    ) -> None:
        await AuditRepository(db).append(
            session_id=row.id,
            action=action,
            actor=ACTOR,
            reason=f"after {late} late fill(s)",
            details=details,
            workflow_id=row.workflow_id,
            # Once per round: each late fill that needs a round raises the count.
            dedupe_key=f"{row.id}:{action}:{late}:{row.realized_pnl:f}",
        )
