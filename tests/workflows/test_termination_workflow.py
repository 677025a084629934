"""The termination sequence in the session workflow, including CLEANUP_FAILED and retry."""

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment

from activities.broker import ClosingFill, PaperBroker
from domain.notifications import notification_workflow_id
from domain.positions import Side
from domain.session_messages import CheckNowInput, TerminateInput
from domain.status import EndReason, SessionStatus
from domain.termination import RunStepsResult, TerminationStep
from domain.termination_messages import RetryCleanupInput
from store.audit import AuditRepository
from store.ledger import LedgerRepository, NewFill
from store.models import Position
from store.notifications import NotificationRepository
from store.sessions import SessionRepository
from store.termination import AlertRepository, PortfolioRepository, TerminationStepRepository
from tests.fixtures.notification_data import SECRET, deactivate, new_account, subscribe
from tests.fixtures.webhook_receiver import webhook_receiver
from tests.workflows.helpers import start_session
from tests.workflows.histories import keep_history
from tests.workflows.test_session_workflow import wait_until_active
from worker import create_worker
from workflows.notifications import NotificationDeliveryWorkflow
from workflows.session import TradingSessionWorkflow

D = Decimal
Sessionmaker = async_sessionmaker[AsyncSession]


async def buy_and_mark(sessionmaker: Sessionmaker, session_id: str, mark: str) -> None:
    """Long 10 ACME at 100, marked at ``mark``."""
    async with sessionmaker.begin() as db:
        await SessionRepository(db).get(session_id, for_update=True)
        ledger = LedgerRepository(db)
        now = datetime.now(UTC)
        await ledger.apply_fill(
            session_id, NewFill("b1", "ACME", Side.BUY, D(10), D(100), D(0), now)
        )
        await ledger.add_mark(session_id, "ACME", D(mark), now)


async def test_breach_winds_the_session_down_in_order_flat_and_settled(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, task_queue: str
) -> None:
    account = f"acc-{uuid.uuid4().hex[:8]}"
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, loss_limit=D(150), account_id=account
    )
    await wait_until_active(handle)

    await buy_and_mark(sessionmaker, values["id"], "80")  # unrealized -200 > limit 150
    await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source="mark"))
    result = await handle.result()
    await keep_history(handle, "breach_terminated_flat")

    # Flattened at the mark: (80 - 100) * 10 - fee 10 * 80 * 0.0005 = -200.4
    assert result.end_reason is EndReason.LOSS_LIMIT
    assert result.realized_pnl == D("-200.4")
    async with sessionmaker() as db:
        steps = await TerminationStepRepository(db).completed(values["id"])
        positions = list(
            (
                await db.execute(select(Position).where(Position.session_id == values["id"]))
            ).scalars()
        )
        portfolio = await PortfolioRepository(db).get(account)
        row = await SessionRepository(db).get(values["id"])
        actions = [e.action for e in await AuditRepository(db).for_session(values["id"])]
    assert [p.quantity for p in positions] == [D(0)]
    assert portfolio is not None
    assert portfolio.cash == D("-200.4")
    assert (row.status, row.gate_open) == (SessionStatus.LOSS_LIMIT, False)
    assert steps == [
        "halt_algorithm",
        "cancel_orders",
        "flatten_positions",
        "update_portfolio",
        "notify",
    ]
    ordered = [a for a in actions if a not in ("session.activated",)]
    assert ordered == [
        "algorithm.halted",
        "orders.cancelled",
        "positions.flattened",
        "portfolio.updated",
        "session.ended",
    ]


def local_activity_type(event: HistoryEvent) -> str | None:
    """The activity type a local activity's marker records, else None."""
    attributes = event.marker_recorded_event_attributes
    if attributes.marker_name != "core_local_activity":
        return None
    return str(json.loads(attributes.details["data"].payloads[0].data)["activity_type"])


def run_steps_results(events: Sequence[HistoryEvent]) -> list[RunStepsResult | None]:
    """What each ``run_steps`` call returned, in order; None for a call that gave up."""
    results: list[RunStepsResult | None] = []
    for event in events:
        if local_activity_type(event) != "run_steps":
            continue
        result = event.marker_recorded_event_attributes.details.get("result")
        results.append(
            RunStepsResult.model_validate_json(result.payloads[0].data) if result else None
        )
    return results


async def test_a_warned_session_ends_in_two_local_calls_and_no_activity_task(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, task_queue: str
) -> None:
    """Start, warning and the termination run in the worker, the seven termination steps
    and the notification's hand-over in two calls: an expiry wave of sessions costs the
    server workflow tasks only, and the worker two activations per session end. A quiet
    session wakes for nothing else: no periodic check, no periodic snapshot."""
    handle, _ = await start_session(
        time_env, sessionmaker, task_queue, duration=timedelta(minutes=10)
    )
    result = await handle.result()
    await keep_history(handle, "warned_then_expired")

    events = (await handle.fetch_history()).events
    scheduled = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    local = [t for t in map(local_activity_type, events) if t not in (None, "check_session")]
    assert result.status is SessionStatus.EXPIRED
    assert scheduled == []
    assert local == [
        "activate_session",
        "record_warning",  # 80 % of the time
        "start_delivery",
        "run_steps",
        "run_steps",
    ]
    calls = run_steps_results(events)
    assert [c.ran if c else None for c in calls] == [
        [
            TerminationStep.HALT_ALGORITHM,
            TerminationStep.CANCEL_ORDERS,
            TerminationStep.FLATTEN_POSITIONS,
            TerminationStep.UPDATE_PORTFOLIO,
            TerminationStep.FINAL_PERFORMANCE,
        ],
        # Under DATABASE_RETRY: only our database, so it never gives up.
        [TerminationStep.FINAL_STATUS, TerminationStep.NOTIFY],
    ]
    finished = [c.finished.status if c and c.finished else None for c in calls]
    assert finished == [None, SessionStatus.EXPIRED]
    # The last call handed the notification over itself: no start_delivery after it.
    assert [bool(c and c.delivery_started) for c in calls] == [False, True]


async def test_a_subscriber_gets_the_ended_webhook_handed_over_by_the_last_call(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker, task_queue: str
) -> None:
    """The NOTIFY call starts the delivery workflow itself, from inside the local activity."""
    account = new_account()
    with webhook_receiver(SECRET) as receiver:
        subscription = await subscribe(sessionmaker, receiver.url, account)
        try:
            handle, values = await start_session(
                time_env, sessionmaker, task_queue, account_id=account
            )
            await wait_until_active(handle)
            await handle.signal(
                TradingSessionWorkflow.request_termination,
                TerminateInput(reason="desk closed", actor="op-jane"),
            )
            await handle.result()
            async with sessionmaker() as db:
                notification_id = await NotificationRepository(db).id_for(f"{values['id']}:ended")
            assert notification_id is not None
            delivery = time_env.client.get_workflow_handle_for(
                NotificationDeliveryWorkflow.run, notification_workflow_id(notification_id)
            )
            delivered = await delivery.result()
        finally:
            await deactivate(sessionmaker, [subscription])

    events = (await handle.fetch_history()).events
    local = [t for t in map(local_activity_type, events) if t not in (None, "check_session")]
    assert local == ["activate_session", "record_request", "run_steps", "run_steps"]
    assert subscription in delivered.delivered
    assert [r.event for r in receiver.received] == ["session.ended"]


class FlakyBroker(PaperBroker):
    """The paper broker behind a link that is down until the test brings it back.

    Counts what reached it: the cancels, and the flatten attempts and those that got through.
    """

    link_up = False
    cancels = 0
    flatten_attempts = 0
    flattens = 0

    async def cancel_open_orders(self, session_id: str) -> list[str]:
        self.cancels += 1
        return await super().cancel_open_orders(session_id)

    async def flatten_positions(self, session_id: str) -> list[ClosingFill]:
        self.flatten_attempts += 1
        if not self.link_up:
            raise ConnectionError("broker unreachable")
        self.flattens += 1
        return await super().flatten_positions(session_id)


@pytest.fixture
async def flaky_queue(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker
) -> AsyncIterator[tuple[str, FlakyBroker]]:
    queue = f"test-{uuid.uuid4()}"
    broker = FlakyBroker(sessionmaker)
    async with create_worker(time_env.client, queue, sessionmaker, broker=broker):
        yield queue, broker


async def test_a_step_that_gives_up_leaves_cleanup_failed_until_an_operator_retries(
    time_env: WorkflowEnvironment,
    sessionmaker: Sessionmaker,
    flaky_queue: tuple[str, FlakyBroker],
) -> None:
    queue, broker = flaky_queue
    handle, values = await start_session(time_env, sessionmaker, queue, loss_limit=D(150))
    await wait_until_active(handle)
    await buy_and_mark(sessionmaker, values["id"], "80")
    await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source="mark"))

    for _ in range(12):  # an hour, in short skips: long enough for every retry to be spent
        await time_env.sleep(timedelta(minutes=5))
    stuck = await handle.query(TradingSessionWorkflow.get_status)
    async with sessionmaker() as db:
        failed_row = await SessionRepository(db).get(values["id"])
        alerts = await AlertRepository(db).for_session(values["id"])
        announced = await NotificationRepository(db).page(session_id=values["id"])
    broker.link_up = True
    await handle.execute_update(
        TradingSessionWorkflow.retry_cleanup,
        RetryCleanupInput(actor="op-jane", reason="broker link restored"),
    )
    result = await handle.result()
    await keep_history(handle, "cleanup_failed_then_retried")

    assert stuck.status is SessionStatus.CLEANUP_FAILED
    assert failed_row.status == SessionStatus.CLEANUP_FAILED
    assert [a.kind for a in alerts] == ["cleanup_failed"]
    assert "flatten_positions" in alerts[0].message
    # Operators hear of it (the alert's notification); the account's traders do not.
    cleanup = [n for n in announced if "cleanup_failed" in n.kind]
    assert [(n.kind, n.audience) for n in cleanup] == [("alert.cleanup_failed", "operators")]
    assert cleanup[0].payload["alert_id"] == alerts[0].id
    assert result.status is SessionStatus.LOSS_LIMIT
    assert result.realized_pnl == D("-200.4")
    async with sessionmaker() as db:
        steps = await TerminationStepRepository(db).completed(values["id"])
        actions = [e.action for e in await AuditRepository(db).for_session(values["id"])]
    assert steps.count("flatten_positions") == 1
    assert actions.count("algorithm.halted") == 1  # resumed from the failed step
    assert [a for a in actions if a.startswith("cleanup")] == ["cleanup.failed", "cleanup.retried"]
    # Ten attempts of the first call (halt and cancel ran in the first only), then the resume.
    assert (broker.cancels, broker.flatten_attempts, broker.flattens) == (1, 11, 1)
    events = (await handle.fetch_history()).events
    resumed = [c.ran for c in run_steps_results(events) if c is not None]
    assert resumed == [
        [
            TerminationStep.FLATTEN_POSITIONS,
            TerminationStep.UPDATE_PORTFOLIO,
            TerminationStep.FINAL_PERFORMANCE,
        ],
        [TerminationStep.FINAL_STATUS, TerminationStep.NOTIFY],
    ]


class TwoFlakyLinks(PaperBroker):
    """Cancels fail their first six attempts, then flattens theirs: twelve failures in all,
    more than one budget of ten, but fewer than ten for each step."""

    failures_left = {"cancel": 6, "flatten": 6}

    async def cancel_open_orders(self, session_id: str) -> list[str]:
        if self.failures_left["cancel"]:
            self.failures_left["cancel"] -= 1
            raise ConnectionError("order gateway unreachable")
        return await super().cancel_open_orders(session_id)

    async def flatten_positions(self, session_id: str) -> list[ClosingFill]:
        if self.failures_left["flatten"]:
            self.failures_left["flatten"] -= 1
            raise ConnectionError("broker unreachable")
        return await super().flatten_positions(session_id)


async def test_each_termination_step_has_its_own_retry_budget(
    time_env: WorkflowEnvironment, sessionmaker: Sessionmaker
) -> None:
    queue = f"test-{uuid.uuid4()}"
    broker = TwoFlakyLinks(sessionmaker)
    broker.failures_left = {"cancel": 6, "flatten": 6}
    async with create_worker(time_env.client, queue, sessionmaker, broker=broker):
        handle, values = await start_session(time_env, sessionmaker, queue)
        await wait_until_active(handle)
        await buy_and_mark(sessionmaker, values["id"], "95")
        await handle.signal(
            TradingSessionWorkflow.request_termination,
            TerminateInput(reason="desk closed", actor="op-jane"),
        )
        result = await handle.result()

    assert result.status is SessionStatus.TERMINATED  # never parked CLEANUP_FAILED
    assert broker.failures_left == {"cancel": 0, "flatten": 0}
    async with sessionmaker() as db:
        alerts = await AlertRepository(db).for_session(values["id"])
        flat = await db.execute(select(Position).where(Position.session_id == values["id"]))
    assert alerts == []
    assert all(p.quantity == 0 for p in flat.scalars())
