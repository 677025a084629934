"""Several termination steps in one call, on real PostgreSQL: once each, however often called."""

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.broker import ClosingFill, PaperBroker
from activities.notifications import NotificationActivities
from activities.performance import PerformanceActivities
from activities.session import SessionActivities
from activities.termination import TerminationActivities
from activities.termination_sequence import TerminationSequenceActivities
from domain.positions import Side
from domain.status import SessionStatus
from domain.termination import (
    STEP_FAILED,
    TERMINATION_SEQUENCE,
    RunStepsInput,
    RunStepsResult,
    TerminationStep,
)
from domain.termination_messages import StepInput
from store.ledger import LedgerRepository
from store.sessions import SessionRepository
from store.termination import TerminationStepRepository
from tests.fixtures.factories import new_session_id
from tests.fixtures.notification_data import deactivate, subscribe
from tests.integration.test_termination_activities import actions, active_session, fill, trade

D = Decimal
Sessionmaker = async_sessionmaker[AsyncSession]
Step = TerminationStep
# The steps whose activities record themselves in termination_steps and say so on a repeat.
RECORDED_BEFORE_THE_STATUS = [
    Step.HALT_ALGORITHM,
    Step.CANCEL_ORDERS,
    Step.FLATTEN_POSITIONS,
    Step.UPDATE_PORTFOLIO,
]


class LinkDownBroker(PaperBroker):
    """The paper broker, unreachable for flattening until the test brings the link up."""

    link_up = True

    async def flatten_positions(self, session_id: str) -> list[ClosingFill]:
        if not self.link_up:
            raise ConnectionError("broker unreachable")
        return await super().flatten_positions(session_id)


@pytest.fixture
def broker(sessionmaker: Sessionmaker) -> LinkDownBroker:
    return LinkDownBroker(sessionmaker)


@pytest.fixture
def sequence(sessionmaker: Sessionmaker, broker: LinkDownBroker) -> TerminationSequenceActivities:
    http = httpx.AsyncClient()
    return TerminationSequenceActivities(
        TerminationActivities(sessionmaker, broker, http),
        PerformanceActivities(sessionmaker),
        SessionActivities(sessionmaker),
        NotificationActivities(sessionmaker, http),
    )


async def run_steps(
    sequence: TerminationSequenceActivities, step: StepInput, first: Step, last: Step
) -> RunStepsResult:
    """One call, as the worker runs it (without a Temporal client: no delivery workflow)."""
    input = RunStepsInput(step=step, first=first, last=last, step_timeout=timedelta(seconds=30))
    return await ActivityEnvironment().run(sequence.run_steps, input)


async def long_acme_marked_at_80(sessionmaker: Sessionmaker, step: StepInput) -> None:
    await trade(sessionmaker, step.session_id, fill("b1", "ACME", Side.BUY, 10, "100"))
    async with sessionmaker.begin() as db:
        await SessionRepository(db).get(step.session_id, for_update=True)
        await LedgerRepository(db).add_mark(step.session_id, "ACME", D(80), step.ended_at)


async def rows(sessionmaker: Sessionmaker, table: str, session_id: str, where: str = "") -> int:
    """How many rows of ``table`` the session has (tests' own constant SQL only)."""
    async with sessionmaker() as db:
        query = f"SELECT count(*) FROM {table} WHERE session_id = :s {where}"
        return int((await db.execute(text(query), {"s": session_id})).scalar_one())


async def recorded(sessionmaker: Sessionmaker, session_id: str) -> list[str]:
    async with sessionmaker() as db:
        return await TerminationStepRepository(db).completed(session_id)


async def test_the_whole_sequence_called_twice_applies_each_effect_once(
    sessionmaker: Sessionmaker, sequence: TerminationSequenceActivities
) -> None:
    step = await active_session(sessionmaker)
    await long_acme_marked_at_80(sessionmaker, step)

    first = await run_steps(sequence, step, Step.HALT_ALGORITHM, Step.NOTIFY)
    second = await run_steps(sequence, step, Step.HALT_ALGORITHM, Step.NOTIFY)

    assert first.ran == second.ran == list(TERMINATION_SEQUENCE)
    assert (first.already_done, second.already_done) == ([], RECORDED_BEFORE_THE_STATUS)
    # Flattened at the mark: (80 - 100) * 10 - fee 10 * 80 * 0.0005 = -200.4
    assert first.finished is not None
    assert (first.finished.status, first.finished.realized_pnl) == (
        SessionStatus.LOSS_LIMIT,
        D("-200.4"),
    )
    assert second.finished == first.finished
    assert first.notification is not None
    assert first.notification.notification_id is not None
    assert second.notification == first.notification
    assert await recorded(sessionmaker, step.session_id) == [
        *RECORDED_BEFORE_THE_STATUS,
        Step.NOTIFY,
    ]
    trail = await actions(sessionmaker, step.session_id)
    for action in (
        "algorithm.halted",
        "orders.cancelled",
        "positions.flattened",
        "portfolio.updated",
        "session.ended",
    ):
        assert trail.count(action) == 1, (action, trail)
    assert await rows(sessionmaker, "fills", step.session_id, "AND fill_id LIKE 'flatten:%'") == 1
    assert await rows(sessionmaker, "portfolio_settlements", step.session_id) == 1
    assert (
        await rows(sessionmaker, "performance_snapshots", step.session_id, "AND kind='final'") == 1
    )
    assert await rows(sessionmaker, "notifications", step.session_id) == 1


async def test_a_failing_step_leaves_those_before_it_recorded_and_names_itself(
    sessionmaker: Sessionmaker, sequence: TerminationSequenceActivities, broker: LinkDownBroker
) -> None:
    step = await active_session(sessionmaker)
    await long_acme_marked_at_80(sessionmaker, step)
    broker.link_up = False

    with pytest.raises(ApplicationError) as failure:
        await run_steps(sequence, step, Step.HALT_ALGORITHM, Step.FINAL_PERFORMANCE)
    stopped_at = await recorded(sessionmaker, step.session_id)
    broker.link_up = True
    retried = await run_steps(sequence, step, Step.HALT_ALGORITHM, Step.FINAL_PERFORMANCE)

    assert failure.value.type == STEP_FAILED
    assert failure.value.details == ("flatten_positions", "ConnectionError")
    assert failure.value.message == "broker unreachable"
    assert not failure.value.non_retryable  # the call's retry policy decides when to give up
    assert stopped_at == [Step.HALT_ALGORITHM, Step.CANCEL_ORDERS]
    assert retried.ran == list(TERMINATION_SEQUENCE[:5])
    assert retried.already_done == [Step.HALT_ALGORITHM, Step.CANCEL_ORDERS]
    assert retried.finished is None  # the final status is the next call's
    trail = await actions(sessionmaker, step.session_id)
    assert (trail.count("algorithm.halted"), trail.count("positions.flattened")) == (1, 1)


async def test_a_refused_step_fails_the_call_for_good(
    sessionmaker: Sessionmaker, sequence: TerminationSequenceActivities
) -> None:
    step = await active_session(sessionmaker)
    missing = step.model_copy(update={"session_id": new_session_id()})

    with pytest.raises(ApplicationError) as failure:
        await run_steps(sequence, missing, Step.FINAL_STATUS, Step.FINAL_STATUS)

    assert failure.value.type == STEP_FAILED
    assert failure.value.details == ("final_status", "SessionNotFoundError")
    assert failure.value.non_retryable  # no retry can bring the session back


async def test_a_hand_over_that_fails_is_left_to_the_workflow_with_notify_recorded(
    sessionmaker: Sessionmaker, sequence: TerminationSequenceActivities
) -> None:
    step = await active_session(sessionmaker)
    subscription = await subscribe(sessionmaker, "http://127.0.0.1:9/hook", step.account_id)
    try:
        # A subscriber needs a delivery workflow, and this call has no Temporal client.
        result = await run_steps(sequence, step, Step.NOTIFY, Step.NOTIFY)
    finally:
        await deactivate(sessionmaker, [subscription])

    assert result.ran == [Step.NOTIFY]
    assert result.notification is not None
    assert result.notification.notification_id is not None
    assert not result.delivery_started
    assert await recorded(sessionmaker, step.session_id) == [Step.NOTIFY]
