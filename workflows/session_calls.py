"""The session workflow's activity calls, one function each, with their timeouts and retries.

The short idempotent writes run as local activities (see ``short_calls.py``); the operator's
limit and gate changes stay regular activities: they are rare and come from updates and signals.
"""

from datetime import datetime
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.controls import SessionControlActivities
    from activities.notifications import NotificationActivities
    from activities.performance import PerformanceActivities
    from activities.session import SessionActivities
    from domain.limits import WarningKind
    from domain.messages import (
        ActivateInput,
        CheckInput,
        GateInput,
        GateRequest,
        LimitChangeInput,
        NotificationRef,
        PnlSnapshot,
        SessionSpec,
        SnapshotInput,
        WarningInput,
    )
    from workflows.policies import CHECK_TIMEOUT, DATABASE_RETRY, WRITE_TIMEOUT
    from workflows.short_calls import short_call


async def activate(spec: SessionSpec) -> None:
    info = workflow.info()
    await short_call(
        SessionActivities.activate_session,
        ActivateInput(
            session_id=spec.session_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            at=workflow.now(),
        ),
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
    )


async def check(spec: SessionSpec, due_at: datetime | None) -> PnlSnapshot:
    """A local activity: one read of our own database needs no server round trip, and
    thousands of sessions checking every 30 s add up."""
    return await workflow.execute_local_activity_method(
        SessionActivities.check_session,
        CheckInput(session_id=spec.session_id, due_at=due_at),
        start_to_close_timeout=CHECK_TIMEOUT,
        retry_policy=DATABASE_RETRY,
    )


async def take_snapshot(spec: SessionSpec, now: datetime) -> None:
    await short_call(
        PerformanceActivities.record_snapshot,
        SnapshotInput(session_id=spec.session_id, kind="periodic", taken_at=now),
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
    )


async def record_warning(
    spec: SessionSpec, kind: WarningKind, threshold: float, used: float
) -> NotificationRef:
    info = workflow.info()
    return await short_call(
        SessionControlActivities.record_warning,
        WarningInput(
            session_id=spec.session_id,
            account_id=spec.account_id,
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


async def deliver(notification: NotificationRef) -> None:
    """Hand a queued notification to its own delivery workflow; webhooks never block us.

    Local like the other short calls: ``activity.client()`` serves local activities too.
    """
    if notification.notification_id is None:
        return
    await short_call(
        NotificationActivities.start_delivery,
        notification,
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
    )


async def change_limits(
    spec: SessionSpec,
    actor: str,
    reason: str | None,
    *,
    end_time: datetime | None = None,
    loss_limit: Decimal | None = None,
) -> None:
    info = workflow.info()
    update = workflow.current_update_info()
    # The update id makes the audit write idempotent across activity retries.
    change_id = update.id if update is not None else str(workflow.uuid4())
    await workflow.execute_activity_method(
        SessionControlActivities.change_limits,
        LimitChangeInput(
            session_id=spec.session_id,
            end_time=end_time,
            loss_limit=loss_limit,
            actor=actor,
            reason=reason,
            change_id=change_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
        ),
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
    )


async def set_gate(spec: SessionSpec, open_: bool, request: GateRequest, change_id: str) -> None:
    info = workflow.info()
    await workflow.execute_activity_method(
        SessionControlActivities.set_trading_gate,
        GateInput(
            session_id=spec.session_id,
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
