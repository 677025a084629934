"""The session workflow: one per trading session, from activation to its end."""

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.controls import SessionControlActivities
    from activities.session import SessionActivities
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
        ActivateInput,
        CheckInput,
        CheckRequest,
        ExtendDeadlineInput,
        FinishInput,
        GateInput,
        GateRequest,
        LimitChangeInput,
        SessionResult,
        SessionSpec,
        SessionState,
        SessionView,
        SessionWorkflowInput,
        SetLossLimitInput,
        TerminationRequest,
        WarningInput,
    )
    from domain.status import EndReason, SessionStatus
    from workflows import search_attributes as sa
    from workflows.policies import CHECK_TIMEOUT, DATABASE_RETRY, WRITE_TIMEOUT


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
        self._checks_this_run = 0
        self._published: dict[str, object] = {}
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
        return await self._finish()

    # --- signals, updates, query -------------------------------------------------------

    @workflow.signal
    def request_termination(self, request: TerminationRequest) -> None:
        """End the session now; the first request wins, later ones change nothing."""
        if self._state.pending_termination is None and self._state.end_reason is None:
            self._state.pending_termination = request

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
            await self._change_limits(request.actor, request.reason, end_time=request.end_time)
            self._state.end_time = request.end_time
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
            await self._change_limits(request.actor, request.reason, loss_limit=request.loss_limit)
            self._state.loss_limit = request.loss_limit
            self._check_requested = True
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
        self._publish()

    async def _sleep_until_due(self) -> None:
        state, now = self._state, workflow.now()
        timeout = time_until_wake(
            now,
            state.end_time,
            next_check_due(state.last_check_at, now, self._interval),
            self._next_time_warning(),
        )
        if timeout > timedelta(0):
            await self._wait(self._has_news, timeout)

    def _next_time_warning(self) -> datetime | None:
        return next_time_warning_at(
            self._spec.start_time,
            self._state.end_time,
            self._spec.warning_thresholds,
            self._state.time_warnings_sent,
        )

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
        await self._warn_about_time()
        due = next_check_due(state.last_check_at, now, self._interval)
        if self._check_requested or now >= due:
            await self._check(now)

    async def _check(self, now: datetime) -> None:
        state = self._state
        self._check_requested = False
        snapshot = await workflow.execute_activity_method(
            SessionActivities.check_session,
            CheckInput(session_id=self._spec.session_id),
            start_to_close_timeout=CHECK_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )
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

    async def _warn_about_time(self) -> None:
        used = time_used(workflow.now(), self._spec.start_time, self._state.end_time)
        await self._warn(WarningKind.TIME, used)

    async def _warn(self, kind: WarningKind, used: float) -> None:
        """Send each threshold's warning once; the sent list travels in the state."""
        sent = (
            self._state.time_warnings_sent
            if kind is WarningKind.TIME
            else self._state.loss_warnings_sent
        )
        for threshold in crossed_thresholds(used, self._spec.warning_thresholds, sent):
            info = workflow.info()
            await workflow.execute_activity_method(
                SessionControlActivities.record_warning,
                WarningInput(
                    session_id=self._spec.session_id,
                    account_id=self._spec.account_id,
                    kind=kind,
                    threshold=threshold,
                    used=used,
                    at=workflow.now(),
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                ),
                start_to_close_timeout=WRITE_TIMEOUT,
                retry_policy=DATABASE_RETRY,
            )
            sent.append(threshold)

    def _end(self, reason: EndReason, detail: str, actor: str) -> None:
        self._state.end_reason = reason
        self._state.end_detail = detail
        self._state.ended_by = actor
        self._state.ended_at = workflow.now()
        self._state.status = SessionStatus.ENDING

    async def _finish(self) -> SessionResult:
        state = self._state
        if state.end_reason is None or state.ended_at is None:
            raise ApplicationError("finishing a session that has not ended", non_retryable=True)
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
        self._publish()
        workflow.logger.info("session %s ended: %s", self._spec.session_id, state.end_reason)
        return SessionResult(
            session_id=self._spec.session_id,
            status=result.status,
            end_reason=state.end_reason,
            ended_at=state.ended_at,
            realized_pnl=result.realized_pnl,
        )

    # --- helpers -----------------------------------------------------------------------

    def _refuse_if_ending(self) -> None:
        if self._state.end_reason is not None or self._state.pending_termination is not None:
            raise _invalid("the session is ending; its limits can no longer change")

    async def _change_limits(self, actor: str, reason: str | None, **change: object) -> None:
        info = workflow.info()
        update = workflow.current_update_info()
        change_id = update.id if update is not None else str(workflow.uuid4())
        await workflow.execute_activity_method(
            SessionControlActivities.change_limits,
            LimitChangeInput(
                session_id=self._spec.session_id,
                actor=actor,
                reason=reason,
                change_id=change_id,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                **change,
            ),
            start_to_close_timeout=WRITE_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )
        self._publish()

    async def _set_gate(self, open_: bool, request: GateRequest) -> None:
        state = self._state
        if state.end_reason is not None or state.paused != open_:
            return  # the gate is already that way, or the session is ending anyway
        # The live state changes at once; the store follows in signal order under the lock.
        state.paused = not open_
        state.gate_changes += 1
        change_id = str(state.gate_changes)
        info = workflow.info()
        async with self._lock:
            await workflow.execute_activity_method(
                SessionControlActivities.set_trading_gate,
                GateInput(
                    session_id=self._spec.session_id,
                    open=open_,
                    actor=request.actor,
                    reason=request.reason,
                    change_id=change_id,
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                ),
                start_to_close_timeout=WRITE_TIMEOUT,
                retry_policy=DATABASE_RETRY,
            )

    def _publish(self) -> None:
        """Upsert the search attributes the Web UI filters on, only when they changed."""
        state = self._state
        values: dict[str, object] = {
            sa.SESSION_STATUS.name: state.status.value,
            sa.SESSION_DEADLINE.name: state.end_time,
            sa.LOSS_USED_PCT.name: float(round(100 * loss_used(state.loss, state.loss_limit))),
            sa.TIME_USED_PCT.name: sa.time_used_step(
                time_used(workflow.now(), self._spec.start_time, state.end_time)
            ),
            sa.TERMINATION_REASON.name: state.end_reason.value if state.end_reason else None,
        }
        changed = {k: v for k, v in values.items() if self._published.get(k) != v}
        if not changed:
            return
        self._published.update(changed)
        workflow.upsert_search_attributes(sa.updates(changed))


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidUpdate", non_retryable=True)
