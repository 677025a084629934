"""The housekeeping workflow on the time-skipping server, with the real purge activity."""

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.housekeeping import HousekeepingInput
from domain.status import SessionStatus
from tests.fixtures.housekeeping_data import data_counts, seed_session
from workflows.housekeeping import HousekeepingWorkflow


async def test_housekeeping_purges_old_sessions_batch_by_batch_and_keeps_recent_ones(
    time_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    task_queue: str,
) -> None:
    now = await time_env.get_current_time()
    async with sessionmaker.begin() as db:
        old = [
            await seed_session(db, SessionStatus.EXPIRED, now - timedelta(days=31 + i))
            for i in range(3)
        ]
        recent = await seed_session(db, SessionStatus.EXPIRED, now - timedelta(days=29))

    result = await time_env.client.execute_workflow(
        HousekeepingWorkflow.run,
        HousekeepingInput(retention_days=30, batch_size=2),
        id=f"housekeeping-{uuid.uuid4()}",
        task_queue=task_queue,
    )

    assert result.batches >= 2  # three sessions at two per batch
    assert result.sessions_purged >= 3
    assert result.cutoff <= now - timedelta(days=30) + timedelta(minutes=1)
    async with sessionmaker() as db:
        for session_id in old:
            assert await data_counts(db, session_id) == {
                "fills": 0,
                "marks": 0,
                "positions": 0,
                "audit": 2,
            }
        assert (await data_counts(db, recent))["fills"] == 2
