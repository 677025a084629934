"""Housekeeping activities: retention of long-ended sessions' trading data."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.housekeeping import HOUSEKEEPING_ACTOR, PurgeInput, PurgeResult
from starter.runtime.metrics import Metrics
from store.retention import purge_session_data, sessions_due_for_purge


class HousekeepingActivities:
    """Built once per worker; each call purges one batch in one transaction."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], metrics: Metrics | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics or Metrics()

    @activity.defn
    async def purge_ended_sessions(self, input: PurgeInput) -> PurgeResult:
        """Remove fills, marks and positions of up to ``limit`` sessions ended before cutoff.

        A retry after a crash finds the committed batch gone and takes the next one; a
        rolled-back batch is simply selected again.
        """
        async with self.sessionmaker.begin() as db:
            ids = await sessions_due_for_purge(db, input.cutoff, input.limit)
            counts = await purge_session_data(
                db, ids, actor=HOUSEKEEPING_ACTOR, cutoff=input.cutoff
            )
        result = PurgeResult(
            sessions_purged=len(ids),
            fills_deleted=counts.fills.total(),
            marks_deleted=counts.marks.total(),
            positions_deleted=counts.positions.total(),
        )
        self.metrics.housekeeping_sessions_purged.inc(result.sessions_purged)
        for table, deleted in (
            ("fills", result.fills_deleted),
            ("marks", result.marks_deleted),
            ("positions", result.positions_deleted),
        ):
            self.metrics.housekeeping_rows_deleted.labels(table=table).inc(deleted)
        if ids:
            activity.logger.info(
                "purged %d sessions ended before %s",
                len(ids),
                input.cutoff.isoformat(),
                extra={"purge": result.model_dump()},
            )
        return result
