"""Hourly counts of background jobs and loss checks, added up from every worker's counters."""

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import JobCount


class JobCountRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, hour: datetime, deltas: Mapping[tuple[str, str], int]) -> None:
        """Add each ``(kind, outcome)`` delta to the hour's row, in one statement."""
        rows = [
            {"hour": hour, "kind": kind, "outcome": outcome, "count": count}
            for (kind, outcome), count in deltas.items()
            if count
        ]
        if not rows:
            return
        stmt = insert(JobCount).values(rows)
        await self.db.execute(
            stmt.on_conflict_do_update(
                index_elements=[JobCount.hour, JobCount.kind, JobCount.outcome],
                set_={"count": JobCount.count + stmt.excluded.count},
            )
        )

    async def totals(self, since: datetime) -> dict[tuple[str, str], int]:
        """Counts of the hours from the one holding ``since`` on, by ``(kind, outcome)``."""
        stmt = (
            select(JobCount.kind, JobCount.outcome, func.sum(JobCount.count))
            .where(JobCount.hour >= func.date_trunc("hour", since))
            .group_by(JobCount.kind, JobCount.outcome)
        )
        return {(k, o): int(n) for k, o, n in (await self.db.execute(stmt)).all()}
