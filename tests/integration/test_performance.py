"""Performance snapshots: the repository, and the activity on real, committed PostgreSQL rows."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.performance import PerformanceActivities
from domain.performance import PerformanceFigures, SnapshotKind, snapshot_key
from domain.positions import Side
from domain.session_messages import SnapshotInput
from store.ledger import LedgerRepository, NewFill
from store.performance import PerformanceRepository
from store.sessions import SessionRepository
from tests.fixtures.factories import new_session_id, session_values

D = Decimal
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture
def activities(sessionmaker: Sessionmaker) -> PerformanceActivities:
    return PerformanceActivities(sessionmaker)


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


def figures(realized: str = "0", fills: int = 0) -> PerformanceFigures:
    return PerformanceFigures(
        realized_pnl=D(realized),
        unrealized_pnl=D(0),
        total_pnl=D(realized),
        fees=D("1.5"),
        fills=fills,
        round_trips=0,
        winning_round_trips=0,
        win_rate=None,
        peak_pnl=D(0),
        max_drawdown=D(0),
        duration_seconds=60.0,
        loss=D(0),
        loss_used_pct=0.0,
        time_used_pct=1.67,
    )


async def traded_session(sessionmaker: Sessionmaker) -> str:
    """An hour-long session from T0 with the fills of the unit tests and a mark at 95.

    ACME, fee 1 on the first four fills:
      BUY 10 @ 100 -> -1 ; SELL 10 @ 110 -> +99 ; BUY 5 @ 110 -> -1 ; SELL 5 @ 90 -> -101 ;
      SELL 4 @ 90 -> 0, leaving short 4 @ 90, marked at 95: unrealized (95 - 90) * -4 = -20.
    """
    values = session_values(start=T0, duration=timedelta(hours=1), loss_limit=D(100))
    trades = [
        ("f1", Side.BUY, "10", "100", "1"),
        ("f2", Side.SELL, "10", "110", "1"),
        ("f3", Side.BUY, "5", "110", "1"),
        ("f4", Side.SELL, "5", "90", "1"),
        ("f5", Side.SELL, "4", "90", "0"),
    ]
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(values)
        ledger = LedgerRepository(db)
        for minute, (fill_id, side, quantity, price, fee) in enumerate(trades):
            fill = NewFill(fill_id, "ACME", side, D(quantity), D(price), D(fee), _at(minute))
            await ledger.apply_fill(values["id"], fill)
        await ledger.add_mark(values["id"], "ACME", D(95), _at(6))
    session_id: str = values["id"]
    return session_id


def _at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


async def snapshots(sessionmaker: Sessionmaker, session_id: str) -> int:
    async with sessionmaker() as db:
        return len(await PerformanceRepository(db).list(session_id))


async def test_snapshot_figures_match_the_hand_computed_fill_sequence(
    env: ActivityEnvironment, activities: PerformanceActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await traded_session(sessionmaker)
    taken_at = T0 + timedelta(minutes=15)

    out = await env.run(
        activities.record_snapshot, SnapshotInput(session_id=session_id, taken_at=taken_at)
    )

    f = out.figures
    # realized -1 + 99 - 1 - 101 + 0 = -4; unrealized -20; loss 24 of 100
    assert (out.session_id, out.kind, out.taken_at) == (session_id, "periodic", taken_at)
    assert (f.realized_pnl, f.unrealized_pnl, f.total_pnl) == (D(-4), D(-20), D(-24))
    assert (f.fills, f.fees) == (5, D(4))
    # trips +98 (win) and -102; cumulative -1, 98, 97, -4, -4: peak 98, drawdown 102
    assert (f.round_trips, f.winning_round_trips, f.win_rate) == (2, 1, 0.5)
    assert (f.peak_pnl, f.max_drawdown) == (D(98), D(102))
    assert (f.loss, f.loss_used_pct) == (D(24), 24.0)
    # 15 of 60 minutes
    assert (f.duration_seconds, f.time_used_pct) == (900.0, 25.0)


async def test_snapshot_recorded_twice_with_the_same_input_is_stored_once(
    env: ActivityEnvironment, activities: PerformanceActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await traded_session(sessionmaker)
    request = SnapshotInput(session_id=session_id, taken_at=T0 + timedelta(minutes=15))

    first = await env.run(activities.record_snapshot, request)
    second = await env.run(activities.record_snapshot, request)

    assert first == second
    assert await snapshots(sessionmaker, session_id) == 1


async def test_final_snapshot_is_stored_once_even_when_retried_later(
    env: ActivityEnvironment, activities: PerformanceActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await traded_session(sessionmaker)
    final = SnapshotInput(session_id=session_id, kind="final", taken_at=T0 + timedelta(minutes=20))

    first = await env.run(activities.record_snapshot, final)
    retried = await env.run(
        activities.record_snapshot, final.model_copy(update={"taken_at": T0 + timedelta(hours=2)})
    )

    # the retry returns what the first attempt stored: 20 of 60 minutes
    assert retried == first
    assert retried.figures.duration_seconds == 1200.0
    assert await snapshots(sessionmaker, session_id) == 1


async def test_ended_session_duration_stops_when_it_ended(
    env: ActivityEnvironment, activities: PerformanceActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await traded_session(sessionmaker)
    async with sessionmaker.begin() as db:
        row = await SessionRepository(db).get(session_id, for_update=True)
        row.ended_at = T0 + timedelta(minutes=30)

    out = await env.run(
        activities.record_snapshot,
        SnapshotInput(session_id=session_id, kind="final", taken_at=T0 + timedelta(minutes=45)),
    )

    # ended after 30 of 60 minutes, though the snapshot was taken at 45
    assert (out.figures.duration_seconds, out.figures.time_used_pct) == (1800.0, 50.0)


async def test_snapshot_of_unknown_session_is_refused_without_retry(
    env: ActivityEnvironment, activities: PerformanceActivities
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await env.run(
            activities.record_snapshot, SnapshotInput(session_id=new_session_id(), taken_at=T0)
        )

    assert raised.value.non_retryable
    assert raised.value.type == "SessionNotFoundError"


async def test_snapshot_of_unknown_kind_is_refused_without_retry(
    env: ActivityEnvironment, activities: PerformanceActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await traded_session(sessionmaker)

    with pytest.raises(ApplicationError) as raised:
        await env.run(
            activities.record_snapshot,
            SnapshotInput(session_id=session_id, kind="hourly", taken_at=T0),
        )

    assert raised.value.non_retryable
    assert await snapshots(sessionmaker, session_id) == 0


async def test_repository_keeps_the_first_snapshot_per_key_and_lists_newest_first(
    db: AsyncSession,
) -> None:
    values = session_values(start=T0)
    await SessionRepository(db).insert_if_absent(values)
    session_id = values["id"]
    repo = PerformanceRepository(db)
    saved = []
    for minute, realized in ((1, "10"), (2, "-5")):
        taken_at = _at(minute)
        key = snapshot_key(session_id, SnapshotKind.PERIODIC, taken_at)
        saved.append(
            await repo.save(
                session_id=session_id,
                kind=SnapshotKind.PERIODIC,
                taken_at=taken_at,
                figures=figures(realized, fills=minute),
                dedupe_key=key,
            )
        )
    key = snapshot_key(session_id, SnapshotKind.PERIODIC, _at(1))
    again, created = await repo.save(
        session_id=session_id,
        kind=SnapshotKind.PERIODIC,
        taken_at=_at(1),
        figures=figures("999"),
        dedupe_key=key,
    )

    assert [created for _, created in saved] == [True, True]
    assert not created
    assert again.realized_pnl == D(10)
    assert [row.taken_at for row in await repo.list(session_id)] == [_at(2), _at(1)]
    latest = await repo.latest(session_id)
    assert latest is not None
    assert latest.realized_pnl == D(-5)
    assert latest.details == {"fees": "1.5", "winning_round_trips": 0}
