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

from domain.session_messages import (
    GateChangeInput,
    LimitChangeInput,
    SetLossLimitInput,
    TerminateInput,
)
from domain.status import EndReason
from store.audit import AuditRepository
from store.models import Alert
from tests.workflows.helpers import start_session
from worker import create_worker
from workflows.session import TradingSessionWorkflow

Sessionmaker = async_sessionmaker[AsyncSession]
# The time-skipping server fires timers to the millisecond, a few ms late at most.
ON_TIME = timedelta(seconds=1)


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
