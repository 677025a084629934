"""The activity that records a session's performance snapshot, periodic or final."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.refusals import refusal
from domain.performance import PerformanceOut, SnapshotKind, snapshot_key
from domain.session_messages import SnapshotInput
from store.performance import PerformanceRepository, figures_of
from store.sessions import SessionNotFoundError


class PerformanceActivities:
    """Built once per worker with its session factory; each method owns one transaction."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn
    async def record_snapshot(self, input: SnapshotInput) -> PerformanceOut:
        """Compute the figures from the store and keep them; a retry returns the first write."""
        try:
            kind = SnapshotKind(input.kind)
        except ValueError as err:
            raise ApplicationError(
                f"unknown snapshot kind {input.kind!r}",
                type="InvalidSnapshotKind",
                non_retryable=True,
            ) from err
        async with self.sessionmaker.begin() as db:
            repo = PerformanceRepository(db)
            await repo.begin_consistent_read()
            try:
                inputs = await repo.inputs(input.session_id)
            except SessionNotFoundError as err:
                raise refusal(err) from err
            row, created = await repo.save(
                session_id=input.session_id,
                kind=kind,
                taken_at=input.taken_at,
                figures=inputs.figures_at(input.taken_at),
                dedupe_key=snapshot_key(input.session_id, kind, input.taken_at),
            )
        if not created:
            activity.logger.info("%s snapshot of %s was stored already", kind, input.session_id)
        return PerformanceOut(
            session_id=input.session_id,
            kind=kind,
            taken_at=row.taken_at,
            figures=figures_of(row),
        )
