"""Custom search attributes that make sessions filterable in the Temporal Web UI."""

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from domain.limits import loss_used, time_used
from domain.positions import plain_money
from domain.session_messages import SessionSpec, SessionState

SESSION_STATUS = SearchAttributeKey.for_keyword("SessionStatus")
ACCOUNT_ID = SearchAttributeKey.for_keyword("AccountId")
ALGORITHM_ID = SearchAttributeKey.for_keyword("AlgorithmId")
LOSS_USED_PCT = SearchAttributeKey.for_float("LossUsedPct")
TIME_USED_PCT = SearchAttributeKey.for_float("TimeUsedPct")
SESSION_DEADLINE = SearchAttributeKey.for_datetime("SessionDeadline")
TERMINATION_REASON = SearchAttributeKey.for_keyword("TerminationReason")
# Risk controls: ACTIVE / REDUCING / HALTED, and the share of max_drawdown used (if set).
TRADING_STATE = SearchAttributeKey.for_keyword("TradingState")
DRAWDOWN_USED_PCT = SearchAttributeKey.for_float("DrawdownUsedPct")

TIME_USED_STEP_PCT = 5

ALL_KEYS = (
    SESSION_STATUS,
    ACCOUNT_ID,
    ALGORITHM_ID,
    LOSS_USED_PCT,
    TIME_USED_PCT,
    SESSION_DEADLINE,
    TERMINATION_REASON,
    TRADING_STATE,
    DRAWDOWN_USED_PCT,
)

# The names the Temporal CLI and the operator service use for each indexed value type.
CLI_TYPE_NAMES = {
    "KEYWORD": "Keyword",
    "DOUBLE": "Double",
    "DATETIME": "Datetime",
    "TEXT": "Text",
    "INT": "Int",
    "BOOL": "Bool",
    "KEYWORD_LIST": "KeywordList",
}


def cli_definitions() -> list[str]:
    """``Name=Type`` pairs for ``temporal server start-dev --search-attribute``."""
    return [f"{key.name}={CLI_TYPE_NAMES[key.indexed_value_type.name]}" for key in ALL_KEYS]


_BY_NAME: dict[str, SearchAttributeKey[Any]] = {key.name: key for key in ALL_KEYS}


def time_used_step(fraction: float) -> float:
    """Time used in whole steps of TIME_USED_STEP_PCT percent, so upserts stay rare."""
    return float(int(100 * fraction) // TIME_USED_STEP_PCT * TIME_USED_STEP_PCT)


def updates(values: dict[str, object]) -> list[SearchAttributeUpdate[Any]]:
    """Typed upserts for ``{name: value}``; None unsets the attribute."""
    result: list[SearchAttributeUpdate[Any]] = []
    for name, value in values.items():
        key = _BY_NAME[name]
        result.append(key.value_unset() if value is None else key.value_set(value))
    return result


def initial(account_id: str, algorithm_id: str, deadline: datetime) -> TypedSearchAttributes:
    """What a session's workflow starts with, so the Web UI can filter it from the start."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SESSION_STATUS, "PENDING"),
            SearchAttributePair(ACCOUNT_ID, account_id),
            SearchAttributePair(ALGORITHM_ID, algorithm_id),
            SearchAttributePair(SESSION_DEADLINE, deadline),
            SearchAttributePair(LOSS_USED_PCT, 0.0),
            SearchAttributePair(TIME_USED_PCT, 0.0),
        ]
    )


class Publisher:
    """Upserts the attributes the Web UI filters on, and only those that changed."""

    def __init__(self) -> None:
        self._published: dict[str, object] = {}

    def publish(self, values: dict[str, object]) -> None:
        changed = {k: v for k, v in values.items() if self._published.get(k) != v}
        if changed:
            self._published.update(changed)
            workflow.upsert_search_attributes(updates(changed))


def publish_state(
    publisher: Publisher, spec: SessionSpec, state: SessionState, now: datetime
) -> None:
    """Show a session's state in the Web UI: its search attributes (sent only when they
    change) and the one-line current details of its workflow."""
    pct = float(round(100 * loss_used(state.loss, state.loss_limit)))
    time_pct = time_used_step(time_used(now, spec.start_time, state.end_time))
    publisher.publish(
        {
            SESSION_STATUS.name: state.status.value,
            SESSION_DEADLINE.name: state.end_time,
            LOSS_USED_PCT.name: pct,
            TIME_USED_PCT.name: time_pct,
            TERMINATION_REASON.name: state.end_reason.value if state.end_reason else None,
            TRADING_STATE.name: state.trading_state,
            DRAWDOWN_USED_PCT.name: (
                None
                if spec.max_drawdown is None
                else float(round(100 * state.drawdown / spec.max_drawdown))
            ),
        }
    )
    checked = f"{state.last_check_at:%H:%M:%S}" if state.last_check_at else "never"
    gate = "paused" if state.paused else "open"
    workflow.set_current_details(
        f"{state.status.value} · loss {pct:.0f} % of {plain_money(state.loss_limit)} · "
        f"deadline {state.end_time:%H:%M:%S} UTC · gate {gate} · {state.trading_state} · "
        f"last own check {checked}"
    )
