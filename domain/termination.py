"""The ordered steps that wind a session down; each runs once per session."""

from enum import StrEnum


class TerminationStep(StrEnum):
    HALT_ALGORITHM = "halt_algorithm"
    CANCEL_ORDERS = "cancel_orders"
    FLATTEN_POSITIONS = "flatten_positions"
    UPDATE_PORTFOLIO = "update_portfolio"
    FINAL_PERFORMANCE = "final_performance"
    FINAL_STATUS = "final_status"
    NOTIFY = "notify"


# Halt first so no new order races the clean-up; settle only once the book is flat;
# record performance from the settled figures; announce only what is final.
TERMINATION_SEQUENCE: tuple[TerminationStep, ...] = (
    TerminationStep.HALT_ALGORITHM,
    TerminationStep.CANCEL_ORDERS,
    TerminationStep.FLATTEN_POSITIONS,
    TerminationStep.UPDATE_PORTFOLIO,
    TerminationStep.FINAL_PERFORMANCE,
    TerminationStep.FINAL_STATUS,
    TerminationStep.NOTIFY,
)
