"""The session workflow: one per trading session, from activation to its end.

It sleeps until the next thing due for it (activation, a time warning, the deadline) or
until a signal wakes it: a fill, a mark or the fleet sweep found a loss that needs it.
"""

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.limits import (
        WarningKind,
        due_time_warnings,
        next_time_warning_at,
        time_until_wake,
        time_used,
    )
    from domain.session import (
        TimeRefusal,
        apply_check,
        check_extension,
        result_of,
        trading_state_of,
        view_of,
    )
    from domain.session import workflow_id_for as _workflow_id_for
    from domain.session_messages import (
        SYSTEM_ACTOR,
        CheckNowInput,
        ExtendDeadlineInput,
        GateChangeInput,
        SessionResult,
        SessionSpec,
        SessionState,
        SessionView,
        SessionWorkflowInput,
        SetLossLimitInput,
        TerminateInput,
    )
    from domain.status import EndReason, SessionStatus
    from domain.termination_messages import RetryCleanupInput
    from workflows import search_attributes as sa
    from workflows import session_calls as calls
    from workflows.policies import HANDLERS_GRACE
    from workflows.session_calls import CALL_FAILED
    from workflows.session_requests import OperatorRequests, invalid
    from workflows.session_warnings import after_check, warn
    from workflows.termination import wind_down


# The id of a session's workflow (domain.session), where callers of this module look for it.
workflow_id_for = _workflow_id_for


@workflow.defn(name="TradingSession")
class TradingSessionWorkflow:
    @workflow.init
    def __init__(self, input: SessionWorkflowInput) -> None:
        self._spec: SessionSpec = input.spec
        self._input = input
        self._state: SessionState = input.state or SessionState(
            end_time=input.spec.end_time, loss_limit=input.spec.loss_limit
        )
        self._retry_cleanup: RetryCleanupInput | None = None
        self._checks_this_run = 0
        self._extending = 0  # deadline extensions in flight: the deadline waits for them
        self._search = sa.Publisher()
        self._requests = OperatorRequests(self._spec, self._state)

    @workflow.run
    async def run(self, input: SessionWorkflowInput) -> SessionResult:
        if self._state.status is SessionStatus.PENDING:
            await self._wait_for_start()
        while self._state.end_reason is None:
            if self._should_continue_as_new():
                await self._handlers_done()
                workflow.continue_as_new(self._input.model_copy(update={"state": self._state}))
            await self._sleep_until_due()
            await self._decide()
        await self._handlers_done()
        result = await self._wind_down()
        await self._handlers_done()
        return result

    # --- operators: signals (lenient, never refused) and updates (validated) -------------

    @workflow.signal
    async def request_termination(self, payload: Any = None) -> None:
        """End the session now; the first request wins. Any payload is taken: a missing
        actor is recorded as ``unknown``. The ``terminate`` update says whether it took."""
        await self._requests.receive_termination(TerminateInput.from_signal(payload))

    @workflow.update
    async def terminate(self, request: TerminateInput) -> SessionView:
        """End the session now; answers once the session is ending."""
        await self._requests.receive_termination(request)
        await workflow.wait_condition(lambda: self._state.end_reason is not None)
        return self.get_status()

    @terminate.validator
    def _validate_terminate(self, request: TerminateInput) -> None:
        self._requests.refuse_if_ending("it is already ending")

    @workflow.signal
    async def pause(self, payload: Any = None) -> None:
        """Close the trading gate; the session and its clock go on."""
        await self._requests.gate_signal(False, GateChangeInput.from_signal(payload))

    @workflow.signal
    async def resume(self, payload: Any = None) -> None:
        """Open the trading gate again."""
        await self._requests.gate_signal(True, GateChangeInput.from_signal(payload))

    @workflow.update
    async def pause_trading(self, request: GateChangeInput) -> SessionView:
        await self._requests.change_gate(False, request, "pause_trading")
        return self.get_status()

    @pause_trading.validator
    def _validate_pause(self, request: GateChangeInput) -> None:
        self._requests.refuse_if_ending("its gate is closed for good")
        if self._state.paused:
            raise invalid("trading is already paused")

    @workflow.update
    async def resume_trading(self, request: GateChangeInput) -> SessionView:
        await self._requests.change_gate(True, request, "resume_trading")
        return self.get_status()

    @resume_trading.validator
    def _validate_resume(self, request: GateChangeInput) -> None:
        self._requests.refuse_if_ending("its gate is closed for good")
        if not self._state.paused:
            raise invalid("trading is not paused")

    @workflow.update
    async def extend_deadline(self, request: ExtendDeadlineInput) -> SessionView:
        """Move the deadline later; validated first, so a refusal leaves no trace in history."""
        self._extending += 1
        try:
            async with self._requests.lock:
                self._requests.refuse_if_ending("its limits can no longer change")
                await self._requests.handler_call(
                    "extend_deadline",
                    request.actor,
                    calls.change_limits(
                        self._spec, request.actor, request.reason, end_time=request.end_time
                    ),
                )
                self._state.end_time = request.end_time
                self._publish()
        finally:
            self._extending -= 1
        return self.get_status()

    @extend_deadline.validator
    def _validate_extend_deadline(self, request: ExtendDeadlineInput) -> None:
        self._requests.refuse_if_ending("its limits can no longer change")
        longest = timedelta(seconds=self._input.max_session_seconds)
        try:
            check_extension(
                request.end_time,
                self._state.end_time,
                self._spec.start_time,
                workflow.now(),
                longest,
            )
        except TimeRefusal as refusal:
            raise invalid(refusal.message) from None

    @workflow.update
    async def set_loss_limit(self, request: SetLossLimitInput) -> SessionView:
        """Change the loss limit; one below the current loss ends the session at once."""
        async with self._requests.lock:
            self._requests.refuse_if_ending("its limits can no longer change")
            await self._requests.handler_call(
                "set_loss_limit",
                request.actor,
                calls.change_limits(
                    self._spec, request.actor, request.reason, loss_limit=request.loss_limit
                ),
            )
            self._state.loss_limit = request.loss_limit
            self._state.check_requested = True
            self._publish()
        return self.get_status()

    @set_loss_limit.validator
    def _validate_set_loss_limit(self, request: SetLossLimitInput) -> None:
        self._requests.refuse_if_ending("its limits can no longer change")
        if not request.loss_limit.is_finite() or request.loss_limit <= 0:
            raise invalid("loss_limit must be a positive amount")

    @workflow.update
    async def retry_cleanup(self, request: RetryCleanupInput) -> SessionView:
        """Resume a termination parked in CLEANUP_FAILED, from the step that gave up."""
        self._retry_cleanup = request
        await workflow.wait_condition(lambda: self._retry_cleanup is None)
        return self.get_status()

    @retry_cleanup.validator
    def _validate_retry_cleanup(self, request: RetryCleanupInput) -> None:
        if self._state.status is not SessionStatus.CLEANUP_FAILED:
            raise invalid(f"the session is {self._state.status}, not CLEANUP_FAILED")
        if self._retry_cleanup is not None:
            raise invalid("a retry of the clean-up is already under way")

    @workflow.signal
    def check_now(self, request: CheckNowInput | None = None) -> None:
        """A fill, a mark or the sweep found a loss that needs this workflow: check now."""
        self._state.check_requested = True
        if request is not None and request.gate_closed:
            self._state.gate_closed_on_breach = True

    @workflow.query
    def get_status(self) -> SessionView:
        return view_of(self._spec, self._state, workflow.now())

    # --- the loop ----------------------------------------------------------------------

    def _should_continue_as_new(self) -> bool:
        forced = self._input.continue_as_new_after_checks
        if forced is not None and self._checks_this_run >= forced:
            return True
        return workflow.info().is_continue_as_new_suggested()

    async def _wait_for_start(self) -> None:
        delay = self._spec.start_time - workflow.now()
        if delay > timedelta(0):
            summary = f"start {self._spec.start_time:%Y-%m-%d %H:%M:%S} UTC"
            await self._wait(lambda: self._state.pending_termination is not None, delay, summary)
        if self._state.pending_termination is not None:
            return
        await calls.activate(self._spec)
        self._state.status = SessionStatus.ACTIVE
        self._publish()

    async def _sleep_until_due(self) -> None:
        """Sleep until the deadline or the next time warning, or until a signal wakes us."""
        state, now = self._state, workflow.now()
        spec = self._spec
        warning_at = next_time_warning_at(
            spec.start_time, state.end_time, spec.warning_thresholds, state.time_warnings_sent
        )
        timeout = time_until_wake(now, state.end_time, warning_at)
        if timeout > timedelta(0) and not self._has_news():
            due = state.end_time if warning_at is None else min(warning_at, state.end_time)
            what = "deadline" if due == state.end_time else "time warning"
            await self._wait(self._has_news, timeout, f"{what} {due:%H:%M:%S} UTC")

    def _has_news(self) -> bool:
        return self._state.check_requested or self._state.pending_termination is not None

    async def _wait(self, condition: Callable[[], bool], timeout: timedelta, summary: str) -> None:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(condition, timeout=timeout, timeout_summary=summary)

    async def _handlers_done(self) -> None:
        """Let running handlers finish, for a bounded time: none may hold the session."""
        await self._wait(workflow.all_handlers_finished, HANDLERS_GRACE, "handlers to finish")

    async def _decide(self) -> None:
        state, spec = self._state, self._spec
        if state.pending_termination is not None:
            request = state.pending_termination
            await calls.audit_request(
                spec,
                "session.termination_requested",
                request.actor,
                request.reason,
            )
            self._end(request.end_reason or EndReason.TERMINATED, request.reason, request.actor)
            return
        if workflow.now() >= state.end_time and self._extending:
            # An extension accepted before the deadline settles first: it wins or fails.
            await self._wait(lambda: not self._extending, HANDLERS_GRACE, "extension to settle")
        now = workflow.now()
        if now >= state.end_time:
            self._end(EndReason.EXPIRED, "deadline reached", SYSTEM_ACTOR)
            return
        due = due_time_warnings(
            now, spec.start_time, state.end_time, spec.warning_thresholds, state.time_warnings_sent
        )
        if due:
            used = time_used(now, spec.start_time, state.end_time)
            await warn(self._spec, state, WarningKind.TIME, due, used)
            self._publish()
        if state.check_requested:
            await self._check()

    async def _check(self) -> None:
        state = self._state
        state.check_requested = False
        gate_closed_on_breach, state.gate_closed_on_breach = state.gate_closed_on_breach, False
        try:
            snapshot = await calls.check(
                self._spec, state.loss_limit, state.end_time, self._spec.reducing_at
            )
        except CALL_FAILED as err:
            # The deadline wins over a database that does not answer; the sweep asks again.
            workflow.logger.warning("check of %s gave up: %s", self._spec.session_id, err)
            return
        self._checks_this_run += 1
        end = apply_check(self._spec, state, snapshot, workflow.now())
        if end is not None:
            self._end(*end)
            return
        if gate_closed_on_breach and not state.paused:
            await self._requests.reopen_gate_after_unconfirmed_breach()
        await after_check(self._spec, state)
        self._publish()

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
        workflow.logger.info("session %s ended: %s", self._spec.session_id, state.end_reason)
        return result_of(self._spec, state)

    async def _next_cleanup_retry(self) -> RetryCleanupInput:
        await workflow.wait_condition(lambda: self._retry_cleanup is not None)
        request, self._retry_cleanup = self._retry_cleanup, None
        assert request is not None  # the condition above
        return request

    def _publish(self) -> None:
        self._state.trading_state = trading_state_of(self._spec, self._state).value
        sa.publish_state(self._search, self._spec, self._state, workflow.now())
