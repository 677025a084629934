"""The kill switch's statement on real PostgreSQL: one statement closes every open gate in
the scope, records its targets and audits each closing; the scope is locked until re-armed."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kill_switch import KillScope, ScopeKind
from domain.status import SessionStatus
from store.audit import AuditRepository
from store.kill_switch import KillSwitchRepository
from store.models import TradingSession
from tests.fixtures.store import create_session, unique_account


async def _gate(db: AsyncSession, session_id: str) -> bool:
    stmt = select(TradingSession.gate_open).where(TradingSession.id == session_id)
    return bool((await db.execute(stmt)).scalar_one())


async def test_engaging_an_account_closes_every_open_gate_of_it_and_no_other(
    db: AsyncSession,
) -> None:
    account, other = unique_account(), unique_account()
    active = await create_session(db, account_id=account, status=SessionStatus.ACTIVE)
    pending = await create_session(db, account_id=account, algorithm_id="algo-2")
    ended = await create_session(db, account_id=account, status=SessionStatus.EXPIRED)
    elsewhere = await create_session(db, account_id=other, status=SessionStatus.ACTIVE)
    repo = KillSwitchRepository(db)

    await repo.lock_for_engage()
    switch = await repo.engage(KillScope(kind=ScopeKind.ACCOUNT, value=account), "drill", "ops")
    targeted = await repo.close_scope(switch)

    assert targeted == 2
    assert [await _gate(db, s) for s in (active, pending, elsewhere)] == [False, False, True]
    assert await _gate(db, ended) is True  # an ended session is not the switch's
    audit = await AuditRepository(db).for_session(active)
    assert [(e.action, e.actor) for e in audit] == [("gate.closed", "ops")]
    progress = await repo.progress(switch.id)
    assert (progress.targeted, progress.ended, progress.winding_down_count) == (2, 0, 2)
    assert sorted(s for s, _ in await repo.unsignalled(switch.id)) == sorted([active, pending])


async def test_a_second_press_finds_the_switch_and_audits_nothing_twice(db: AsyncSession) -> None:
    account = unique_account()
    session_id = await create_session(db, account_id=account, status=SessionStatus.ACTIVE)
    repo = KillSwitchRepository(db)
    scope = KillScope(kind=ScopeKind.ACCOUNT, value=account)
    switch = await repo.engage(scope, "drill", "ops")
    await repo.close_scope(switch)

    again = await repo.engaged_on(scope)
    assert again is not None
    assert again.id == switch.id
    assert await repo.close_scope(again) == 1
    assert len(await AuditRepository(db).for_session(session_id)) == 1


async def test_the_scope_is_locked_until_rearmed(db: AsyncSession) -> None:
    account = unique_account()
    repo = KillSwitchRepository(db)
    switch = await repo.engage(KillScope(kind=ScopeKind.ALGORITHM, value=account), "x", "ops")

    covering = await repo.engaged_covering("any-account", account)
    not_covering = await repo.engaged_covering(account, "another-algo")
    await repo.rearm(switch, "admin", "all clear")
    after = await repo.engaged_covering("any-account", account)

    assert covering is not None
    assert covering.id == switch.id
    assert (not_covering, after) == (None, None)
    assert switch.rearmed_by == "admin"


async def test_recording_signals_moves_targets_out_of_the_unsignalled(db: AsyncSession) -> None:
    account = unique_account()
    first = await create_session(db, account_id=account, status=SessionStatus.ACTIVE)
    second = await create_session(db, account_id=account, status=SessionStatus.ACTIVE)
    repo = KillSwitchRepository(db)
    switch = await repo.engage(KillScope(kind=ScopeKind.ACCOUNT, value=account), "x", "ops")
    await repo.close_scope(switch)

    await repo.record_signals(switch.id, [first], {second: "workflow not found"})

    assert [s for s, _ in await repo.unsignalled(switch.id)] == [second]
    progress = await repo.progress(switch.id)
    assert (progress.signalled, progress.signal_failures) == (1, {second: "workflow not found"})
