"""Hostile or broken input to the session's handlers: the deadline and a termination win.

A NUL in a reason once made a session unkillable: its update's activity failed for ever on
PostgreSQL's encoding error, and the wind-down waited for the handler without bound.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.controls import SessionControlActivities
from activities.session import SessionActivities
from domain.session_messages import (
    CheckInput,
    CheckNowInput,
    ExtendDeadlineInput,
    GateChangeInput,
    GateInput,
    LimitChangeInput,
    PnlSnapshot,
    SetLossLimitInput,
    TerminateInput,
)
from domain.status import EndReason
from store.audit import AuditRepository
from store.models import Alert
from store.sessions import SessionRepository
from tests.workflows.helpers import start_session
from tests.workflows.test_session_workflow import record_losing_trade
from worker import create_worker
from workflows.session import TradingSessionWorkflow

Sessionmaker = async_sessionmaker[AsyncSession]
# The time-skipping server fires timers to the millisecond, a few ms late at most.
ON_TIME = timedelta(seconds=1)


async def failures_recorded(sessionmaker: Sessionmaker, session_id: str, count: int) -> None:
    for _ in range(200):
        async with sessionmaker() as db:
            trail = await AuditRepository(db).for_session(session_id)
        if [e.action for e in trail].count("handler.failed") >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} handler failures were never recorded")


@activity.defn(name="change_limits")
async def change_limits_never_answers(input: LimitChangeInput) -> None:
    raise RuntimeError("database unreachable")  # retryable: only the bound stops it


@pytest.fixture
async def broken_queue(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker
) -> AsyncIterator[str]:
    """A worker whose limit changes fail for ever, as with a database that never answers."""
    queue = f"test-{uuid.uuid4()}"
    worker = create_worker(
        time_env.client, queue, sessionmaker, replace_activities=[change_limits_never_answers]
    )
    async with worker:
        yield queue


async def test_a_nul_in_an_extend_reason_is_refused_and_the_session_expires_on_time(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, task_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, duration=timedelta(minutes=10)
    )
    later = values["end_time"] + timedelta(minutes=10)

    # As the Web UI or the CLI would send it: no client-side model in the way.
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            "extend_deadline",
            {"end_time": later.isoformat(), "actor": "op-eve", "reason": "x\u0000y"},
        )
    result = await handle.result()

    assert result.end_reason is EndReason.EXPIRED
    assert timedelta(0) <= result.ended_at - values["end_time"] < ON_TIME


async def test_a_handler_whose_activity_fails_for_ever_gives_up_and_the_deadline_wins(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, broken_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, broken_queue, duration=timedelta(minutes=10)
    )

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            TradingSessionWorkflow.set_loss_limit,
            SetLossLimitInput(loss_limit=Decimal(800), actor="op-jane", reason="tighter"),
        )
    result = await handle.result()

    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "HandlerFailed"
    assert result.end_reason is EndReason.EXPIRED
    assert timedelta(0) <= result.ended_at - values["end_time"] < ON_TIME
    async with sessionmaker() as db:
        alerts = (await db.execute(select(Alert).where(Alert.session_id == values["id"]))).all()
        trail = [e.action for e in await AuditRepository(db).for_session(values["id"])]
    assert len(alerts) == 1
    assert "handler.failed" in trail


async def test_a_termination_ends_a_session_whose_handler_is_stuck(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, broken_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, broken_queue, duration=timedelta(hours=1)
    )
    stuck = asyncio.create_task(
        handle.execute_update(
            TradingSessionWorkflow.set_loss_limit,
            SetLossLimitInput(loss_limit=Decimal(800), actor="op-jane"),
        )
    )
    await asyncio.sleep(0.5)  # the update is running its (failing) activity

    await handle.signal(
        TradingSessionWorkflow.request_termination,
        TerminateInput(reason="desk closed", actor="op-bob"),
    )
    result = await handle.result()

    assert result.end_reason is EndReason.TERMINATED
    assert result.ended_at < values["end_time"]
    with pytest.raises(WorkflowUpdateFailedError):
        await stuck


async def test_a_termination_signal_without_an_actor_is_taken_and_audited_as_unknown(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, task_queue: str
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)

    # What `temporal workflow signal --name request_termination --input '{}'` sends.
    await handle.signal("request_termination", {"reason": "from the CLI\u0000"})
    result = await handle.result()

    assert result.end_reason is EndReason.TERMINATED
    async with sessionmaker() as db:
        trail = await AuditRepository(db).for_session(values["id"])
    requested = [e for e in trail if e.action == "session.termination_requested"]
    assert [(e.actor, e.reason) for e in requested] == [("unknown", "from the CLI")]


async def test_the_terminate_update_refuses_a_session_already_ending(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, broken_queue: str
) -> None:
    handle, _ = await start_session(time_env, sessionmaker, broken_queue)
    # A stuck handler keeps the ending workflow open for a while: the second request
    # reaches the running workflow and its validator.
    stuck = asyncio.create_task(
        handle.execute_update(
            TradingSessionWorkflow.set_loss_limit,
            SetLossLimitInput(loss_limit=Decimal(800), actor="op-jane"),
        )
    )
    await asyncio.sleep(0.5)

    view = await handle.execute_update(
        TradingSessionWorkflow.terminate, TerminateInput(reason="desk closed", actor="op-a")
    )
    with pytest.raises(WorkflowUpdateFailedError) as second:
        await handle.execute_update(
            TradingSessionWorkflow.terminate, TerminateInput(reason="again", actor="op-b")
        )
    result = await handle.result()

    assert view.end_reason is EndReason.TERMINATED
    assert "already ending" in str(second.value.cause)
    assert result.end_reason is EndReason.TERMINATED
    with pytest.raises(WorkflowUpdateFailedError):
        await stuck


async def test_pause_and_resume_updates_refuse_what_changes_nothing(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, task_queue: str
) -> None:
    handle, _ = await start_session(time_env, sessionmaker, task_queue)
    request = GateChangeInput(actor="op-jane", reason="news")

    with pytest.raises(WorkflowUpdateFailedError) as not_paused:
        await handle.execute_update(TradingSessionWorkflow.resume_trading, request)
    paused = await handle.execute_update(TradingSessionWorkflow.pause_trading, request)
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await handle.execute_update(TradingSessionWorkflow.pause_trading, request)
    await handle.execute_update(
        TradingSessionWorkflow.terminate, TerminateInput(reason="done", actor="op-jane")
    )

    assert "not paused" in str(not_paused.value.cause)
    assert paused.paused is True
    assert "already paused" in str(again.value.cause)


async def test_an_extension_racing_the_deadline_wins_and_the_session_runs_on(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker
) -> None:
    real = SessionControlActivities(sessionmaker)

    async def slow_change_limits(input: LimitChangeInput) -> None:
        await asyncio.sleep(2)  # the old deadline passes while the change is written
        await real.change_limits(input)

    queue = f"test-{uuid.uuid4()}"
    slow = activity.defn(name="change_limits")(slow_change_limits)
    async with create_worker(time_env.client, queue, sessionmaker, replace_activities=[slow]):
        handle, values = await start_session(
            time_env, sessionmaker, queue, duration=timedelta(minutes=10)
        )
        await time_env.sleep(timedelta(minutes=10) - timedelta(milliseconds=500))
        later = values["end_time"] + timedelta(minutes=5)
        view = await handle.execute_update(
            TradingSessionWorkflow.extend_deadline,
            ExtendDeadlineInput(end_time=later, actor="op-jane", reason="news"),
        )
        result = await handle.result()

    assert view.end_time == later  # the extension was answered as a success...
    assert result.end_reason is EndReason.EXPIRED
    assert timedelta(0) <= result.ended_at - later < ON_TIME  # ...and it won
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(values["id"])
    assert row.ended_at is not None
    assert row.end_time <= row.ended_at


async def test_a_gate_change_the_database_refuses_is_reported_and_the_session_goes_on(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker
) -> None:
    @activity.defn(name="set_trading_gate")
    async def gate_refused(input: GateInput) -> None:
        raise ApplicationError("the database refused the values", non_retryable=True)

    queue = f"test-{uuid.uuid4()}"
    async with create_worker(
        time_env.client, queue, sessionmaker, replace_activities=[gate_refused]
    ):
        handle, values = await start_session(
            time_env, sessionmaker, queue, duration=timedelta(minutes=10)
        )
        await handle.signal(TradingSessionWorkflow.pause, {"actor": "op-sig"})
        await failures_recorded(sessionmaker, values["id"], 1)  # the signal's change gave up
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                TradingSessionWorkflow.pause_trading, GateChangeInput(actor="op-upd")
            )
        view = await handle.query(TradingSessionWorkflow.get_status)
        result = await handle.result()

    assert "refused" in str(refused.value.cause)
    assert view.paused is False  # the live state follows the store, which kept the gate
    assert result.end_reason is EndReason.EXPIRED  # the workflow did not fail
    async with sessionmaker() as db:
        trail = await AuditRepository(db).for_session(values["id"])
    failed = [e.actor for e in trail if e.action == "handler.failed"]
    assert sorted(failed) == ["op-sig", "op-upd"]


async def test_a_wake_that_arrives_during_a_check_survives_continue_as_new(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker
) -> None:
    real = SessionActivities(sessionmaker)

    async def slow_check(input: CheckInput) -> PnlSnapshot:
        snapshot = await real.check_session(input)
        await asyncio.sleep(1)  # the limit is lowered while this check runs
        return snapshot

    queue = f"test-{uuid.uuid4()}"
    slow = activity.defn(name="check_session")(slow_check)
    async with create_worker(time_env.client, queue, sessionmaker, replace_activities=[slow]):
        # One check per run: the run that made it continues as new right after.
        handle, values = await start_session(
            time_env, sessionmaker, queue, continue_as_new_after_checks=1
        )
        first_run = (await handle.describe()).run_id
        await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source="mark"))
        await asyncio.sleep(0.3)  # the check has read: no loss yet
        await record_losing_trade(sessionmaker, values["id"], Decimal(600))  # 60 % of 1000
        # Lowering the limit below the loss asks for a check; it lands in the run that is
        # about to continue as new, and must be carried into the next one.
        await handle.execute_update(
            TradingSessionWorkflow.set_loss_limit,
            SetLossLimitInput(loss_limit=Decimal(500), actor="op-jane"),
        )
        result = await handle.result()

    latest = time_env.client.get_workflow_handle(values["workflow_id"])
    assert (await latest.describe()).run_id != first_run
    assert result.end_reason is EndReason.LOSS_LIMIT
