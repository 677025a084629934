"""The session workflow: one per trading session, from activation to its end."""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.limits import (
        Verdict,
        WarningKind,
        crossed_thresholds,
        judge,
        loss_used,
        next_check_due,
        next_time_warning_at,
        session_loss,
        time_until_wake,
        time_used,
    )
    from domain.messages import (
        SYSTEM_ACTOR,
        CheckRequest,
        ExtendDeadlineInput,
        GateRequest,
        RetryCleanupRequest,
        SessionResult,
        SessionSpec,
        SessionState,
        SessionView,
        SessionWorkflowInput,
        SetLossLimitInput,
        TerminationRequest,
    )
    from domain.status import EndReason, SessionStatus
    from workflows import search_attributes as sa
    from workflows import session_calls as calls
    from workflows.termination import wind_down


def workflow_id_for(session_id: str) -> str:
    return f"trading-session-{session_id}"


@workflow.defn(name="TradingSession")
class TradingSessionWorkflow:
    @workflow.init
    def __init__(self, input: SessionWorkflowInput) -> None:
        self._spec: SessionSpec = input.spec
        self._input = input
        self._interval = timedelta(seconds=input.check_interval_seconds)
        self._state: SessionState = input.state or SessionState(
            end_time=input.spec.end_time, loss_limit=input.spec.loss_limit
        )
        self._check_requested = False
        self._retry_cleanup: RetryCleanupRequest | None = None
        self._checks_this_run = 0
        self._search = sa.Publisher()
        # Handlers that write to the store take turns, so their audit events keep order.
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, input: SessionWorkflowInput) -> SessionResult:
        if self._state.status is SessionStatus.PENDING:
            await self._wait_for_start()
        while self._state.end_reason is None:
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._input.model_copy(update={"state": self._state}))
            await self._sleep_until_due()
            await self._decide()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return await self._wind_down()

    # --- signals, updates, query -------------------------------------------------------

    @workflow.signal
    def request_termination(self, request: TerminationRequest) -> None:
        """End the session now; the first request wins, later ones change nothing."""
        if self._state.pending_termination is None and self._state.end_reason is None:
            self._state.pending_termination = request

    @workflow.signal
    def retry_cleanup(self, request: RetryCleanupRequest) -> None:
        """Resume a termination that stopped in CLEANUP_FAILED, from the failed step."""
        if self._state.status is SessionStatus.CLEANUP_FAILED:
            self._retry_cleanup = request

    @workflow.signal
    def check_now(self, request: CheckRequest) -> None:
        """A fill or mark arrived: wake and check at once (the data is read from the store)."""
        self._check_requested = True

    @workflow.signal
    async def pause(self, request: GateRequest) -> None:
        """Close the trading gate; the session and its clock go on."""
        await self._set_gate(False, request)

    @workflow.signal
    async def resume(self, request: GateRequest) -> None:
        """Open the trading gate again."""
        await self._set_gate(True, request)

    @workflow.update
    async def extend_deadline(self, request: ExtendDeadlineInput) -> SessionView:
        """Move the deadline later; validated first, so a refusal leaves no trace in history."""
        async with self._lock:
            self._refuse_if_ending()
            await calls.change_limits(
                self._spec, request.actor, request.reason, end_time=request.end_time
            )
            self._state.end_time = request.end_time
            self._publish()
        return self.get_status()

    @extend_deadline.validator
    def _validate_extend_deadline(self, request: ExtendDeadlineInput) -> None:
        self._refuse_if_ending()
        if request.end_time.tzinfo is None:
            raise _invalid("end_time must carry a time zone")
        if request.end_time <= workflow.now():
            raise _invalid("end_time must be in the future")
        if request.end_time <= self._state.end_time:
            raise _invalid(f"end_time must be later than the current {self._state.end_time}")
        longest = timedelta(seconds=self._input.max_session_seconds)
        if request.end_time - self._spec.start_time > longest:
            raise _invalid(f"a session may last at most {longest}")

    @workflow.update
    async def set_loss_limit(self, request: SetLossLimitInput) -> SessionView:
        """Change the loss limit; one below the current loss ends the session at once."""
        async with self._lock:
            self._refuse_if_ending()
            await calls.change_limits(
                self._spec, request.actor, request.reason, loss_limit=request.loss_limit
            )
            self._state.loss_limit = request.loss_limit
            self._check_requested = True
            self._publish()
        return self.get_status()

    @set_loss_limit.validator
    def _validate_set_loss_limit(self, request: SetLossLimitInput) -> None:
        self._refuse_if_ending()
        if not request.loss_limit.is_finite() or request.loss_limit <= 0:
            raise _invalid("loss_limit must be a positive amount")

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
            paused=state.paused,
            time_warnings_sent=state.time_warnings_sent,
            loss_warnings_sent=state.loss_warnings_sent,
            end_reason=state.end_reason,
            ended_at=state.ended_at,
        )

    # --- the loop ----------------------------------------------------------------------

    def _should_continue_as_new(self) -> bool:
        forced = self._input.continue_as_new_after_checks
        if forced is not None and self._checks_this_run >= forced:
            return True
        return workflow.info().is_continue_as_new_suggested()

    async def _wait_for_start(self) -> None:
        delay = self._spec.start_time - workflow.now()
        if delay > timedelta(0):
            await self._wait(lambda: self._state.pending_termination is not None, delay)
        if self._state.pending_termination is not None:
            return
        await calls.activate(self._spec)
        self._state.status = SessionStatus.ACTIVE
        self._publish()

    async def _sleep_until_due(self) -> None:
        state, now = self._state, workflow.now()
        timeout = time_until_wake(
            now,
            state.end_time,
            next_check_due(state.last_check_at, now, self._interval),
            next_time_warning_at(
                self._spec.start_time,
                state.end_time,
                self._spec.warning_thresholds,
                state.time_warnings_sent,
            ),
            self._next_snapshot_due(now),
        )
        if timeout > timedelta(0):
            await self._wait(self._has_news, timeout)

    def _next_snapshot_due(self, now: datetime) -> datetime:
        interval = timedelta(seconds=self._input.performance_interval_seconds)
        return next_check_due(self._state.last_snapshot_at or self._spec.start_time, now, interval)

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
        await self._warn(WarningKind.TIME, time_used(now, self._spec.start_time, state.end_time))
        if now >= self._next_snapshot_due(now):
            # Periodic performance figures; the final snapshot is a termination step.
            await calls.take_snapshot(self._spec, now)
            state.last_snapshot_at = now
        due = next_check_due(state.last_check_at, now, self._interval)
        if self._check_requested or now >= due:
            await self._check(now, due)

    async def _check(self, now: datetime, due: datetime) -> None:
        state = self._state
        periodic = not self._check_requested
        self._check_requested = False
        snapshot = await calls.check(self._spec, due if periodic else None)
        state.last_check_at = now
        state.checks += 1
        self._checks_this_run += 1
        state.realized_pnl = snapshot.realized_pnl
        state.unrealized_pnl = snapshot.unrealized_pnl
        state.loss = session_loss(snapshot.realized_pnl, snapshot.unrealized_pnl)
        verdict = judge(workflow.now(), state.end_time, state.loss, state.loss_limit)
        if verdict is Verdict.LOSS_LIMIT:
            detail = f"loss {state.loss} reached limit {state.loss_limit}"
            self._end(EndReason.LOSS_LIMIT, detail, SYSTEM_ACTOR)
        elif verdict is Verdict.EXPIRED:
            self._end(EndReason.EXPIRED, "deadline reached", SYSTEM_ACTOR)
        else:
            await self._warn(WarningKind.LOSS, loss_used(state.loss, state.loss_limit))
            self._publish()

    async def _warn(self, kind: WarningKind, used: float) -> None:
        """Send each threshold's warning once; the sent list travels in the state."""
        state = self._state
        sent = state.time_warnings_sent if kind is WarningKind.TIME else state.loss_warnings_sent
        for threshold in crossed_thresholds(used, self._spec.warning_thresholds, sent):
            notification = await calls.record_warning(self._spec, kind, threshold, used)
            sent.append(threshold)
            await calls.deliver(notification)

    def _end(self, reason: EndReason, detail: str, actor: str) -> None:
        self._state.end_reason = reason
        self._state.end_detail = detail
        self._state.ended_by = actor
        self._state.ended_at = workflow.now()
        self._state.status = SessionStatus.ENDING

    async def _wind_down(self) -> SessionResult:
        state = self._state
        self._publish()
        await wind_down(self._spec, state, self._next_cleanup_retry, self._publish)
        assert state.end_reason is not None
        assert state.ended_at is not None
        workflow.logger.info("session %s ended: %s", self._spec.session_id, state.end_reason)
        return SessionResult(
            session_id=self._spec.session_id,
            status=state.status,
            end_reason=state.end_reason,
            ended_at=state.ended_at,
            realized_pnl=state.realized_pnl,
        )

    async def _next_cleanup_retry(self) -> RetryCleanupRequest:
        await workflow.wait_condition(lambda: self._retry_cleanup is not None)
        request, self._retry_cleanup = self._retry_cleanup, None
        assert request is not None  # the condition above
        return request

    # --- helpers -----------------------------------------------------------------------

    def _refuse_if_ending(self) -> None:
        if self._state.end_reason is not None or self._state.pending_termination is not None:
            raise _invalid("the session is ending; its limits can no longer change")

    async def _set_gate(self, open_: bool, request: GateRequest) -> None:
        state = self._state
        if state.end_reason is not None or state.paused != open_:
            return  # the gate is already that way, or the session is ending anyway
        # The live state changes at once; the store follows in signal order under the lock.
        state.paused = not open_
        state.gate_changes += 1
        change_id = str(state.gate_changes)
        async with self._lock:
            await calls.set_gate(self._spec, open_, request, change_id)

    def _publish(self) -> None:
        state = self._state
        self._search.publish(
            {
                sa.SESSION_STATUS.name: state.status.value,
                sa.SESSION_DEADLINE.name: state.end_time,
                sa.LOSS_USED_PCT.name: float(round(100 * loss_used(state.loss, state.loss_limit))),
                sa.TIME_USED_PCT.name: sa.time_used_step(
                    time_used(workflow.now(), self._spec.start_time, state.end_time)
                ),
                sa.TERMINATION_REASON.name: state.end_reason.value if state.end_reason else None,
            }
        )


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidUpdate", non_retryable=True)
