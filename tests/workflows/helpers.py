"""Start a session the way the API does, against the time-skipping server."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.session_messages import SessionResult, SessionWorkflowInput
from store.sessions import SessionRepository
from tests.fixtures.factories import session_values, spec_from
from workflows.session import TradingSessionWorkflow

Handle = WorkflowHandle[TradingSessionWorkflow, SessionResult]


async def start_session(
    env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    task_queue: str,
    *,
    duration: timedelta = timedelta(hours=1),
    loss_limit: Decimal = Decimal(1000),
    start_in: timedelta = timedelta(0),
    continue_as_new_after_checks: int | None = None,
    **overrides: Any,
) -> tuple[Handle, dict[str, Any]]:
    """Insert the row and start its workflow, with times on the server's (skipped) clock."""
    now = await env.get_current_time()
    values = session_values(
        start=now + start_in, duration=duration, loss_limit=loss_limit, **overrides
    )
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(values)
    handle = await env.client.start_workflow(
        TradingSessionWorkflow.run,
        SessionWorkflowInput(
            spec=spec_from(values), continue_as_new_after_checks=continue_as_new_after_checks
        ),
        id=values["workflow_id"],
        task_queue=task_queue,
    )
    return handle, values
