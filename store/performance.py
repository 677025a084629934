"""Performance snapshots, and the consistent read of everything the figures come from."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.limits import session_loss
from domain.performance import (
    FillRecord,
    PerformanceFigures,
    SnapshotKind,
    compute_performance,
)
from domain.positions import Side
from store.ledger import LedgerRepository
from store.models import Fill, PerformanceSnapshot, TradingSession
from store.sessions import SessionRepository


@dataclass(frozen=True)
class PerformanceInputs:
    """A session's row, its fills in execution order and its open positions' value."""

    session: TradingSession
    fills: list[FillRecord]
    unrealized_pnl: Decimal

    def figures_at(self, now: datetime) -> PerformanceFigures:
        """The figures at ``now``; an ended session's clock stopped when it ended."""
        ended_at = self.session.ended_at
        return compute_performance(
            self.fills,
            unrealized_pnl=self.unrealized_pnl,
            loss_limit=self.session.loss_limit,
            start_time=self.session.start_time,
            end_time=self.session.end_time,
            now=now if ended_at is None else min(now, ended_at),
        )


class PerformanceRepository:
    """Never commits: the caller owns the transaction."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def begin_consistent_read(self) -> None:
        """Make the rest of this transaction read one snapshot of the database.

        Fills, positions and marks are read by several statements; a fill committed between
        them would otherwise show in one and not the other. Call it before any other query.
        """
        await self.db.connection(execution_options={"isolation_level": "REPEATABLE READ"})

    async def inputs(self, session_id: str) -> PerformanceInputs:
        """Everything the figures need; raises SessionNotFoundError for an unknown session."""
        session = await SessionRepository(self.db).get(session_id)
        stmt = select(Fill).where(Fill.session_id == session_id).order_by(Fill.executed_at, Fill.id)
        fills = [
            FillRecord(
                symbol=row.symbol,
                side=Side(row.side),
                quantity=row.quantity,
                price=row.price,
                fee=row.fee,
                executed_at=row.executed_at,
                realized_pnl=row.realized_pnl,
            )
            for row in (await self.db.execute(stmt)).scalars()
        ]
        pnl = await LedgerRepository(self.db).pnl(session_id)
        return PerformanceInputs(session, fills, pnl.unrealized_pnl)

    async def save(
        self,
        *,
        session_id: str,
        kind: SnapshotKind,
        taken_at: datetime,
        figures: PerformanceFigures,
        dedupe_key: str,
        replace: bool = False,
    ) -> tuple[PerformanceSnapshot, bool]:
        """Store a snapshot once per ``dedupe_key``; a repeat returns the first one stored.

        With ``replace`` a stored snapshot takes the new figures instead (an ended session's
        final snapshot, after a late fill changed them); the second value is then whether
        the figures were written.
        """
        insert_stmt = insert(PerformanceSnapshot).values(
            session_id=session_id,
            kind=kind,
            taken_at=taken_at,
            realized_pnl=figures.realized_pnl,
            unrealized_pnl=figures.unrealized_pnl,
            fills=figures.fills,
            round_trips=figures.round_trips,
            win_rate=figures.win_rate,
            peak_pnl=figures.peak_pnl,
            max_drawdown=figures.max_drawdown,
            duration_seconds=figures.duration_seconds,
            loss_used_pct=figures.loss_used_pct,
            time_used_pct=figures.time_used_pct,
            # Figures without a column of their own; stored as strings to keep Decimals.
            details={
                "fees": str(figures.fees),
                "winning_round_trips": figures.winning_round_trips,
            },
            dedupe_key=dedupe_key,
        )
        if replace:
            columns = {
                name: insert_stmt.excluded[name]
                for name in (
                    "taken_at",
                    "realized_pnl",
                    "unrealized_pnl",
                    "fills",
                    "round_trips",
                    "win_rate",
                    "peak_pnl",
                    "max_drawdown",
                    "duration_seconds",
                    "loss_used_pct",
                    "time_used_pct",
                    "details",
                )
            }
            stmt = insert_stmt.on_conflict_do_update(
                index_elements=["dedupe_key"], set_=columns
            ).returning(PerformanceSnapshot.id)
        else:
            stmt = insert_stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(
                PerformanceSnapshot.id
            )
        created_id = (await self.db.execute(stmt)).scalar_one_or_none()
        key_filter = PerformanceSnapshot.dedupe_key == dedupe_key
        row = (
            await self.db.execute(
                select(PerformanceSnapshot)
                .where(key_filter)
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        return row, created_id is not None

    async def latest(self, session_id: str) -> PerformanceSnapshot | None:
        """The newest snapshot by the time it was taken, or None."""
        stmt = (
            select(PerformanceSnapshot)
            .where(PerformanceSnapshot.session_id == session_id)
            .order_by(PerformanceSnapshot.taken_at.desc(), PerformanceSnapshot.id.desc())
            .limit(1)
        )
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def list(self, session_id: str, limit: int = 100) -> Sequence[PerformanceSnapshot]:
        """Newest first."""
        stmt = (
            select(PerformanceSnapshot)
            .where(PerformanceSnapshot.session_id == session_id)
            .order_by(PerformanceSnapshot.taken_at.desc(), PerformanceSnapshot.id.desc())
            .limit(limit)
        )
        return (await self.db.execute(stmt)).scalars().all()

    async def sessions_due_periodic(self, shard: int, shards: int) -> Sequence[str]:
        """The ACTIVE sessions of a sweep shard with a fill recorded since their latest
        periodic snapshot: the ones whose figures moved. One statement for the shard."""
        latest = (
            select(func.max(PerformanceSnapshot.taken_at))
            .where(
                PerformanceSnapshot.session_id == TradingSession.id,
                PerformanceSnapshot.kind == "periodic",
            )
            .scalar_subquery()
        )
        traded = (
            select(Fill.id)
            .where(
                Fill.session_id == TradingSession.id,
                or_(latest.is_(None), Fill.recorded_at > latest),
            )
            .exists()
        )
        stmt = select(TradingSession.id).where(
            TradingSession.status == "ACTIVE",
            TradingSession.shard_key % shards == shard,
            traded,
        )
        return (await self.db.execute(stmt)).scalars().all()


def figures_of(row: PerformanceSnapshot) -> PerformanceFigures:
    """The figures a stored snapshot holds; total and loss follow from its PnL."""
    total = row.realized_pnl + row.unrealized_pnl
    return PerformanceFigures(
        realized_pnl=row.realized_pnl,
        unrealized_pnl=row.unrealized_pnl,
        total_pnl=total,
        fees=Decimal(row.details.get("fees", "0")),
        fills=row.fills,
        round_trips=row.round_trips,
        winning_round_trips=int(row.details.get("winning_round_trips", 0)),
        win_rate=row.win_rate,
        peak_pnl=row.peak_pnl,
        max_drawdown=row.max_drawdown,
        duration_seconds=row.duration_seconds,
        loss=session_loss(row.realized_pnl, row.unrealized_pnl),
        loss_used_pct=row.loss_used_pct,
        time_used_pct=row.time_used_pct,
    )
