"""The fleet sweep on the time-skipping server: the safety net for a lost signal.

The sweep sweeps every ACTIVE session in the (shared) test database; sessions other tests
left behind belong to other servers, so their signals fail and are counted, nothing more.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.late_fills import late_fill_workflow_id
from domain.positions import Side
from domain.status import EndReason, SessionStatus
from domain.sweep import SweepInput, shard_of
from store.ledger import LedgerRepository, NewFill
from store.models import PortfolioSettlement
from store.sessions import SessionRepository
from store.termination import AlertRepository
from tests.workflows.helpers import start_session
from tests.workflows.histories import keep_history
from tests.workflows.test_session_workflow import (
    audit_actions,
    record_losing_trade,
    wait_until_active,
)
from tests.workflows.test_termination_workflow import buy_and_mark
from workflows import search_attributes as sa
from workflows.session import TradingSessionWorkflow
from workflows.sweep import FleetSweepWorkflow

Sessionmaker = async_sessionmaker[AsyncSession]
Sweep = WorkflowHandle[FleetSweepWorkflow, None]
INTERVAL = timedelta(seconds=30)
NEVER = 10.0**9
# Enough shards that a session's shard holds few rows other tests left behind.
MANY_SHARDS = 64


@pytest.fixture
async def sweep(time_env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[Sweep]:
    """The one shard's sweep, every 30 s, on this test's queue."""
    handle = await time_env.client.start_workflow(
        FleetSweepWorkflow.run,
        SweepInput(
            shard=0,
            shards=1,
            interval_seconds=INTERVAL.total_seconds(),
            # Reconciling is tested on its own, in a shard of the session's alone: here it
            # would wind down what other tests left in the shared database.
            reconcile_every_seconds=NEVER,
            sweeps_per_run=3,
        ),
        id=f"sweep-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    yield handle
    await handle.terminate("test over")


async def test_a_breach_whose_signal_was_lost_ends_the_session_within_one_sweep(
    time_env: WorkflowEnvironment,
    sessionmaker: Sessionmaker,
    task_queue: str,
    sweep: Sweep,
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, loss_limit=Decimal(500)
    )
    await wait_until_active(handle)
    breached_at = await time_env.get_current_time()
    # No signal reaches the workflow: only the sweep can see this loss.
    await record_losing_trade(sessionmaker, values["id"], Decimal(600))

    result = await handle.result()
    await keep_history(sweep, "fleet_sweep")

    assert result.end_reason is EndReason.LOSS_LIMIT
    assert result.ended_at - breached_at <= INTERVAL + timedelta(seconds=1)
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(values["id"])
    assert row.end_detail == "loss 600 reached limit 500"
    # The sweep closed the gate in the transaction that found the breach.
    actions = await audit_actions(sessionmaker, values["id"])
    assert actions.index("gate.closed") < actions.index("session.ended")


async def test_a_warning_the_sweep_finds_is_sent_exactly_once(
    time_env: WorkflowEnvironment,
    sessionmaker: Sessionmaker,
    task_queue: str,
    sweep: Sweep,
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)
    await wait_until_active(handle)
    await record_losing_trade(sessionmaker, values["id"], Decimal(850))  # 85 % of 1000

    for _ in range(5):  # five sweeps
        await time_env.sleep(INTERVAL)
    view = await handle.query(TradingSessionWorkflow.get_status)
    await handle.signal(TradingSessionWorkflow.request_termination, {"reason": "done"})
    await handle.result()

    assert view.loss_warnings_sent == [0.8]
    assert view.checks == 1  # woken once: the warning sent and LossUsedPct published
    assert (await audit_actions(sessionmaker, values["id"])).count("warning.loss") == 1


async def test_loss_used_pct_follows_the_sweep(
    time_env: WorkflowEnvironment,
    sessionmaker: Sessionmaker,
    task_queue: str,
    sweep: Sweep,
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)
    await wait_until_active(handle)
    await record_losing_trade(sessionmaker, values["id"], Decimal(300))  # 30 %, no warning

    await time_env.sleep(INTERVAL * 2)
    for _ in range(100):
        attributes = (await handle.describe()).typed_search_attributes
        if attributes.get(sa.LOSS_USED_PCT) == 30.0:
            break
        await asyncio.sleep(0.05)

    assert attributes.get(sa.LOSS_USED_PCT) == 30.0
    assert (await handle.query(TradingSessionWorkflow.get_status)).loss_warnings_sent == []
    await handle.signal(TradingSessionWorkflow.request_termination, {"reason": "done"})
    await handle.result()


async def test_a_session_whose_workflow_was_terminated_is_wound_down_by_the_reconciler(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, task_queue: str
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)
    await wait_until_active(handle)
    await buy_and_mark(sessionmaker, values["id"], "95")
    # What `temporal workflow terminate` (or the Web UI's Terminate) does: no clean-up.
    await handle.terminate("operator clicked Terminate")
    sweep = await time_env.client.start_workflow(
        FleetSweepWorkflow.run,
        SweepInput(
            shard=shard_of(values["id"], MANY_SHARDS),
            shards=MANY_SHARDS,
            interval_seconds=INTERVAL.total_seconds(),
            reconcile_every_seconds=INTERVAL.total_seconds(),
            reconcile_min_age_seconds=0,
            sweeps_per_run=3,
        ),
        id=f"sweep-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    try:
        repaired = time_env.client.get_workflow_handle_for(
            TradingSessionWorkflow.run, values["workflow_id"]
        )
        for _ in range(200):  # the repair run starts within one sweep
            await time_env.sleep(INTERVAL)
            if (await repaired.describe()).run_id != handle.result_run_id:
                break
        result = await repaired.result()
    finally:
        await sweep.terminate("test over")

    assert result.end_reason is EndReason.ORPHANED
    assert result.status is SessionStatus.TERMINATED
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(values["id"])
        alerts = await AlertRepository(db).for_session(values["id"])
        positions = await LedgerRepository(db).positions(values["id"])
    assert (row.status, row.end_reason, row.gate_open) == ("TERMINATED", "ORPHANED", False)
    assert all(p.quantity == 0 for p in positions)  # flattened by the same steps
    assert [a.kind for a in alerts] == ["reconcile_orphaned"]
    actions = await audit_actions(sessionmaker, values["id"])
    for once in ("session.reconciled.orphaned", "positions.flattened", "session.ended"):
        assert actions.count(once) == 1, once


async def test_an_ended_session_a_late_fill_reopened_is_flattened_again_by_the_reconciler(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, task_queue: str
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)
    await wait_until_active(handle)
    await buy_and_mark(sessionmaker, values["id"], "95")  # long 10 at 100, marked 95
    await handle.signal(TradingSessionWorkflow.request_termination, {"reason": "done"})
    await handle.result()  # flattened SELL 10 @ 95: realized -50 less the fee
    # The broker reports a fill the API never saw before the end (no follow-up started).
    async with sessionmaker.begin() as db:
        await SessionRepository(db).get(values["id"], for_update=True)
        late = NewFill(
            "late-1",
            "ACME",
            Side.BUY,
            Decimal(4),
            Decimal(96),
            Decimal(0),
            datetime.now(UTC),
            late=True,
            order_id="o-1",
        )
        await LedgerRepository(db).apply_fill(values["id"], late)
    sweep = await time_env.client.start_workflow(
        FleetSweepWorkflow.run,
        SweepInput(
            shard=shard_of(values["id"], MANY_SHARDS),
            shards=MANY_SHARDS,
            interval_seconds=INTERVAL.total_seconds(),
            reconcile_every_seconds=INTERVAL.total_seconds(),
            reconcile_min_age_seconds=0,
            sweeps_per_run=3,
        ),
        id=f"sweep-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    follow_up = time_env.client.get_workflow_handle(late_fill_workflow_id(values["id"]))
    try:
        for _ in range(200):  # started within one reconciliation
            await time_env.sleep(INTERVAL)
            with contextlib.suppress(RPCError):
                await follow_up.describe()
                break
        await follow_up.result()
    finally:
        await sweep.terminate("test over")

    async with sessionmaker() as db:
        row = await SessionRepository(db).get(values["id"])
        positions = await LedgerRepository(db).positions(values["id"])
        settled = await db.get(PortfolioSettlement, values["id"])
    assert all(p.quantity == 0 for p in positions)
    assert settled is not None
    assert settled.realized_pnl == row.realized_pnl
    # -50 on the first 10 and -4 on the late 4 (bought at 96, sold at 95), less two fees.
    fees = Decimal("0.475") + Decimal("0.19")
    assert row.realized_pnl == Decimal(-54) - fees
    actions = await audit_actions(sessionmaker, values["id"])
    for once in ("session.reconciled.late_fills", "positions.reflattened", "portfolio.resettled"):
        assert actions.count(once) == 1, once
