"""Retention on real PostgreSQL: old ended sessions lose their trading data, nothing else does."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.housekeeping import HousekeepingActivities
from domain.housekeeping import PurgeInput
from domain.status import SessionStatus
from starter.runtime.metrics import Metrics
from store.audit import AuditRepository
from store.models import TradingSession
from store.retention import PURGE_ACTION, purge_session_data, sessions_due_for_purge
from tests.fixtures.housekeeping_data import data_counts, seed_session

NOW = datetime.now(UTC)
CUTOFF = NOW - timedelta(days=30)
KEPT = {"fills": 2, "marks": 1, "positions": 1, "audit": 1}


async def test_only_sessions_ended_before_the_cutoff_are_due(db: AsyncSession) -> None:
    old = await seed_session(db, SessionStatus.EXPIRED, NOW - timedelta(days=40))
    old_breach = await seed_session(db, SessionStatus.LOSS_LIMIT, NOW - timedelta(days=31))
    recent = await seed_session(db, SessionStatus.TERMINATED, NOW - timedelta(days=29))
    active = await seed_session(db, SessionStatus.ACTIVE, None)
    stuck = await seed_session(db, SessionStatus.CLEANUP_FAILED, NOW - timedelta(days=40))

    due = await sessions_due_for_purge(db, CUTOFF, limit=10_000)

    assert {old, old_breach} <= set(due)
    assert not {recent, active, stuck} & set(due)


async def test_purge_removes_fills_marks_positions_but_keeps_row_and_audit(
    db: AsyncSession,
) -> None:
    old = await seed_session(db, SessionStatus.EXPIRED, NOW - timedelta(days=40))
    recent = await seed_session(db, SessionStatus.EXPIRED, NOW - timedelta(days=2))
    active = await seed_session(db, SessionStatus.ACTIVE, None)
    pnl_before = (await db.get_one(TradingSession, old)).realized_pnl

    counts = await purge_session_data(db, [old], actor="housekeeping", cutoff=CUTOFF)

    assert (counts.fills[old], counts.marks[old], counts.positions[old]) == (2, 1, 1)
    assert await data_counts(db, old) == {"fills": 0, "marks": 0, "positions": 0, "audit": 2}
    assert await data_counts(db, recent) == KEPT
    assert await data_counts(db, active) == KEPT
    row = (await db.execute(select(TradingSession).where(TradingSession.id == old))).scalar_one()
    assert row.status == SessionStatus.EXPIRED
    assert row.realized_pnl == pnl_before
    events = await AuditRepository(db).for_session(old)
    assert [e.action for e in events] == ["session.activated", PURGE_ACTION]
    assert events[-1].details == {
        "cutoff": CUTOFF.isoformat(),
        "fills": 2,
        "marks": 1,
        "positions": 1,
    }


async def test_due_sessions_come_oldest_first_in_batches(db: AsyncSession) -> None:
    ancient = datetime(2001, 1, 1, tzinfo=UTC)
    ids = [
        await seed_session(db, SessionStatus.EXPIRED, ancient + timedelta(minutes=m))
        for m in (2, 0, 1)
    ]
    cutoff = ancient + timedelta(hours=1)

    first = await sessions_due_for_purge(db, cutoff, limit=2)
    await purge_session_data(db, first, actor="housekeeping", cutoff=cutoff)
    second = await sessions_due_for_purge(db, cutoff, limit=2)

    assert first == [ids[1], ids[2]]
    assert second == [ids[0]]


async def test_purge_activity_commits_its_batch_and_counts_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker.begin() as db:
        old = await seed_session(db, SessionStatus.EXPIRED, NOW - timedelta(days=45))
        recent = await seed_session(db, SessionStatus.EXPIRED, NOW - timedelta(days=1))
    metrics = Metrics()
    activities = HousekeepingActivities(sessionmaker, metrics)

    result = await ActivityEnvironment().run(
        activities.purge_ended_sessions, PurgeInput(cutoff=CUTOFF, limit=500)
    )

    assert result.sessions_purged >= 1
    assert result.fills_deleted >= 2
    async with sessionmaker() as db:
        assert await data_counts(db, old) == {"fills": 0, "marks": 0, "positions": 0, "audit": 2}
        assert await data_counts(db, recent) == KEPT
    purged = metrics.registry.get_sample_value("trading_housekeeping_sessions_purged_total")
    fills = metrics.registry.get_sample_value(
        "trading_housekeeping_rows_deleted_total", {"table": "fills"}
    )
    assert purged == result.sessions_purged
    assert fills == result.fills_deleted
