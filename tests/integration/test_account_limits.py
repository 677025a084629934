"""The account's daily loss limit across its sessions: the one statement on real PostgreSQL
with hand-computed numbers, and the whole path on the dev server (sweep, kill switch)."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.account_risk import AccountVerdict, account_audit_id
from domain.positions import Side
from domain.status import SessionStatus
from domain.sweep import SweepInput
from starter.runtime.settings import Settings
from store.account_risk import AccountRiskRepository
from store.audit import AuditRepository
from store.ledger import LedgerRepository
from store.models import Notification, TradingSession
from tests.fixtures.store import create_session, fill, unique_account
from tests.integration.api_helpers import fill_body, session_body, wait_for_status
from workflows.sweep import FleetSweepWorkflow

D = Decimal
NOW = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
NEVER = 10**9


async def ended(db: AsyncSession, session_id: str, realized: str, at: datetime) -> None:
    await db.execute(
        update(TradingSession)
        .where(TradingSession.id == session_id)
        .values(status=SessionStatus.LOSS_LIMIT, realized_pnl=D(realized), ended_at=at)
    )


async def test_the_days_loss_sums_open_sessions_at_their_marks_and_ended_ones_final_pnl(
    db: AsyncSession,
) -> None:
    account, other = unique_account(), unique_account()
    repo = AccountRiskRepository(db)
    await repo.set_daily_loss_limit(account, D(500), "test")
    start = NOW - timedelta(hours=2)
    # Open: long 10 ACME at 100, marked 96: unrealized -40, realized -15 (a fee).
    live = await create_session(db, account_id=account, status=SessionStatus.ACTIVE, start=start)
    ledger = LedgerRepository(db)
    await ledger.apply_fill(live, fill("b", Side.BUY, "10", "100", fee="15"))
    await ledger.add_mark(live, "ACME", D(96), NOW)
    # Ended today at -200 (flat): its final realized PnL counts.
    today = await create_session(db, account_id=account, start=start)
    await ended(db, today, "-200", NOW - timedelta(hours=1))
    # Ended yesterday: another day's loss. Another account's: not this one's.
    yesterday = await create_session(db, account_id=account, start=start - timedelta(days=1))
    await ended(db, yesterday, "-1000", NOW - timedelta(days=1))
    await create_session(db, account_id=other, status=SessionStatus.ACTIVE, start=start)

    (day,) = [d for d in await repo.days(NOW) if d.account_id == account]
    (alone,) = await repo.days(NOW, account)
    (unlimited,) = await repo.days(NOW, other)

    assert (day.realized, day.unrealized) == (D(-215), D(-40))
    assert day.loss == D(255)
    assert (day.sessions, day.open_sessions) == (2, 1)
    assert day.used == 0.51
    assert day.verdict() is None
    assert alone == day
    assert unlimited.daily_loss_limit is None
    assert unlimited.verdict() is None
    assert other not in [d.account_id for d in await repo.days(NOW)]  # no limit: not swept


async def test_a_profitable_session_offsets_a_losing_one_of_the_same_day(db: AsyncSession) -> None:
    account = unique_account()
    repo = AccountRiskRepository(db)
    await repo.set_daily_loss_limit(account, D(100), "test")
    for realized in ("-150", "70"):
        session_id = await create_session(db, account_id=account, start=NOW - timedelta(hours=1))
        await ended(db, session_id, realized, NOW)

    (day,) = await repo.days(NOW, account)

    assert day.loss == D(80)
    assert day.verdict() is AccountVerdict.WARN
    assert await repo.claim(account, day.day, breach=False)
    assert not await repo.claim(account, day.day, breach=False)  # once a day
    assert (await repo.days(NOW, account))[0].verdict() is None


async def account_events(
    sessionmaker: async_sessionmaker[AsyncSession], account: str
) -> list[tuple[str, dict[str, Any]]]:
    async with sessionmaker() as db:
        trail = await AuditRepository(db).for_session(account_audit_id(account))
        sent = await db.execute(select(Notification.kind).where(Notification.account_id == account))
        return [(e.action, e.details) for e in trail] + [
            (f"notification:{kind}", {}) for kind in sent.scalars()
        ]


async def risk_becomes(
    api: httpx.AsyncClient, account: str, field: str, timeout: float = 20.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body: dict[str, Any] = (await api.get(f"/accounts/{account}/risk")).json()
        if body[field] or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.2)


async def test_the_account_limit_warns_once_then_ends_every_open_session_and_locks_the_account(
    api: httpx.AsyncClient,
    dev_client: Client,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    account = unique_account()
    put = await api.put(f"/accounts/{account}/limits", json={"daily_loss_limit": "100"})
    first, second = session_body(account_id=account), session_body(account_id=account)
    for body in (first, second):
        assert (await api.post("/sessions", json=body)).status_code == 201
        await wait_for_status(api, body["session_id"], {"ACTIVE"})
    one, two = first["session_id"], second["session_id"]
    await api.post(f"/sessions/{one}/fills", json=fill_body("b", "BUY", "10", "100"))
    await api.post(f"/sessions/{one}/fills", json=fill_body("s", "SELL", "10", "91.5"))  # -85
    sweep = await dev_client.start_workflow(
        FleetSweepWorkflow.run,
        SweepInput(shard=0, shards=1, interval_seconds=1, reconcile_every_seconds=NEVER),
        id=f"sweep-{uuid.uuid4()}",
        task_queue=settings.temporal_task_queue,
    )
    try:
        warned = await risk_becomes(api, account, "warned")
        await asyncio.sleep(2.5)  # two more sweeps at the same loss: no second warning
        await api.post(f"/sessions/{two}/fills", json=fill_body("b", "BUY", "10", "100"))
        await api.post(f"/sessions/{two}/fills", json=fill_body("s", "SELL", "10", "98"))  # -20
        ends = [await wait_for_status(api, sid, {"LOSS_LIMIT"}, 30) for sid in (one, two)]
        killed = (await api.get(f"/accounts/{account}/risk")).json()
        refused = await api.post("/sessions", json=session_body(account_id=account))
    finally:
        await sweep.terminate("test over")

    assert put.status_code == 200
    assert put.json()["daily_loss_limit"] == "100"
    assert (warned["warned"], warned["loss"], warned["used_pct"]) == (True, "85", 85.0)
    assert [e["end_reason"] for e in ends] == ["ACCOUNT_LOSS_LIMIT", "ACCOUNT_LOSS_LIMIT"]
    assert killed["limit_reached"] is True
    assert killed["loss"] == "105"
    assert killed["open_sessions"] == 0
    assert killed["kill_switch_id"] is not None
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "kill_switch_engaged"
    events = [action for action, _ in await account_events(sessionmaker, account)]
    assert events.count("warning.account_loss") == 1
    assert events.count("notification:warning.account_loss") == 1
    assert events.count("account.loss_limit_reached") == 1
    assert events.count("notification:account.loss_limit_reached") == 1
    switch = (await api.get(f"/kill-switch/{killed['kill_switch_id']}")).json()
    assert switch["engaged_by"] == "risk"
    assert switch["sessions_targeted"] == 2


async def test_only_risk_and_admin_set_an_account_limit_and_bad_limits_are_refused(
    api: httpx.AsyncClient,
) -> None:
    account = unique_account()
    for bad in ("0", "-5", "abc"):
        answer = await api.put(f"/accounts/{account}/limits", json={"daily_loss_limit": bad})
        assert answer.status_code == 422, bad
    unknown = await api.put(
        f"/accounts/{account}/limits", json={"daily_loss_limit": "5", "extra": 1}
    )
    cleared = await api.put(f"/accounts/{account}/limits", json={"daily_loss_limit": None})

    assert unknown.status_code == 422
    assert cleared.status_code == 200
    assert cleared.json()["daily_loss_limit"] is None
    assert (await api.get(f"/accounts/{account}/risk")).json()["used_pct"] is None
