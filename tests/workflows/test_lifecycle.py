"""Warnings, operator updates and signals, continue-as-new: on the time-skipping server."""

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.session_messages import (
    CheckNowInput,
    ExtendDeadlineInput,
    GateChangeInput,
    SetLossLimitInput,
    TerminateInput,
)
from domain.status import EndReason
from store.audit import AuditRepository
from store.models import Notification
from store.sessions import SessionRepository
from tests.workflows.helpers import Handle, start_session
from tests.workflows.histories import keep_history
from tests.workflows.test_session_workflow import record_losing_trade, wait_until_active
from workflows.session import TradingSessionWorkflow


async def actions(sessionmaker: async_sessionmaker[AsyncSession], session_id: str) -> list[str]:
    async with sessionmaker() as db:
        return [e.action for e in await AuditRepository(db).for_session(session_id)]


async def notifications(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: str
) -> list[Notification]:
    async with sessionmaker() as db:
        stmt = select(Notification).where(Notification.session_id == session_id)
        return list((await db.execute(stmt.order_by(Notification.id))).scalars())


async def losing_signal(
    handle: Handle, sessionmaker: async_sessionmaker[AsyncSession], session_id: str, loss: int
) -> None:
    await record_losing_trade(sessionmaker, session_id, Decimal(loss))
    await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source="fill"))


async def checks_reach(handle: Handle, checks: int) -> None:
    """Poll the live query (queries don't skip time) until the workflow checked that often."""
    for _ in range(200):
        if (await handle.query(TradingSessionWorkflow.get_status)).checks >= checks:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the workflow never made {checks} checks")


async def gate_becomes(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: str, *, open_: bool
) -> bool:
    """The gate is written by an activity right after the signal; give it a moment."""
    for _ in range(100):
        async with sessionmaker() as db:
            if (await SessionRepository(db).get(session_id)).gate_open is open_:
                return True
        await asyncio.sleep(0.05)
    return False


async def terminate(handle: Handle) -> None:
    await handle.signal(
        TradingSessionWorkflow.request_termination,
        TerminateInput(reason="test over", actor="op-test"),
    )
    await handle.result()


async def test_time_warning_is_sent_once_exactly_at_80_percent_of_the_session(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, duration=timedelta(minutes=10)
    )

    await handle.result()

    sent = await notifications(sessionmaker, values["id"])
    assert [n.kind for n in sent] == ["warning.time", "session.ended"]
    warned_at = datetime.fromisoformat(sent[0].payload["at"])
    eighty_percent = values["start_time"] + timedelta(minutes=8)
    assert eighty_percent <= warned_at < eighty_percent + timedelta(seconds=1)
    assert (await actions(sessionmaker, values["id"])).count("warning.time") == 1


async def test_loss_warning_is_sent_once_even_across_later_checks(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)
    await wait_until_active(handle)

    await losing_signal(handle, sessionmaker, values["id"], 850)  # 85 % of 1000
    for _ in range(6):  # six more wakes (a sweep or a mark finding the loss moved)
        await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source="sweep"))
        await checks_reach(handle, _ + 2)
    view = await handle.query(TradingSessionWorkflow.get_status)
    await terminate(handle)

    assert view.loss_warnings_sent == [0.8]
    assert view.checks >= 7
    assert (await actions(sessionmaker, values["id"])).count("warning.loss") == 1
    sent = await notifications(sessionmaker, values["id"])
    assert [n.kind for n in sent] == ["warning.loss", "session.ended"]
    assert sent[0].payload["used"] == pytest.approx(0.85)


async def test_warnings_are_not_repeated_after_continue_as_new(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(
        time_env,
        sessionmaker,
        task_queue,
        duration=timedelta(minutes=5),
        continue_as_new_after_checks=2,
    )
    await wait_until_active(handle)
    first_run = (await handle.describe()).run_id
    await losing_signal(handle, sessionmaker, values["id"], 900)
    await checks_reach(handle, 1)
    # A second wake makes two checks in this run: the next loop continues as new, carrying
    # the warnings sent and this wake.
    await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source="sweep"))

    result = await handle.result()
    await keep_history(handle, "continued_as_new")

    assert result.end_reason is EndReason.EXPIRED
    assert (await handle.describe()).run_id != first_run  # it really continued as new
    recorded = await actions(sessionmaker, values["id"])
    assert recorded.count("warning.loss") == 1
    assert recorded.count("warning.time") == 1
    assert recorded.count("session.activated") == 1


async def test_extend_deadline_moves_the_expiry_and_is_audited(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, duration=timedelta(minutes=10)
    )
    await wait_until_active(handle)
    new_end = values["end_time"] + timedelta(minutes=20)

    view = await handle.execute_update(
        TradingSessionWorkflow.extend_deadline,
        ExtendDeadlineInput(end_time=new_end, actor="op-jane", reason="news pending"),
    )
    result = await handle.result()
    await keep_history(handle, "deadline_extended")

    assert view.end_time == new_end
    assert new_end <= result.ended_at < new_end + timedelta(seconds=1)
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(values["id"])
        changed = [
            e
            for e in await AuditRepository(db).for_session(values["id"])
            if e.action == "session.limits_changed"
        ]
    assert row.end_time == new_end
    assert [(e.actor, e.reason) for e in changed] == [("op-jane", "news pending")]


@pytest.mark.parametrize(
    ("shift", "message"),
    [
        (timedelta(minutes=-5), "later than the current"),
        (timedelta(days=30), "at most"),
    ],
)
async def test_invalid_deadline_extension_is_rejected_and_changes_nothing(
    time_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    task_queue: str,
    shift: timedelta,
    message: str,
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)
    await wait_until_active(handle)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            TradingSessionWorkflow.extend_deadline,
            ExtendDeadlineInput(end_time=values["end_time"] + shift, actor="op-jane"),
        )
    view = await handle.query(TradingSessionWorkflow.get_status)
    await terminate(handle)

    assert message in str(refused.value.cause)
    assert view.end_time == values["end_time"]
    assert "session.limits_changed" not in await actions(sessionmaker, values["id"])


async def test_lowering_the_loss_limit_below_the_current_loss_ends_the_session_at_once(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)
    await wait_until_active(handle)
    await losing_signal(handle, sessionmaker, values["id"], 300)
    lowered_at = await time_env.get_current_time()

    await handle.execute_update(
        TradingSessionWorkflow.set_loss_limit,
        SetLossLimitInput(loss_limit=Decimal(200), actor="risk-bot", reason="tighten"),
    )
    result = await handle.result()
    await keep_history(handle, "loss_limit_lowered")

    assert result.end_reason is EndReason.LOSS_LIMIT
    assert result.ended_at - lowered_at < timedelta(seconds=1)
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(values["id"])
    assert row.loss_limit == Decimal(200)


@pytest.mark.parametrize("limit", ["0", "-10"])
async def test_invalid_loss_limit_is_rejected_and_changes_nothing(
    time_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    task_queue: str,
    limit: str,
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)
    await wait_until_active(handle)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            TradingSessionWorkflow.set_loss_limit,
            SetLossLimitInput(loss_limit=Decimal(limit), actor="op-jane"),
        )
    view = await handle.query(TradingSessionWorkflow.get_status)
    await terminate(handle)

    assert "positive" in str(refused.value.cause)
    assert view.loss_limit == Decimal(1000)
    assert "session.limits_changed" not in await actions(sessionmaker, values["id"])


async def test_pause_closes_the_gate_and_resume_reopens_it_while_the_clock_runs(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, duration=timedelta(minutes=10)
    )
    await wait_until_active(handle)

    await handle.signal(
        TradingSessionWorkflow.pause, GateChangeInput(actor="op-jane", reason="news")
    )
    paused = await handle.query(TradingSessionWorkflow.get_status)
    assert await gate_becomes(sessionmaker, values["id"], open_=False)
    await handle.signal(TradingSessionWorkflow.resume, GateChangeInput(actor="op-jane"))
    resumed = await handle.query(TradingSessionWorkflow.get_status)
    assert await gate_becomes(sessionmaker, values["id"], open_=True)
    result = await handle.result()
    await keep_history(handle, "paused_and_resumed")

    assert paused.paused is True
    assert resumed.paused is False
    # Pausing never stops the clock: the session still expires at its original deadline.
    assert result.end_reason is EndReason.EXPIRED
    assert values["end_time"] <= result.ended_at < values["end_time"] + timedelta(seconds=1)
    recorded = await actions(sessionmaker, values["id"])
    assert recorded.count("gate.closed") == 1
    assert recorded.count("gate.opened") == 1
