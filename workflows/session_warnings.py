"""What a session's check leads to short of its end: warnings, each sent once, and the
trading state it moves into (ACTIVE <-> REDUCING), audited."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.limits import WarningKind, crossed_thresholds, loss_used
    from domain.positions import plain_money
    from domain.risk import drawdown_used, equity
    from domain.session import trading_state_of
    from domain.session_messages import SYSTEM_ACTOR, SessionSpec, SessionState
    from workflows import session_calls as calls
    from workflows.session_calls import CALL_FAILED


async def warn(
    spec: SessionSpec, state: SessionState, kind: WarningKind, thresholds: list[float], used: float
) -> None:
    """Send each threshold's warning once; the sent list travels in the state."""
    sent = {
        WarningKind.TIME: state.time_warnings_sent,
        WarningKind.LOSS: state.loss_warnings_sent,
        WarningKind.DRAWDOWN: state.drawdown_warnings_sent,
    }[kind]
    for threshold in thresholds:
        try:
            notification = await calls.record_warning(spec, kind, threshold, used, state.end_time)
        except CALL_FAILED as err:
            workflow.logger.warning("warning of %s not sent yet: %s", spec.session_id, err)
            return  # not marked sent: the next wake tries again
        sent.append(threshold)
        await calls.deliver(notification)


async def after_check(spec: SessionSpec, state: SessionState) -> None:
    """A check that did not end the session: its trading state, then its loss and drawdown
    warnings."""
    await note_trading_state(spec, state)
    used = loss_used(state.loss, state.loss_limit)
    due = crossed_thresholds(used, spec.warning_thresholds, state.loss_warnings_sent)
    await warn(spec, state, WarningKind.LOSS, due, used)
    if spec.max_drawdown is not None:
        now_equity = equity(state.realized_pnl, state.unrealized_pnl)
        used = drawdown_used(state.peak_equity, now_equity, spec.max_drawdown)
        due = crossed_thresholds(used, spec.warning_thresholds, state.drawdown_warnings_sent)
        await warn(spec, state, WarningKind.DRAWDOWN, due, used)


async def note_trading_state(spec: SessionSpec, state: SessionState) -> None:
    """A change of trading state the loss led to (ACTIVE <-> REDUCING) is audited; the gate
    events audit HALTED (pause, halt)."""
    new = trading_state_of(spec, state).value
    if new == state.trading_state:
        return
    old, state.trading_state = state.trading_state, new
    state.trading_state_changes += 1
    await calls.audit_request(
        spec,
        "trading_state.changed",
        SYSTEM_ACTOR,
        f"loss {plain_money(state.loss)} of limit {plain_money(state.loss_limit)}",
        {"from": old, "to": new, "change": str(state.trading_state_changes)},
    )
