"""Termination steps on real PostgreSQL: each run twice has one effect."""

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.broker import PaperBroker
from activities.termination import TerminationActivities
from domain.positions import Side
from domain.status import EndReason, SessionStatus
from domain.termination_messages import StepInput
from store.algorithms import HALT_CHANNEL
from store.audit import AuditRepository
from store.ledger import LedgerRepository, NewFill
from store.models import Fill, Order, Position
from store.sessions import SessionRepository
from store.termination import PortfolioRepository
from tests.fixtures.factories import session_values

D = Decimal
Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture
async def termination(sessionmaker: Sessionmaker) -> TerminationActivities:
    return TerminationActivities(sessionmaker, PaperBroker(sessionmaker), httpx.AsyncClient())


async def active_session(sessionmaker: Sessionmaker) -> StepInput:
    values = session_values(account_id=f"acc-{uuid.uuid4().hex[:8]}", status=SessionStatus.ACTIVE)
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(values)
    return StepInput(
        session_id=values["id"],
        account_id=values["account_id"],
        algorithm_id=values["algorithm_id"],
        end_reason=EndReason.LOSS_LIMIT,
        detail="loss reached limit",
        actor="system",
        ended_at=datetime.now(UTC),
        workflow_id=values["workflow_id"],
        run_id="run-1",
    )


async def trade(sessionmaker: Sessionmaker, session_id: str, *fills: NewFill) -> None:
    async with sessionmaker.begin() as db:
        await SessionRepository(db).get(session_id, for_update=True)
        for fill in fills:
            await LedgerRepository(db).apply_fill(session_id, fill)


def fill(fill_id: str, symbol: str, side: Side, quantity: int, price: str) -> NewFill:
    return NewFill(fill_id, symbol, side, D(quantity), D(price), D(0), datetime.now(UTC))


async def actions(sessionmaker: Sessionmaker, session_id: str) -> list[str]:
    async with sessionmaker() as db:
        return [e.action for e in await AuditRepository(db).for_session(session_id)]


async def test_halt_closes_the_gate_marks_ending_and_notifies_listeners_once(
    sessionmaker: Sessionmaker, termination: TerminationActivities, database_url: str
) -> None:
    step = await active_session(sessionmaker)
    listener = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(HALT_CHANNEL, lambda *args: received.put_nowait(args[3]))
    try:
        first = await ActivityEnvironment().run(termination.halt_algorithm, step)
        second = await ActivityEnvironment().run(termination.halt_algorithm, step)
        message = json.loads(await asyncio.wait_for(received.get(), timeout=5))
    finally:
        await listener.close()

    async with sessionmaker() as db:
        row = await SessionRepository(db).get(step.session_id)
    assert (row.status, row.gate_open) == (SessionStatus.ENDING, False)
    assert row.gate_reason == "halted: LOSS_LIMIT"
    assert message == {
        "session_id": step.session_id,
        "algorithm_id": "algo-1",
        "reason": "LOSS_LIMIT",
        "detail": "loss reached limit",
    }
    assert (first.already_done, second.already_done) == (False, True)
    assert received.empty()  # the retry did not halt a second time
    assert (await actions(sessionmaker, step.session_id)).count("algorithm.halted") == 1


async def test_cancel_orders_cancels_only_open_orders_once(
    sessionmaker: Sessionmaker, termination: TerminationActivities
) -> None:
    step = await active_session(sessionmaker)
    async with sessionmaker.begin() as db:
        for order_id, status in (("o1", "OPEN"), ("o2", "OPEN"), ("o3", "FILLED")):
            db.add(
                Order(
                    session_id=step.session_id,
                    order_id=order_id,
                    symbol="ACME",
                    side="BUY",
                    quantity=D(1),
                    status=status,
                )
            )

    first = await ActivityEnvironment().run(termination.cancel_orders, step)
    second = await ActivityEnvironment().run(termination.cancel_orders, step)

    async with sessionmaker() as db:
        stmt = select(Order.order_id, Order.status).where(Order.session_id == step.session_id)
        statuses = {o: s for o, s in (await db.execute(stmt.order_by(Order.order_id))).all()}
    assert statuses == {"o1": "CANCELLED", "o2": "CANCELLED", "o3": "FILLED"}
    assert first.details["cancelled"] == "2"
    assert second.already_done
    assert (await actions(sessionmaker, step.session_id)).count("orders.cancelled") == 1


async def test_flatten_closes_every_position_at_the_latest_mark_with_fees_once(
    sessionmaker: Sessionmaker, termination: TerminationActivities
) -> None:
    step = await active_session(sessionmaker)
    await trade(
        sessionmaker,
        step.session_id,
        fill("b1", "ACME", Side.BUY, 10, "100"),
        fill("s1", "GLOBX", Side.SELL, 5, "50"),
    )
    async with sessionmaker.begin() as db:
        ledger = LedgerRepository(db)
        await ledger.add_mark(step.session_id, "ACME", D(80), datetime.now(UTC))
        await ledger.add_mark(step.session_id, "GLOBX", D(40), datetime.now(UTC))

    await ActivityEnvironment().run(termination.flatten_positions, step)
    second = await ActivityEnvironment().run(termination.flatten_positions, step)

    async with sessionmaker() as db:
        positions = (
            await db.execute(select(Position).where(Position.session_id == step.session_id))
        ).scalars()
        closing = {
            f.fill_id: (f.side, f.quantity, f.price, f.fee, f.realized_pnl)
            for f in (
                await db.execute(select(Fill).where(Fill.session_id == step.session_id))
            ).scalars()
            if f.fill_id.startswith("flatten:")
        }
        row = await SessionRepository(db).get(step.session_id)
    assert all(p.quantity == 0 for p in positions)
    # ACME: sell 10 @ 80, fee 10*80*0.0005 = 0.4, pnl (80-100)*10 - 0.4 = -200.4
    # GLOBX: buy 5 @ 40, fee 5*40*0.0005 = 0.1, pnl (50-40)*5 - 0.1 = 49.9
    assert closing == {
        "flatten:ACME": ("SELL", D(10), D(80), D("0.4"), D("-200.4")),
        "flatten:GLOBX": ("BUY", D(5), D(40), D("0.1"), D("49.9")),
    }
    assert row.realized_pnl == D("-150.5")
    assert second.already_done


async def test_portfolio_is_updated_exactly_once_per_session(
    sessionmaker: Sessionmaker, termination: TerminationActivities
) -> None:
    step = await active_session(sessionmaker)
    await trade(
        sessionmaker,
        step.session_id,
        fill("b", "ACME", Side.BUY, 10, "100"),
        fill("s", "ACME", Side.SELL, 10, "97.5"),
    )

    first = await ActivityEnvironment().run(termination.update_portfolio, step)
    second = await ActivityEnvironment().run(termination.update_portfolio, step)

    async with sessionmaker() as db:
        portfolio = await PortfolioRepository(db).get(step.account_id)
    assert portfolio is not None
    assert (portfolio.cash, portfolio.realized_pnl) == (D(-25), D(-25))
    assert (first.already_done, second.already_done) == (False, True)
    assert (await actions(sessionmaker, step.session_id)).count("portfolio.updated") == 1


async def test_session_ended_notification_is_queued_once(
    sessionmaker: Sessionmaker, termination: TerminationActivities
) -> None:
    step = await active_session(sessionmaker)

    first = await ActivityEnvironment().run(termination.notify_ended, step)
    second = await ActivityEnvironment().run(termination.notify_ended, step)

    assert first.notification_id is not None
    assert first.notification_id == second.notification_id
