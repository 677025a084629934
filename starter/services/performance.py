"""A session's performance for the API and the CLI: the stored snapshots and live figures."""

from datetime import UTC, datetime

from pydantic import BaseModel

from domain.performance import PerformanceFigures, SnapshotKind
from domain.status import SessionStatus
from starter.api.schemas import Money
from starter.services.errors import NotFoundError
from starter.services.sessions import SessionService
from store.models import PerformanceSnapshot
from store.performance import PerformanceRepository, figures_of
from store.sessions import SessionNotFoundError, SessionRepository


class FiguresOut(BaseModel):
    """Performance figures; money as decimal strings, win rate 0-1, ``time_used_pct`` 0-100,
    ``loss_used_pct`` unclamped (past 100 after a breach that gapped through the limit)."""

    realized_pnl: Money
    unrealized_pnl: Money
    total_pnl: Money
    fees: Money
    fills: int
    round_trips: int
    winning_round_trips: int
    win_rate: float | None
    peak_pnl: Money
    max_drawdown: Money
    duration_seconds: float
    loss: Money
    loss_used_pct: float
    time_used_pct: float


class SnapshotOut(BaseModel):
    """A stored snapshot: periodic while the session ran, final once it ended."""

    kind: SnapshotKind
    taken_at: datetime
    figures: FiguresOut


class PerformanceReport(BaseModel):
    """The latest stored snapshot (if any) and the figures computed from the store now."""

    session_id: str
    status: SessionStatus
    as_of: datetime
    live: FiguresOut
    latest: SnapshotOut | None


async def performance_report(
    service: SessionService, session_id: str, now: datetime | None = None
) -> PerformanceReport:
    """Live figures are computed, never stored: only the workflow writes snapshots."""
    now = now or datetime.now(UTC)
    async with service.sessionmaker() as db:
        repo = PerformanceRepository(db)
        await repo.begin_consistent_read()
        try:
            inputs = await repo.inputs(session_id)
        except SessionNotFoundError as err:
            raise NotFoundError(str(err)) from err
        latest = await repo.latest(session_id)
    return PerformanceReport(
        session_id=session_id,
        status=SessionStatus(inputs.session.status),
        as_of=now,
        live=_figures(inputs.figures_at(now)),
        latest=None if latest is None else _snapshot(latest),
    )


async def performance_history(
    service: SessionService, session_id: str, limit: int = 100
) -> list[SnapshotOut]:
    """Stored snapshots, newest first; 404 for an unknown session."""
    async with service.sessionmaker() as db:
        try:
            await SessionRepository(db).get(session_id)
        except SessionNotFoundError as err:
            raise NotFoundError(str(err)) from err
        rows = await PerformanceRepository(db).list(session_id, limit)
    return [_snapshot(row) for row in rows]


def _figures(figures: PerformanceFigures) -> FiguresOut:
    return FiguresOut.model_validate(figures.model_dump())


def _snapshot(row: PerformanceSnapshot) -> SnapshotOut:
    return SnapshotOut(
        kind=SnapshotKind(row.kind), taken_at=row.taken_at, figures=_figures(figures_of(row))
    )
