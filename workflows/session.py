"""The session workflow: one per trading session, from activation to its end."""

import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.session import SessionActivities
    from domain.limits import (
        Verdict,
        judge,
        loss_used,
        next_check_due,
        session_loss,
        time_until_wake,
        time_used,
    )
    from domain.messages import (
        SYSTEM_ACTOR,
        ActivateInput,
        CheckInput,
        CheckRequest,
        FinishInput,
        SessionResult,
        SessionSpec,
        SessionState,
        SessionView,
        SessionWorkflowInput,
        TerminationRequest,
    )
    from domain.status import EndReason, SessionStatus

# A check is one indexed read; if it takes longer the database is in trouble and the
# attempt is retried rather than left hanging past the next tick.
CHECK_TIMEOUT = timedelta(seconds=10)
# Writes of the session's own row; short, but they wait on the row lock of a racing fill.
WRITE_TIMEOUT = timedelta(seconds=30)
# The database may be down for a while: keep retrying with backoff, never give up on a
# session (business refusals are non-retryable ApplicationErrors and stop at once).
DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)


def workflow_id_for(session_id: str) -> str:
    return f"trading-session-{session_id}"


@workflow.defn(name="TradingSession")
class TradingSessionWorkflow:
    @workflow.init
    def __init__(self, input: SessionWorkflowInput) -> None:
        self._spec: SessionSpec = input.spec
        self._interval = timedelta(seconds=input.check_interval_seconds)
        self._state: SessionState = input.state or SessionState(
            end_time=input.spec.end_time, loss_limit=input.spec.loss_limit
        )
        self._check_requested = False

    @workflow.run
    async def run(self, input: SessionWorkflowInput) -> SessionResult:
        if self._state.status is SessionStatus.PENDING:
            await self._wait_for_start()
        while self._state.end_reason is None:
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    SessionWorkflowInput(
                        spec=self._spec,
                        check_interval_seconds=self._interval.total_seconds(),
                        state=self._state,
                    )
                )
            await self._sleep_until_due()
            await self._decide()
        return await self._finish()

    @workflow.signal
    def request_termination(self, request: TerminationRequest) -> None:
        """End the session now; the first request wins, later ones change nothing."""
        if self._state.pending_termination is None and self._state.end_reason is None:
            self._state.pending_termination = request

    @workflow.signal
    def check_now(self, request: CheckRequest) -> None:
        """A fill or mark arrived: wake and check at once (the data is read from the store)."""
        self._check_requested = True

    @workflow.query
    def get_status(self) -> SessionView:
        state, now = self._state, workflow.now()
        return SessionView(
            session_id=self._spec.session_id,
            status=state.status,
            end_time=state.end_time,
            loss_limit=state.loss_limit,
            loss=state.loss,
            realized_pnl=state.realized_pnl,
            unrealized_pnl=state.unrealized_pnl,
            loss_used=loss_used(state.loss, state.loss_limit),
            time_used=time_used(now, self._spec.start_time, state.end_time),
            checks=state.checks,
            last_check_at=state.last_check_at,
            end_reason=state.end_reason,
            ended_at=state.ended_at,
        )

    async def _wait_for_start(self) -> None:
        delay = self._spec.start_time - workflow.now()
        if delay > timedelta(0):
            await self._wait(lambda: self._state.pending_termination is not None, delay)
        if self._state.pending_termination is not None:
            return
        info = workflow.info()
        await workflow.execute_activity_method(
            SessionActivities.activate_session,
            ActivateInput(
                session_id=self._spec.session_id,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                at=workflow.now(),
            ),
            start_to_close_timeout=WRITE_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )
        self._state.status = SessionStatus.ACTIVE

    async def _sleep_until_due(self) -> None:
        now = workflow.now()
        due = next_check_due(self._state.last_check_at, now, self._interval)
        timeout = time_until_wake(now, self._state.end_time, due)
        if timeout > timedelta(0):
            await self._wait(self._has_news, timeout)

    def _has_news(self) -> bool:
        return self._check_requested or self._state.pending_termination is not None

    async def _wait(self, condition: Callable[[], bool], timeout: timedelta) -> None:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(condition, timeout=timeout)

    async def _decide(self) -> None:
        state = self._state
        if state.pending_termination is not None:
            request = state.pending_termination
            self._end(EndReason.TERMINATED, request.reason, request.actor)
            return
        now = workflow.now()
        if now >= state.end_time:
            self._end(EndReason.EXPIRED, "deadline reached", SYSTEM_ACTOR)
            return
        due = next_check_due(state.last_check_at, now, self._interval)
        if not self._check_requested and now < due:
            return
        self._check_requested = False
        snapshot = await workflow.execute_activity_method(
            SessionActivities.check_session,
            CheckInput(session_id=self._spec.session_id),
            start_to_close_timeout=CHECK_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )
        state.last_check_at = now
        state.checks += 1
        state.realized_pnl = snapshot.realized_pnl
        state.unrealized_pnl = snapshot.unrealized_pnl
        state.loss = session_loss(snapshot.realized_pnl, snapshot.unrealized_pnl)
        verdict = judge(workflow.now(), state.end_time, state.loss, state.loss_limit)
        if verdict is Verdict.LOSS_LIMIT:
            self._end(
                EndReason.LOSS_LIMIT,
                f"loss {state.loss} reached limit {state.loss_limit}",
                SYSTEM_ACTOR,
            )
        elif verdict is Verdict.EXPIRED:
            self._end(EndReason.EXPIRED, "deadline reached", SYSTEM_ACTOR)

    def _end(self, reason: EndReason, detail: str, actor: str) -> None:
        self._state.end_reason = reason
        self._state.end_detail = detail
        self._state.ended_by = actor
        self._state.ended_at = workflow.now()
        self._state.status = SessionStatus.ENDING

    async def _finish(self) -> SessionResult:
        state = self._state
        assert state.end_reason is not None
        assert state.ended_at is not None
        info = workflow.info()
        result = await workflow.execute_activity_method(
            SessionActivities.finish_session,
            FinishInput(
                session_id=self._spec.session_id,
                reason=state.end_reason,
                detail=state.end_detail or "",
                actor=state.ended_by or SYSTEM_ACTOR,
                ended_at=state.ended_at,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
            ),
            start_to_close_timeout=WRITE_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )
        state.status = result.status
        state.realized_pnl = result.realized_pnl
        workflow.logger.info("session %s ended: %s", self._spec.session_id, state.end_reason)
        return SessionResult(
            session_id=self._spec.session_id,
            status=result.status,
            end_reason=state.end_reason,
            ended_at=state.ended_at,
            realized_pnl=result.realized_pnl,
        )
