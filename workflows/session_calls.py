"""The session workflow's activity calls, one function each, with their timeouts and retries.

Short idempotent writes of our own database run as local activities: a chain of them
completes within one or two workflow tasks. The operator's limit and gate changes stay
regular activities (rare, and visible as such in the Web UI), with a bounded retry: an
operator waits for the answer, and the session's end must never wait on them for ever.
"""

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.controls import SessionControlActivities
    from activities.notifications import NotificationActivities
    from activities.session import SessionActivities
    from domain.limits import WarningKind
    from domain.session_messages import (
        ActivateInput,
        CheckInput,
        GateChangeInput,
        GateInput,
        HandlerFailureInput,
        LimitChangeInput,
        NotificationRef,
        PnlSnapshot,
        RequestAuditInput,
        SessionSpec,
        WarningInput,
    )
    from workflows.policies import (
        BEST_EFFORT_RETRY,
        CHECK_TIMEOUT,
        DATABASE_RETRY,
        HANDLER_RETRY,
        HANDLER_TIMEOUT,
        LOCAL_RETRY_THRESHOLD,
        WRITE_TIMEOUT,
    )

Owner = TypeVar("Owner")
Arg = TypeVar("Arg")
Result = TypeVar("Result")
# How a call that gave up arrives: a regular activity's failure (and a local one's timeout)
# as an ActivityError, a local activity's own exception unwrapped, as ApplicationError.
CALL_FAILED = (ActivityError, ApplicationError)
# A call bounded by the deadline still gets this long, so one due at the deadline can run.
SHORTEST_BOUND = timedelta(seconds=5)


async def _local(
    activity: Callable[[Owner, Arg], Awaitable[Result]],
    arg: Arg,
    *,
    timeout: timedelta,
    retry_policy: RetryPolicy,
    summary: str,
    until: datetime | None = None,
) -> Result:
    """A local activity; with ``until``, its retries give up then (the deadline wins)."""
    bound = None if until is None else max(SHORTEST_BOUND, until - workflow.now())
    return await workflow.execute_local_activity_method(
        activity,
        arg,
        start_to_close_timeout=timeout,
        schedule_to_close_timeout=bound,
        retry_policy=retry_policy,
        local_retry_threshold=LOCAL_RETRY_THRESHOLD,
        summary=summary,
    )


def request_key(actor: str, reason: str | None, details: dict[str, str] | None) -> str:
    """What names a request for its audit write: the update's id, else a digest of what the
    signal said. Not a counter: a workflow task that fails is redone with the signals that
    arrived meanwhile, in another order, and a counter would write the same request twice."""
    update = workflow.current_update_info()
    if update is not None:
        return update.id
    said = "\x1f".join(
        [actor, reason or "", *sorted(f"{k}={v}" for k, v in (details or {}).items())]
    )
    return hashlib.sha256(said.encode()).hexdigest()[:16]


def _ids() -> dict[str, str]:
    info = workflow.info()
    return {"workflow_id": info.workflow_id, "run_id": info.run_id}


async def activate(spec: SessionSpec) -> None:
    await _local(
        SessionActivities.activate_session,
        ActivateInput(session_id=spec.session_id, at=workflow.now(), **_ids()),
        timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
        summary="activate",
    )


async def check(
    spec: SessionSpec, loss_limit: Decimal, deadline: datetime, reducing_at: float | None = None
) -> PnlSnapshot:
    """Read the session's PnL and record the check; gives up at the deadline."""
    return await _local(
        SessionActivities.check_session,
        CheckInput(session_id=spec.session_id, loss_limit=loss_limit, reducing_at=reducing_at),
        timeout=CHECK_TIMEOUT,
        retry_policy=DATABASE_RETRY,
        summary="check loss",
        until=deadline,
    )


async def record_warning(
    spec: SessionSpec, kind: WarningKind, threshold: float, used: float, deadline: datetime
) -> NotificationRef:
    return await _local(
        SessionControlActivities.record_warning,
        WarningInput(
            session_id=spec.session_id,
            account_id=spec.account_id,
            kind=kind,
            threshold=threshold,
            used=used,
            at=workflow.now(),
            **_ids(),
        ),
        timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
        summary=f"{kind.lower()} warning {threshold:.0%}",
        until=deadline,
    )


async def deliver(notification: NotificationRef) -> None:
    """Hand a queued notification to its own delivery workflow; webhooks never block us."""
    if notification.notification_id is None:
        return
    await _local(
        NotificationActivities.start_delivery,
        notification,
        timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
        summary="hand over notification",
    )


async def change_limits(
    spec: SessionSpec,
    actor: str,
    reason: str | None,
    *,
    end_time: datetime | None = None,
    loss_limit: Decimal | None = None,
) -> None:
    update = workflow.current_update_info()
    # The update id makes the audit write idempotent across activity retries.
    change_id = update.id if update is not None else str(workflow.uuid4())
    change = f"deadline {end_time:%H:%M:%S} UTC" if end_time else f"loss limit {loss_limit}"
    await workflow.execute_activity_method(
        SessionControlActivities.change_limits,
        LimitChangeInput(
            session_id=spec.session_id,
            end_time=end_time,
            loss_limit=loss_limit,
            actor=actor,
            reason=reason,
            change_id=change_id,
            **_ids(),
        ),
        start_to_close_timeout=HANDLER_TIMEOUT,
        retry_policy=HANDLER_RETRY,
        summary=f"set {change}",
    )


async def set_gate(
    spec: SessionSpec, open_: bool, request: GateChangeInput, change_id: str
) -> None:
    await workflow.execute_activity_method(
        SessionControlActivities.set_trading_gate,
        GateInput(
            session_id=spec.session_id,
            open=open_,
            actor=request.actor,
            reason=request.reason,
            change_id=change_id,
            **_ids(),
        ),
        start_to_close_timeout=HANDLER_TIMEOUT,
        retry_policy=HANDLER_RETRY,
        summary="open the trading gate" if open_ else "close the trading gate",
    )


async def audit_request(
    spec: SessionSpec,
    action: str,
    actor: str,
    reason: str | None,
    details: dict[str, str] | None = None,
) -> None:
    """Record a request the workflow received; best effort: it never holds the session up."""
    try:
        await _local(
            SessionControlActivities.record_request,
            RequestAuditInput(
                session_id=spec.session_id,
                action=action,
                actor=actor,
                reason=reason,
                details=details or {},
                key=request_key(actor, reason, details),
                **_ids(),
            ),
            timeout=WRITE_TIMEOUT,
            retry_policy=BEST_EFFORT_RETRY,
            summary=f"audit {action}",
        )
    except CALL_FAILED as err:
        workflow.logger.error("could not audit %s of %s: %s", action, spec.session_id, err)


async def report_handler_failure(spec: SessionSpec, handler: str, actor: str, error: str) -> None:
    """Alert an operator that a handler's activity gave up; best effort."""
    try:
        await _local(
            SessionControlActivities.record_handler_failure,
            HandlerFailureInput(
                session_id=spec.session_id,
                handler=handler,
                actor=actor,
                error=error,
                key=request_key(handler, actor, {"error": error}),
                **_ids(),
            ),
            timeout=WRITE_TIMEOUT,
            retry_policy=BEST_EFFORT_RETRY,
            summary=f"alert: {handler} failed",
        )
    except CALL_FAILED as err:
        workflow.logger.error("could not alert on %s of %s: %s", handler, spec.session_id, err)
