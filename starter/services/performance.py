"""A session's performance for the API and the CLI: the stored snapshots and live figures."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.performance import PerformanceFigures, SnapshotKind
from starter.api.schemas import FiguresOut, PerformanceReport, SnapshotOut
from starter.services.errors import NotFoundError
from store.models import PerformanceSnapshot
from store.performance import PerformanceRepository, figures_of
from store.sessions import SessionNotFoundError, SessionRepository


class PerformanceService:
    """Live figures are computed, never stored: only the workflow writes snapshots."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def report(self, session_id: str, now: datetime | None = None) -> PerformanceReport:
        """The latest stored snapshot, if any, and the figures computed from the store now."""
        now = now or datetime.now(UTC)
        async with self.sessionmaker() as db:
            repo = PerformanceRepository(db)
            await repo.begin_consistent_read()
            try:
                inputs = await repo.inputs(session_id)
            except SessionNotFoundError as err:
                raise NotFoundError(str(err)) from err
            latest = await repo.latest(session_id)
        return PerformanceReport(
            session_id=session_id,
            status=inputs.session.status,
            as_of=now,
            live=_figures(inputs.figures_at(now)),
            latest=None if latest is None else _snapshot(latest),
        )

    async def history(self, session_id: str, limit: int = 100) -> list[SnapshotOut]:
        """Stored snapshots, newest first; 404 for an unknown session."""
        async with self.sessionmaker() as db:
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
