"""The halt webhook is a delivery of its own: a dead endpoint never holds up the end."""

import uuid
from datetime import timedelta
from decimal import Decimal as D

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.halt_webhook import halt_webhook_workflow_id
from domain.session_messages import CheckNowInput
from domain.status import EndReason
from store.audit import AuditRepository
from store.ledger import LedgerRepository
from store.models import Algorithm
from store.termination import AlertRepository
from tests.workflows.helpers import start_session
from tests.workflows.test_session_workflow import wait_until_active
from tests.workflows.test_termination_workflow import buy_and_mark
from workflows.session import TradingSessionWorkflow

Sessionmaker = async_sessionmaker[AsyncSession]
# Nothing listens on port 1: every POST is refused at once.
DEAD_ENDPOINT = "http://127.0.0.1:1/halt"


async def test_a_dead_halt_webhook_does_not_stop_the_breach_from_flattening(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, task_queue: str
) -> None:
    algorithm = f"algo-{uuid.uuid4().hex[:8]}"
    async with sessionmaker.begin() as db:
        db.add(Algorithm(id=algorithm, halt_webhook_url=DEAD_ENDPOINT, halt_webhook_secret="s"))
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, loss_limit=D(150), algorithm_id=algorithm
    )
    await wait_until_active(handle)

    await buy_and_mark(sessionmaker, values["id"], "80")  # unrealized -200 > limit 150
    await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source="mark"))
    result = await handle.result()
    delivery = time_env.client.get_workflow_handle(halt_webhook_workflow_id(values["id"]))
    for _ in range(20):  # 12 attempts back off for about 17 minutes (skipped)
        if (await delivery.describe()).status is not WorkflowExecutionStatus.RUNNING:
            break
        await time_env.sleep(timedelta(minutes=2))
    delivered = await delivery.result()

    assert result.end_reason is EndReason.LOSS_LIMIT  # not CLEANUP_FAILED
    assert result.realized_pnl == D("-200.4")
    assert delivered is False  # it gave up after its attempts, on its own clock
    async with sessionmaker() as db:
        positions = await LedgerRepository(db).positions(values["id"])
        alerts = await AlertRepository(db).for_session(values["id"])
        actions = [e.action for e in await AuditRepository(db).for_session(values["id"])]
    assert [p.quantity for p in positions] == [D(0)]
    assert [a.kind for a in alerts] == ["halt_webhook_failed"]
    assert "All connection attempts failed" in alerts[0].message
    assert actions.count("algorithm.halt_webhook_failed") == 1
    assert actions.count("positions.flattened") == 1
