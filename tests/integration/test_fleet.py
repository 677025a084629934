"""The fleet's set-based loss statement against real PostgreSQL, with hand-computed numbers.

Other tests may leave ACTIVE sessions committed in the shared database, so these look at
their own sessions only and count ``checked`` as a difference.
"""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.limits import session_loss
from domain.positions import Side
from domain.status import SessionStatus
from domain.sweep import WakeReason, shard_of, wake_reason
from store.audit import AuditRepository
from store.fleet import LIMIT_REWAKE, FleetLosses, FleetRepository, SessionLoss
from store.ledger import LedgerRepository, NewFill
from store.market_marks import MarketMarkRepository, NewMarketMark
from store.models import TradingSession
from store.sessions import SessionRepository
from tests.fixtures.factories import session_values

D = Decimal
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def symbol() -> str:
    """A symbol no other test marks: market marks are shared by every session."""
    return f"S{uuid.uuid4().hex[:10]}"


async def active_session(db: AsyncSession, **overrides: Any) -> str:
    values = session_values(**{"status": SessionStatus.ACTIVE, **overrides})
    row, _ = await SessionRepository(db).insert_if_absent(values)
    return row.id


async def trade(
    db: AsyncSession, session_id: str, sym: str, side: Side, qty: str, price: str, fee: str = "0"
) -> None:
    fill = NewFill(uuid.uuid4().hex, sym, side, D(qty), D(price), D(fee), T0)
    await LedgerRepository(db).apply_fill(session_id, fill)


async def market(db: AsyncSession, sym: str, price: str, at: datetime) -> list[str]:
    return await MarketMarkRepository(db).upsert([NewMarketMark(sym, D(price), at)])


def found(losses: FleetLosses, session_id: str) -> SessionLoss | None:
    return next((s for s in losses.sessions if s.session_id == session_id), None)


async def swept(db: AsyncSession, session_id: str) -> SessionLoss | None:
    return found(await FleetRepository(db).sweep_losses(0, 1), session_id)


async def test_the_newest_mark_wins_whether_the_sessions_own_or_the_markets(
    db: AsyncSession,
) -> None:
    sym = symbol()
    session_id = await active_session(db, loss_limit=D(150))
    await trade(db, session_id, sym, Side.BUY, "10", "100")
    ledger = LedgerRepository(db)
    await ledger.add_mark(session_id, sym, D(90), T0 + timedelta(seconds=10))
    await market(db, sym, "95", T0)  # older than the session's own: ignored

    row = await swept(db, session_id)
    assert row is not None
    assert (row.unrealized, row.loss) == (D(-100), D(100))  # (90 - 100) * 10
    assert (await ledger.pnl(session_id)).unrealized_pnl == D(-100)

    await market(db, sym, "80", T0 + timedelta(seconds=20))  # newer: the market's counts
    row = await swept(db, session_id)
    assert row is not None
    assert row.loss == D(200)
    assert (await ledger.pnl(session_id)).unrealized_pnl == D(-200)
    assert await ledger.latest_marks(session_id) == {sym: D(80)}

    # a tie goes to the session's own mark
    await ledger.add_mark(session_id, sym, D(91), T0 + timedelta(seconds=30))
    await market(db, sym, "70", T0 + timedelta(seconds=30))
    row = await swept(db, session_id)
    assert row is not None
    assert row.loss == D(90)
    assert await ledger.latest_marks(session_id) == {sym: D(91)}


async def test_a_short_position_loses_when_the_market_rises(db: AsyncSession) -> None:
    sym = symbol()
    session_id = await active_session(db, loss_limit=D(100))
    await trade(db, session_id, sym, Side.SELL, "5", "20", fee="1")
    await market(db, sym, "22", T0)

    row = await swept(db, session_id)

    # realized -1 (fee), unrealized (22 - 20) * -5 = -10: loss 11, 11 % of 100
    assert row is not None
    assert (row.realized, row.unrealized, row.loss) == (D(-1), D(-10), D(11))
    assert row.wake_reason() is WakeReason.MOVED


async def test_without_a_mark_only_realized_pnl_counts(db: AsyncSession) -> None:
    session_id = await active_session(db, loss_limit=D(10))
    await trade(db, session_id, symbol(), Side.BUY, "10", "100", fee="12")

    row = await swept(db, session_id)

    assert row is not None
    assert (row.unrealized, row.loss) == (D(0), D(12))
    assert row.breached
    assert row.wake_reason() is WakeReason.LIMIT


async def test_a_profitable_session_is_checked_but_needs_no_wake(db: AsyncSession) -> None:
    fleet = FleetRepository(db)
    before = (await fleet.sweep_losses(0, 1)).checked
    sym = symbol()
    session_id = await active_session(db)
    await trade(db, session_id, sym, Side.BUY, "10", "100")
    await market(db, sym, "120", T0)

    losses = await fleet.sweep_losses(0, 1)

    assert losses.checked == before + 1
    assert found(losses, session_id) is None


async def test_only_active_sessions_are_swept(db: AsyncSession) -> None:
    fleet = FleetRepository(db)
    before = (await fleet.sweep_losses(0, 1)).checked
    ids = []
    for status in (SessionStatus.PENDING, SessionStatus.ENDING, SessionStatus.LOSS_LIMIT):
        session_id = await active_session(db, status=status, loss_limit=D(1))
        await trade(db, session_id, symbol(), Side.BUY, "1", "100", fee="5")
        ids.append(session_id)

    losses = await fleet.sweep_losses(0, 1)

    assert losses.checked == before
    assert not {s.session_id for s in losses.sessions} & set(ids)


async def test_each_session_is_swept_by_the_shard_its_stable_hash_names(
    db: AsyncSession,
) -> None:
    fleet = FleetRepository(db)
    ids = []
    for _ in range(8):
        session_id = await active_session(db, loss_limit=D(1))
        await trade(db, session_id, symbol(), Side.BUY, "1", "100", fee="5")
        ids.append(session_id)

    by_shard = {shard: await fleet.sweep_losses(shard, 3) for shard in range(3)}

    everyone = (await fleet.sweep_losses(0, 1)).checked
    assert sum(losses.checked for losses in by_shard.values()) == everyone
    for session_id in ids:
        shards = [s for s, losses in by_shard.items() if found(losses, session_id)]
        assert shards == [shard_of(session_id, 3)]


async def test_the_statement_returns_only_sessions_that_may_need_waking(
    db: AsyncSession,
) -> None:
    sym = symbol()

    async def at_85_percent(**overrides: Any) -> str:
        session_id = await active_session(db, loss_limit=D(1000), **overrides)
        await trade(db, session_id, sym, Side.BUY, "10", "100")
        return session_id

    warned_and_published = await at_85_percent(loss_warnings_sent=[0.8], published_loss_pct=84)
    warned_not_published = await at_85_percent(loss_warnings_sent=[0.8], published_loss_pct=0)
    not_warned = await at_85_percent(published_loss_pct=85)
    await market(db, sym, "15", T0)  # loss 850: 85 %

    losses = await FleetRepository(db).losses_holding([sym, "OTHER"])

    assert losses.checked == 3
    assert found(losses, warned_and_published) is None
    reasons = {s.session_id: s.wake_reason() for s in losses.sessions}
    assert reasons == {warned_not_published: WakeReason.MOVED, not_warned: WakeReason.WARNING}
    assert [s.session_id for s, _ in losses.to_wake()] == list(reasons)


async def test_losses_holding_sees_only_sessions_with_an_open_position_in_the_symbols(
    db: AsyncSession,
) -> None:
    sym, other = symbol(), symbol()
    holder = await active_session(db, loss_limit=D(10))
    await trade(db, holder, sym, Side.BUY, "1", "100")
    flat = await active_session(db, loss_limit=D(10))
    await trade(db, flat, sym, Side.BUY, "1", "100")
    await trade(db, flat, sym, Side.SELL, "1", "80")  # realized -20, but nothing open
    elsewhere = await active_session(db, loss_limit=D(10))
    await trade(db, elsewhere, other, Side.BUY, "1", "100")
    await market(db, sym, "50", T0)

    losses = await FleetRepository(db).losses_holding([sym])

    assert losses.checked == 1
    assert [(s.session_id, s.loss) for s in losses.sessions] == [(holder, D(50))]
    assert await FleetRepository(db).losses_holding([]) == FleetLosses(0, [])


async def test_close_gates_closes_open_gates_once_and_audits_each(db: AsyncSession) -> None:
    fleet = FleetRepository(db)
    first = await active_session(db)
    second = await active_session(db)
    already = await active_session(db, gate_open=False, gate_reason="paused")

    closed = await fleet.close_gates([first, second, already], "loss limit reached")
    again = await fleet.close_gates([first, second], "loss limit reached")

    assert closed == sorted([first, second])
    assert again == []
    for session_id in (first, second):
        row = await SessionRepository(db).get(session_id, for_update=True)
        assert (row.gate_open, row.gate_reason) == (False, "loss limit reached")
        events = await AuditRepository(db).for_session(session_id)
        assert [(e.action, e.actor) for e in events] == [("gate.closed", "risk")]
    assert await AuditRepository(db).for_session(already) == []


async def test_claim_wakes_wakes_once_per_window_and_a_reached_limit_once(
    db: AsyncSession,
) -> None:
    fleet = FleetRepository(db)
    warned = await active_session(db)
    breached = await active_session(db)
    wakes = {warned: WakeReason.MOVED, breached: WakeReason.LIMIT}
    window = timedelta(seconds=1)

    first = await fleet.claim_wakes(wakes, T0, window, "mark")
    soon = await fleet.claim_wakes(wakes, T0 + timedelta(milliseconds=500), window, "mark")
    later = await fleet.claim_wakes(wakes, T0 + timedelta(seconds=2), window, "mark")
    # The limit was signalled: every batch and sweep after it leaves the winding-down
    # workflow alone until LIMIT_REWAKE has passed, then signals it once more.
    again = await fleet.claim_wakes(wakes, T0 + LIMIT_REWAKE, window, "sweep")

    assert first == sorted([warned, breached])
    assert soon == []
    assert later == [warned]
    assert again == sorted([warned, breached])
    row = await SessionRepository(db).get(breached, for_update=True)
    assert (row.last_woken_at, row.last_wake_reason, row.last_checked_by) == (
        T0 + LIMIT_REWAKE,
        "limit",
        "sweep",
    )


async def test_a_limit_reached_right_after_another_wake_is_signalled_at_once(
    db: AsyncSession,
) -> None:
    fleet = FleetRepository(db)
    session_id = await active_session(db)
    window = timedelta(seconds=1)

    warned = await fleet.claim_wakes({session_id: WakeReason.WARNING}, T0, window, "mark")
    limit = await fleet.claim_wakes(
        {session_id: WakeReason.LIMIT}, T0 + timedelta(milliseconds=100), window, "mark"
    )

    assert (warned, limit) == ([session_id], [session_id])


async def test_a_market_mark_older_than_the_stored_one_does_not_replace_it(
    db: AsyncSession,
) -> None:
    sym = symbol()
    session_id = await active_session(db)
    await trade(db, session_id, sym, Side.BUY, "1", "100")
    marks = MarketMarkRepository(db)

    assert await marks.upsert([NewMarketMark(sym, D(90), T0 + timedelta(seconds=5))]) == [sym]
    assert await marks.upsert([NewMarketMark(sym, D(50), T0)]) == []
    # twice in one batch: the newer counts, wherever it stands
    batch = [
        NewMarketMark(sym, D(97), T0 + timedelta(seconds=9)),
        NewMarketMark(sym, D(96), T0 + timedelta(seconds=7)),
    ]
    assert await marks.upsert(batch) == [sym]

    assert await LedgerRepository(db).latest_marks(session_id) == {sym: D(97)}


async def test_a_sweep_record_is_kept_per_shard_and_a_late_older_one_is_ignored(
    db: AsyncSession,
) -> None:
    fleet = FleetRepository(db)
    shards = 1000 + uuid.uuid4().int % 1000  # a shard count no other test records
    later = T0 + timedelta(seconds=30)

    await fleet.record_sweep(0, shards, T0, T0 + timedelta(seconds=1), 10, 1)
    await fleet.record_sweep(0, shards, later, later, 12, 0)
    await fleet.record_sweep(0, shards, T0, T0 + timedelta(seconds=2), 10, 1)  # late
    await fleet.record_sweep(1, shards, later, later, 3, 0)

    assert await fleet.last_sweeps(shards) == {0: later, 1: later}


# --- agreement with domain.limits on random ledgers -------------------------------------

SYMBOLS = ("AAA", "BBB", "CCC")
prices = st.decimals(min_value=1, max_value=200, places=2)
fills = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from(Side),
        st.integers(min_value=1, max_value=50),
        prices,
        st.decimals(min_value=0, max_value=2, places=2),
    ),
    max_size=6,
)
# (symbol, price, seconds after T0): the session's own marks and the market's
marks = st.lists(st.tuples(st.sampled_from(SYMBOLS), prices, st.integers(0, 5)), max_size=4)
ledgers = st.lists(
    st.fixed_dictionaries(
        {
            "fills": fills,
            "marks": marks,
            "loss_limit": st.decimals(min_value=1, max_value=3000, places=2),
            "warned": st.sampled_from([[], [0.5], [0.5, 0.8]]),
            "published": st.integers(0, 120).map(float),
        }
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ledgers=ledgers, market_marks=marks)
async def test_the_statement_agrees_with_domain_limits_on_random_ledgers(
    db: AsyncSession, ledgers: list[dict[str, Any]], market_marks: list[tuple[str, Decimal, int]]
) -> None:
    async with db.begin_nested() as example:
        prefix = uuid.uuid4().hex[:8]  # market marks are global: each example its own symbols
        ledger, fleet = LedgerRepository(db), FleetRepository(db)
        ids = []
        for spec in ledgers:
            session_id = await active_session(
                db,
                loss_limit=spec["loss_limit"],
                warning_thresholds=[0.5, 0.8],
                loss_warnings_sent=spec["warned"],
                published_loss_pct=spec["published"],
            )
            for sym, side, qty, price, fee in spec["fills"]:
                await trade(db, session_id, prefix + sym, side, str(qty), str(price), str(fee))
            for sym, price, seconds in spec["marks"]:
                await ledger.add_mark(
                    session_id, prefix + sym, price, T0 + timedelta(seconds=seconds)
                )
            ids.append(session_id)
        for sym, price, seconds in market_marks:
            await market(db, prefix + sym, str(price), T0 + timedelta(seconds=seconds))

        losses = await fleet.sweep_losses(0, 1)
        for session_id, spec in zip(ids, ledgers, strict=True):
            figures = await ledger.pnl(session_id)
            loss = session_loss(figures.realized_pnl, figures.unrealized_pnl)
            expected = wake_reason(
                loss, spec["loss_limit"], [0.5, 0.8], spec["warned"], spec["published"]
            )
            row = found(losses, session_id)
            if expected is not None:  # the prefilter never drops a session that needs a wake
                assert row is not None
                assert row.wake_reason() is expected
            if row is not None:
                assert (row.loss, row.realized, row.unrealized) == (
                    loss,
                    figures.realized_pnl,
                    figures.unrealized_pnl,
                )

        # a published figure far off makes every session a candidate: compare them all
        await db.execute(
            update(TradingSession)
            .where(TradingSession.id.in_(ids))
            .values(published_loss_pct=-1000.0)
        )
        losses = await fleet.sweep_losses(0, 1)
        for session_id in ids:
            figures = await ledger.pnl(session_id)
            row = found(losses, session_id)
            assert row is not None
            assert row.loss == session_loss(figures.realized_pnl, figures.unrealized_pnl)
        await example.rollback()
